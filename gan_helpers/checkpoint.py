"""Checkpoints: a run's dict of tensors and plain values, marked with its format, written
and read through files.py (atomic saves, safe loads); and a trained generator, from a run
or from the weights shipped with the course.
"""

from pathlib import Path

import torch

from . import files, recipes
from .env import GanError

FORMAT = "gan_helpers/2"
WEIGHTS = Path(__file__).resolve().parent / "weights"


def save(state: dict, path) -> None:
    """Write a checkpoint (a dict) atomically, marked with the format it was written in."""
    files.write(path, {"format": FORMAT, **state})


def kept(path, step: int) -> Path:
    """`<stem>-<step><suffix>` beside the checkpoint at `path`: a copy later saves leave alone."""
    path = Path(path)
    return path.with_name(f"{path.stem}-{step}{path.suffix}")


def remove_unfinished(path) -> list[Path]:
    """Delete the temporary files that saves to `path` left behind when killed."""
    path = Path(path)
    stale = list(path.parent.glob(f"{path.name}.*{files.UNFINISHED}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load(path, model: str | None = None, map_location="cpu") -> dict:
    """A checkpoint of this package; `model`, if given, is the recipe name it must hold."""
    path = Path(path)
    state = files.read(path, map_location)
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
