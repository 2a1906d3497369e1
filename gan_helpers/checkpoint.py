"""Checkpoints: a dict of state_dicts and plain values, saved atomically, loaded safely.

`weights_only=True` refuses anything in the file but tensors and plain containers, so a
crafted checkpoint cannot run code when it is loaded. Saving goes to a temporary file in
the same folder and then `os.replace`, which is atomic: a crash mid-save leaves the
previous checkpoint whole.
"""
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import GanError

FORMAT = "gan_helpers/1"


def save(state: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path, model: str | None = None, map_location="cpu") -> dict:
    """Load and check a checkpoint; `model`, if given, is the recipe name it must hold."""
    path = Path(path)
    if not path.is_file():
        raise GanError(f"There is no checkpoint at {path}; check the path.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise GanError(f"{path} holds objects other than tensors and plain values, so it "
                       f"was refused unopened; load only checkpoints you trust.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError):
        raise GanError(f"{path} is truncated or corrupted and cannot be read; "
                       f"use an earlier copy or train again.") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanError(f"{path} is not a gan_helpers checkpoint; "
                       f"pass a checkpoint.pt written by `python -m gan_helpers train`.")
    if model is not None and state.get("model") != model:
        raise GanError(f"{path} holds a {state.get('model')!r} model, not {model!r}; "
                       f"pick the matching model or another checkpoint.")
    return state
