"""Checkpoints: a dict of state_dicts and plain values, saved atomically, loaded safely.

Saving goes to a temporary file in the same folder, then `os.replace`, which is atomic: a
process killed mid-save leaves the previous checkpoint whole, plus a `*.tmp` file that is
never read as a checkpoint. Loading uses `weights_only=True`, which refuses anything but
tensors and plain containers, so a crafted file cannot run code; every way a file can be
wrong gets one sentence naming the file and the problem.
"""
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from .errors import GanError

FORMAT = "gan_helpers/1"
UNFINISHED = ".tmp"                      # the suffix of a save still being written
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip format; its legacy pickle format


def save(state: dict, path) -> None:
    """Write a checkpoint atomically."""
    save_atomically({"format": FORMAT, **state}, path)


def save_atomically(obj, path) -> None:
    """`torch.save(obj, path)`, but a crash midway leaves any previous `path` intact."""
    _write_atomically(path, lambda f: torch.save(obj, f))


def keep_copy(path, step: int) -> Path:
    """Copy the checkpoint at `path` to `<stem>-<step><suffix>` beside it, e.g.
    checkpoint-1000.pt, which later saves leave alone."""
    path = Path(path)
    kept = path.with_name(f"{path.stem}-{step}{path.suffix}")
    with open(path, "rb") as src:
        _write_atomically(kept, lambda f: shutil.copyfileobj(src, f))
    return kept


def remove_unfinished(path) -> list[Path]:
    """Delete the temporary files that saves to `path` left when a process was killed."""
    path = Path(path)
    stale = list(path.parent.glob(f"{path.name}.*{UNFINISHED}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _write_atomically(path, write) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=UNFINISHED)
    except OSError as e:
        raise GanError(f"Cannot write {path} ({e.strerror}); choose a folder you can "
                       f"write to.") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise GanError(f"Cannot write {path} ({e.strerror}); the previous file, if any, "
                           f"is intact.") from None
        raise


def load(path, model: str | None = None, map_location="cpu") -> dict:
    """Load and check a checkpoint; `model`, if given, is the recipe name it must hold."""
    path = Path(path)
    state = _read(path, map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanError(f"{path} is a PyTorch file but not a gan_helpers checkpoint; pass a "
                       f"checkpoint.pt written by `python -m gan_helpers train`.")
    if model is not None and state.get("model") != model:
        raise GanError(f"{path} holds a {state.get('model')!r} run, not {model!r}; "
                       f"pick the matching model or another checkpoint.")
    return state


def _read(path: Path, map_location):
    """torch.load with weights_only=True, each failure turned into one sentence."""
    if not path.is_file():
        raise GanError(f"There is no checkpoint at {path}; check the path.")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise GanError(f"{path} cannot be read ({e.strerror}); check its permissions.") from None
    if not head:
        raise GanError(f"{path} is empty; use an earlier checkpoint or train again.")
    if not head.startswith(_TORCH_MAGIC):  # never hand a file of another kind to a parser
        raise GanError(f"{path} is not a checkpoint, nor any file written by torch.save; "
                       f"pass a checkpoint.pt written by `python -m gan_helpers train`.")
    try:
        with warnings.catch_warnings():  # e.g. torch's note on pickle protocols: not for users
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise GanError(f"{path} was refused unopened: it holds Python objects other than "
                           f"tensors and plain values, which could run code when loaded; use "
                           f"only checkpoints from a source you trust.") from None
        raise GanError(_corrupted(path)) from None
    except Exception:  # torch.load fails in many ways on damaged bytes; all mean the same
        raise GanError(_corrupted(path)) from None


def _corrupted(path: Path) -> str:
    return (f"{path} is truncated or corrupted and cannot be read; use an earlier copy "
            f"(checkpoint-<step>.pt, if you kept one) or train again.")
