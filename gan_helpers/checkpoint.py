"""Checkpoints and weights files: dicts of tensors and plain values, saved atomically,
loaded safely, each failure one sentence.

A save is serialised in memory, written to a temporary file in the same folder, synced,
then renamed over the old file (`os.replace` is atomic): a kill or a full disk mid-save
leaves the previous file whole. Loads use `weights_only=True`, which refuses anything but
tensors and plain containers, so a crafted file cannot run code.
"""

import errno
import io
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import torch

from . import recipes
from .env import GanError

FORMAT = "gan_helpers/2"
UNFINISHED = ".tmp"  # the suffix of a save still being written
WEIGHTS = Path(__file__).resolve().parent / "weights"
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip format; its legacy pickle format


class DiskFull(GanError):
    """A save found the disk full. `held` is the step the file at `path` still holds."""

    def __init__(self, path, step=None, held=None):
        self.path, self.step, self.held = Path(path), step, held
        super().__init__(self.sentence("free some space, then save again or resume from it"))

    def sentence(self, then: str) -> str:
        at = "" if self.step is None else f" at step {self.step}"
        held = (
            f"it still holds step {self.held}"
            if self.held is not None
            else "any earlier copy is intact"
        )
        return f"The disk is full: {self.path} could not be written{at}, and {held}; {then}."


def save(state: dict, path) -> None:
    """Write a checkpoint (a dict) atomically, marked with the format it was written in."""
    write(path, {"format": FORMAT, **state})


def write(path, obj) -> None:
    """`torch.save(obj, path)`, atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=UNFINISHED)
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide shipped weights from other users
            _write_all(fd, buffer.getbuffer())
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _write_error(path, e) from None
        raise


def _write_all(fd, data) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _write_error(path: Path, e: OSError) -> GanError:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return DiskFull(path)
    return GanError(
        f"Cannot write {path} ({e.strerror}); choose a folder you can write to, "
        f"and any earlier copy is intact."
    )


def keep_copy(path, step: int) -> Path:
    """Copy the checkpoint at `path` to `<stem>-<step><suffix>` beside it, which later saves
    leave alone."""
    path = Path(path)
    kept = path.with_name(f"{path.stem}-{step}{path.suffix}")
    write(kept, read(path))
    return kept


def remove_unfinished(path) -> list[Path]:
    """Delete the temporary files that saves to `path` left behind when killed."""
    path = Path(path)
    stale = list(path.parent.glob(f"{path.name}.*{UNFINISHED}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load(path, model: str | None = None, map_location="cpu") -> dict:
    """A checkpoint of this package; `model`, if given, is the recipe name it must hold."""
    path = Path(path)
    state = read(path, map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanError(
            f"{path} is a PyTorch file but not a checkpoint of this gan_helpers "
            f"version; pass a checkpoint.pt written by `python -m gan_helpers "
            f"train`."
        )
    if model is not None and state.get("model") != model:
        raise GanError(
            f"{path} holds a {state.get('model')!r} run, not {model!r}; pick the "
            f"matching model or another checkpoint."
        )
    return state


def read(path, map_location="cpu"):
    """torch.load with weights_only=True, each way a file can be wrong one sentence."""
    path = Path(path)
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
        raise GanError(
            f"{path} is not a checkpoint, nor any file written by torch.save; "
            f"pass a checkpoint.pt written by `python -m gan_helpers train`."
        )
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise GanError(
                f"{path} was refused unopened: it holds Python objects other than "
                f"tensors and plain values, which could run code when loaded; use "
                f"only files from a source you trust."
            ) from None
        raise GanError(_corrupted(path)) from None
    except Exception:  # torch.load fails in many ways on damaged bytes; all mean the same
        raise GanError(_corrupted(path)) from None


def _corrupted(path: Path) -> str:
    return (
        f"{path} is truncated or corrupted and cannot be read; use an earlier copy "
        f"(checkpoint-<step>.pt, if you kept one) or train again."
    )


# --- a trained generator, from a run or from the shipped weights -------------------------


def shipped(name: str) -> Path:
    return WEIGHTS / f"{name}_generator.pt"


def load_generator(path_or_name="dcgan", device="cpu"):
    """A trained generator in eval mode, without gradients: a shipped one by recipe name
    ('dcgan', 'cgan', 'infogan'), or from a path (a training checkpoint.pt or an exported
    generator). Its provenance, if the file has one, is in `G.provenance`."""
    name = str(path_or_name)
    path = shipped(name) if name in recipes.RECIPES else Path(name)
    if name in recipes.RECIPES and not path.is_file():
        raise GanError(
            f"No {name} generator ships in {WEIGHTS}; make it with "
            f"`python tools/ship.py {name}`, or pass the path of a checkpoint."
        )
    state = load(path, map_location=device)
    model, provenance = state.get("model"), state.get("provenance", {})
    if model not in recipes.RECIPES:
        raise GanError(
            f"{path} holds a {model!r} model, which is none of the series' models "
            f"({', '.join(recipes.RECIPES)})."
        )
    G, _ = recipes.get(model).build()
    again = (
        f"make them again with `{provenance['command']}`"
        if "command" in provenance
        else "train them again"
    )
    weights = state.get("G_ema") or state.get("G")  # a run's samples come from its EMA copy
    if not isinstance(weights, dict) or not all(torch.is_tensor(t) for t in weights.values()):
        raise GanError(f"{path} holds no generator weights; {again}.")
    own = G.state_dict()
    for key in sorted(own.keys() | weights.keys()):
        mine, theirs = own.get(key), weights.get(key)
        if mine is None or theirs is None or mine.shape != theirs.shape:
            shape = lambda t: "missing" if t is None else tuple(t.shape)
            raise GanError(
                f"{path} does not fit the {model!r} generator that recipes.py builds "
                f"now ({key}: {shape(theirs)} in the file, {shape(mine)} in the "
                f"model), so the recipe changed since it was trained; {again}."
            )
    G.load_state_dict(weights)
    G.provenance = provenance
    return G.to(device).eval().requires_grad_(False)
