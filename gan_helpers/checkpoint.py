"""Checkpoints: a dict of state_dicts and plain values, saved so that nothing can damage the
last good one, and read so that no file can run code; and a trained generator, from a run
or from the weights shipped with the course.

A save goes to a temporary file in the same folder, is synced to disk, then renamed over the
old file (`os.replace` is atomic): a kill or a full disk mid-save leaves the previous file
whole. Loads use `weights_only=True`, which refuses anything but tensors and plain
containers, so a crafted file cannot run code.
"""

import errno
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path

import torch

from . import recipes
from .env import GanError

FORMAT = "gan_helpers/3"
UNFINISHED = ".tmp"  # the suffix of a save still being written
WEIGHTS = Path(__file__).resolve().parent / "weights"


class DiskFull(GanError):
    """A save found the disk full; the file it was replacing is intact."""


def save(state: dict, path) -> None:
    """`torch.save` of `state`, marked with this format, atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=UNFINISHED)
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 would hide shipped weights
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _write_error(path, e) from None
        raise


def _write_error(path: Path, e: OSError) -> GanError:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return DiskFull(
            f"The disk is full: {path} could not be written, and the last checkpoint there is "
            f"intact; free some space, then go on from it."
        )
    return GanError(
        f"Cannot write {path} ({e.strerror}); choose a folder you can write to, and any "
        f"earlier copy is intact."
    )


def load(path, model: str | None = None, map_location="cpu") -> dict:
    """A checkpoint of this package; `model`, if given, is the recipe name it must hold."""
    path = Path(path)
    if not path.is_file():
        raise GanError(f"There is no checkpoint at {path}; check the path.")
    with open(path, "rb") as f:  # torch.save's zip, or its legacy pickle: never parse others
        if not f.read(4).startswith((b"PK\x03\x04", b"\x80")):
            raise GanError(_unreadable(path))
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise GanError(
                f"{path} was refused unopened: it holds Python objects other than tensors and "
                f"plain values, which could run code when loaded; use only files you trust."
            ) from None
        raise GanError(_unreadable(path)) from None
    except Exception:  # torch.load fails in many ways on damaged bytes; all mean the same
        raise GanError(_unreadable(path)) from None
    if not isinstance(state, dict) or not re.fullmatch(
        r"gan_helpers/\d+", str(state.get("format"))
    ):
        raise GanError(
            f"{path} is a PyTorch file but not a checkpoint of this course; pass a "
            f"checkpoint.pt written by `python -m gan_helpers train` or a notebook."
        )
    if state["format"] != FORMAT:
        raise GanError(
            f"{path} was written by another version of gan_helpers ({state['format']}, this "
            f"one reads {FORMAT}); train again, or delete the file to start over."
        )
    if model is not None and state.get("model") != model:
        raise GanError(
            f"{path} holds a {state.get('model')!r} run, not {model!r}; pick the matching "
            f"model or another checkpoint."
        )
    return state


def _unreadable(path: Path) -> str:
    return (
        f"{path} is not a checkpoint: it is truncated, corrupted or another kind of file; use "
        f"an earlier copy (checkpoint-<step>.pt, if you kept one) or train again."
    )


def kept(path, step: int) -> Path:
    """`<stem>-<step><suffix>` beside the checkpoint at `path`: a copy later saves leave alone."""
    path = Path(path)
    return path.with_name(f"{path.stem}-{step}{path.suffix}")


def remove_unfinished(path) -> list[Path]:
    """Delete the temporary files that saves to `path` left behind when killed."""
    path = Path(path)
    stale = list(path.parent.glob(f"{path.name}.*{UNFINISHED}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_generator(path_or_name="dcgan", device="cpu"):
    """A trained generator in eval mode, without gradients: a shipped one by recipe name
    ('dcgan', 'cgan', 'infogan'), or from a path (a training checkpoint.pt or a shipped
    file). Its provenance, if the file has one, is in `G.provenance`."""
    name = str(path_or_name)
    path = WEIGHTS / f"{name}_generator.pt" if name in recipes.RECIPES else Path(name)
    if name in recipes.RECIPES and not path.is_file():
        raise GanError(
            f"No {name} generator ships in {WEIGHTS}; make it with `python tools/ship.py "
            f"{name}`, or pass the path of a checkpoint."
        )
    state = load(path, map_location=device)
    model, provenance = state.get("model"), state.get("provenance", {})
    if model not in recipes.RECIPES:
        raise GanError(
            f"{path} holds a {model!r} model, which is none of the series' models "
            f"({', '.join(recipes.RECIPES)}); build its generator yourself and load "
            f"state['G'] into it."
        )
    weights = state.get("G_ema") or state.get("G")  # a run's samples come from its EMA copy
    G = recipes.get(model)(**_shape_of(model, weights))["G"]
    try:
        G.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError):
        again = provenance.get("command", "the training command")
        raise GanError(
            f"{path} does not fit the {model!r} generator that recipes.py builds now, so the "
            f"recipe changed since it was trained; train it again with `{again}`."
        ) from None
    G.provenance = provenance
    return G.to(device).eval().requires_grad_(False)


def _shape_of(model: str, weights) -> dict:
    """The `size` and `channels` a sized recipe's generator was built with, read off its
    weights: the last transposed convolution's outputs, and one doubling per convolution."""
    if model not in recipes.SIZED or not isinstance(weights, dict):
        return {}
    convs = [k for k in weights if k.startswith("net.") and k.endswith(".weight")]
    convs = [k for k in convs if weights[k].dim() == 4]
    return {"channels": weights[convs[-1]].shape[1], "size": 2 ** (len(convs) + 1)}
