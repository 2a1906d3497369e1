"""Explore what a generator learned: latent sliders, interpolation, latent walks, and the
small pretrained generators shipped in `gan_helpers/weights/`.

The sliders re-render by drawing one PNG into a `widgets.Image`: a whole slider move takes
about 1 ms in the kernel on a quiet 2-core CPU (a median of 12 ms with other jobs busy), of
which the PNG takes 0.4 ms, where a matplotlib figure of the same digit takes 38 ms
(measured by notebook 06). Only widget APIs
common to ipywidgets 7.7 (Colab) and 8 (JupyterLab 4) are used.

The shipped generators are made, and can be made again, by one command each:

    OMP_NUM_THREADS=1 python -m gan_helpers.explore ship dcgan --steps 1500
    OMP_NUM_THREADS=1 python -m gan_helpers.explore ship cgan --steps 1500

Each trains with `python -m gan_helpers train MODEL --out runs/ship-MODEL --steps 1500
--seed 0` and exports the generator alone (1.2 and 1.3 MB), with its provenance: the exact
command, the data (offline: the 10k MNIST test split), steps, settings and date.
"""
import argparse
import io
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import checkpoint, data, metrics, recipes
from .errors import GanError
from .models import N_CLASSES, DCGANGenerator, crop_to_28, is_conditional
from .train import generate
from .viz import grid_image

WEIGHTS = Path(__file__).resolve().parent / "weights"
SHIPPED = ("dcgan", "cgan")                 # names load_generator resolves in WEIGHTS


# --- paths through latent space -------------------------------------------------------

def lerp(z0, z1, t: float):
    """The straight line between two latent vectors."""
    return (1 - t) * z0 + t * z1


def slerp(z0, z1, t: float):
    """The great-circle path between two latent vectors.

    A Gaussian z in d dimensions has norm close to sqrt(d); the midpoint of a straight line
    between two such vectors is shorter (about sqrt(d/2)), a region the generator rarely
    saw in training. Spherical interpolation keeps the norm in the typical range.
    """
    a, b = z0 / z0.norm(), z1 / z1.norm()
    omega = torch.arccos((a * b).sum().clamp(-1, 1))
    if omega.abs() < 1e-6:  # (nearly) the same direction: the line is the arc
        return lerp(z0, z1, t)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


PATHS = {"lerp": lerp, "slerp": slerp}


def interpolate(G, z0, z1, steps: int = 8, method: str = "slerp", label=None):
    """(steps, 1, 28, 28) images along the path from z0 to z1."""
    if method not in PATHS:
        raise GanError(f"Unknown interpolation {method!r}; choose 'slerp' or 'lerp'.")
    path = PATHS[method]
    z = torch.stack([path(z0, z1, t) for t in torch.linspace(0, 1, steps).tolist()])
    return generate(G, z=z, labels=_labels(G, label, steps))


def latent_walk(G, z, dims, span: float = 2.5, steps: int = 7, label=None):
    """A (len(dims) * steps, 1, 28, 28) grid: row i sets dimension dims[i] of z to values
    from -span to +span, the other dimensions fixed."""
    zs = z.repeat(len(dims) * steps, 1)
    for i, d in enumerate(dims):
        zs[i * steps:(i + 1) * steps, d] = torch.linspace(-span, span, steps)
    return generate(G, z=zs, labels=_labels(G, label, len(zs)))


def _labels(G, label, n):
    """n copies of `label` for a conditional G (which needs one), None for any other."""
    if not is_conditional(G):
        return None
    if label is None:
        raise GanError("This generator is conditional: pass label=, the digit to draw (0-9).")
    return torch.full((n,), int(label), dtype=torch.long)


# --- what a direction changes ----------------------------------------------------------

def style(images) -> dict:
    """Two style measures per image, each (N,): `ink`, the mean brightness in [0, 1], about
    the share of the 28x28 pixels that is stroke (thicker or bigger digits have more), and
    `slant`, how many pixels the stroke leans right per pixel of height (0 upright; from
    the image's second moments)."""
    w = (images.detach().cpu().float()[:, 0] + 1) / 2            # (N, 28, 28) in [0, 1]
    ys, xs = torch.meshgrid(torch.arange(28.), torch.arange(28.), indexing="ij")
    mass = w.sum((1, 2)).clamp_min(1e-6)
    cx = (w * xs).sum((1, 2)) / mass
    cy = (w * ys).sum((1, 2)) / mass
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
    # image rows grow downwards, so a stroke leaning right has x falling as row index grows
    slant = -(w * dx * dy).sum((1, 2)) / (w * dy * dy).sum((1, 2)).clamp_min(1e-6)
    return {"ink": w.mean((1, 2)), "slant": slant}


def digits_drawn(images) -> torch.Tensor:
    """(N,) the digit the metrics' classifier sees in each image (98.6% right on held-out
    real digits; see `gan_helpers.metrics`)."""
    net = metrics.load_classifier()
    with torch.inference_mode():
        return net(crop_to_28(images.detach().cpu().float())).argmax(1)


def follows_labels(G, n: int = 100, seed: int = 0) -> torch.Tensor:
    """(10,): for each digit k, the share of n samples drawn with label k that the classifier
    calls a k. Near 1 for a generator that obeys its labels, about 0.1 for one that ignores
    them."""
    z = torch.randn(n * N_CLASSES, G.z_dim, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(N_CLASSES).repeat_interleave(n)
    judged = digits_drawn(generate(G, z=z, labels=labels))
    return (judged == labels).view(N_CLASSES, n).float().mean(1)


def walk_effects(G, dims, n: int = 64, span: float = 2.5, seed: int = 0, label=None):
    """What moving each dimension from -span to +span does, averaged over n random z:
    {dim: {"ink": mean |change of ink|, "slant": mean |change of slant|,
    "identity": share of the n digits whose class (by the classifier) changes}}."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    effects = {}
    for d in dims:
        lo, hi = z.clone(), z.clone()
        lo[:, d], hi[:, d] = -span, span
        a, b = (generate(G, z=v, labels=_labels(G, label, n)) for v in (lo, hi))
        sa, sb = style(a), style(b)
        effects[d] = {"ink": (sb["ink"] - sa["ink"]).abs().mean().item(),
                      "slant": (sb["slant"] - sa["slant"]).abs().mean().item(),
                      "identity": (digits_drawn(a) != digits_drawn(b))
                      .float().mean().item()}
    return effects


# --- pictures for the screen ------------------------------------------------------------

def png_bytes(images, nrow: int = 8, scale: int = 6) -> bytes:
    """Images in [-1, 1] -> PNG bytes of their grid, scaled up (nearest neighbour) for the
    screen. Fast compression: these bytes live for one slider move."""
    from PIL import Image
    pixels = (grid_image(images, nrow) * 255).round().to(torch.uint8).numpy()
    img = Image.fromarray(pixels)
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def animate(frames, titles=None, interval: int = 80, size: float = 1.6):
    """An HTML animation (matplotlib's to_jshtml: plays anywhere a notebook shows HTML,
    GitHub's viewer aside). `frames` is (T, K, 1, 28, 28): T frames of K images side by
    side, titled `titles` (K strings)."""
    import matplotlib.pyplot as plt
    from matplotlib import animation
    from IPython.display import HTML
    frames = (frames.detach().cpu().float() + 1) / 2
    T, K = frames.shape[:2]
    fig, axes = plt.subplots(1, K, figsize=(size * K, size * 1.15), squeeze=False)
    shown = []
    for k, ax in enumerate(axes[0]):
        shown.append(ax.imshow(frames[0, k, 0], cmap="gray", vmin=0, vmax=1))
        ax.set_axis_off()
        if titles:
            ax.set_title(titles[k], fontsize=9)

    def draw(t):
        for k, im in enumerate(shown):
            im.set_data(frames[t, k, 0])
        return shown

    anim = animation.FuncAnimation(fig, draw, frames=T, interval=interval, blit=True)
    html = HTML(anim.to_jshtml(default_mode="reflect"))
    plt.close(fig)
    return html


@contextmanager
def _one_thread():
    """One image is too little work to split across threads: a second thread only adds
    waiting, a lot of it on a busy CPU (measured on 2 busy cores: median 1 ms for one
    generator call on one thread, 40 to 170 ms on two)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


# --- the slider widget ------------------------------------------------------------------

class LatentExplorer:
    """Sliders on chosen latent dimensions of a trained generator.

    Parts (all plain ipywidgets): `image`, `sliders`, `dims` (which dimensions the sliders
    drive), `seed`, `new_z` (a button), `status` (the last update's time), and for
    conditional generators `digit`. `widget` lays them out, and displaying the explorer
    displays it. `render_ms` is the time the last update took in the kernel.
    """

    def __init__(self, G, n_sliders: int = 6, seed: int = 0, span: float = 3.0,
                 scale: int = 8, label: int = 0):
        import ipywidgets as w
        if getattr(G, "image_size", None) is None:
            raise GanError(f"The explorer draws images, but this {type(G).__name__} draws 2-D "
                           f"points; plot its samples with matplotlib instead.")
        self.G = G.eval()
        self.scale = scale
        self.z = torch.zeros(G.z_dim)
        self.render_ms = 0.0
        self.seed = w.IntText(value=seed, description="seed")
        self.new_z = w.Button(description="new random z")
        self.dims = w.SelectMultiple(options=list(range(G.z_dim)),
                                     value=tuple(range(n_sliders)), rows=4,
                                     description="dimensions")
        self.sliders = [w.FloatSlider(min=-span, max=span, step=0.05, continuous_update=True,
                                      readout_format=".2f")
                        for _ in range(n_sliders)]
        self.digit = (w.Dropdown(options=list(range(N_CLASSES)), value=label,
                                 description="digit")
                      if is_conditional(G) else None)
        self.image = w.Image(format="png")
        self.status = w.Label()
        controls = [self.seed, self.new_z, self.dims] + ([self.digit] if self.digit else [])
        self.widget = w.HBox([w.VBox([self.image, self.status]),
                              w.VBox(controls + self.sliders)])

        self._quiet = False  # no re-render while several sliders are set at once
        for s in self.sliders:
            s.observe(self._on_slider, names="value")
        self.dims.observe(lambda _: self._bind_sliders(), names="value")
        self.seed.observe(lambda _: self.draw_z(), names="value")
        self.new_z.on_click(lambda _: self._next_seed())
        if self.digit:
            self.digit.observe(lambda _: self.render(), names="value")
        self.draw_z()

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)

    def draw_z(self):
        """A fresh z from the seed box; the sliders jump to its values."""
        g = torch.Generator().manual_seed(int(self.seed.value))
        self.z = torch.randn(self.G.z_dim, generator=g)
        self._bind_sliders()

    def _next_seed(self):
        self.seed.value = int(self.seed.value) + 1   # observing the seed redraws z

    def _driven(self):
        """The dimensions the sliders drive, in slider order."""
        return list(self.dims.value)[:len(self.sliders)]

    def _bind_sliders(self):
        self._quiet = True
        dims = self._driven()
        for i, s in enumerate(self.sliders):
            s.disabled = i >= len(dims)
            s.description = f"z[{dims[i]}]" if i < len(dims) else "-"
            if i < len(dims):
                s.value = float(self.z[dims[i]].clamp(s.min, s.max))
        self._quiet = False
        self.render()

    def _on_slider(self, change):
        if self._quiet:
            return
        i = self.sliders.index(change["owner"])
        dims = self._driven()
        if i < len(dims):  # only the moved slider's dimension: the others keep their value
            self.z[dims[i]] = change["new"]
            self.render()

    def render(self):
        start = time.perf_counter()
        z = self.z[None]
        # G is in eval mode for good, so call it directly: generate() would switch modes
        # on every call, which costs more than the convolutions on a single image
        with _one_thread(), torch.inference_mode():
            x = crop_to_28(self.G(z) if self.digit is None else
                           self.G(z, torch.tensor([self.digit.value])))
        self.image.value = png_bytes(x, nrow=1, scale=self.scale)
        self.render_ms = 1000 * (time.perf_counter() - start)
        self.status.value = f"updated in {self.render_ms:.1f} ms"

    def time_moves(self, moves: int = 100, slider: int = 0) -> list:
        """Move one slider `moves` times across its range, as a drag would, and return the
        milliseconds each move took in the kernel: the observer, G and the PNG. (In a
        browser the trip through the Jupyter server comes on top: about 40 ms locally,
        measured by tests/test_browser.py; see notebook 06.)"""
        s = self.sliders[slider]
        values = torch.linspace(s.min, s.max, moves).tolist()
        times = []
        for v in values:
            start = time.perf_counter()
            s.value = v
            times.append(1000 * (time.perf_counter() - start))
        return times


# --- shipped generators -----------------------------------------------------------------

def export_generator(checkpoint_path, out_path, *, command: str, data_name: str) -> dict:
    """Write the generator of a training checkpoint alone, as a small file the `sample`
    command and `load_generator` read, with its provenance. Returns the provenance.

    `command` is the exact command that trained it and `data_name` the data it saw (e.g.
    "mnist (test, 10000 images)"); the steps, images seen, settings and date come from the
    checkpoint itself.
    """
    checkpoint_path = Path(checkpoint_path)
    state = checkpoint.load(checkpoint_path)
    name = state.get("model")
    G = _build(name, checkpoint_path)
    _fill(G, state["G"], checkpoint_path, name)
    history = state["history"]
    trained = datetime.fromtimestamp(checkpoint_path.stat().st_mtime, timezone.utc)
    provenance = {"command": command, "data": data_name, "steps": state["step"],
                  "images_seen": history["images"],
                  "train_seconds": round(history["seconds"], 1),
                  "settings": state["hparams"], "architecture": _describe(G),
                  "date": trained.date().isoformat(), "torch": str(torch.__version__)}
    checkpoint.save({"model": name, "G": G.state_dict(), "z_dim": G.z_dim,
                     "conditional": is_conditional(G), "provenance": provenance}, out_path)
    return provenance


def load_generator(path_or_name="dcgan", device="cpu"):
    """A trained generator in eval mode, from a shipped name ('dcgan', 'cgan') or a path
    (an exported generator or a training checkpoint.pt). Loaded with weights_only=True.
    Its provenance, if the file has one, is in `G.provenance`."""
    path = _resolve(path_or_name)
    state = checkpoint.load(path, map_location=device)
    name = state.get("model")
    G = _build(name, path)
    _fill(G, state.get("G"), path, name, _remake(path_or_name, state.get("provenance", {})))
    G.provenance = state.get("provenance", {})
    return G.to(device).eval().requires_grad_(False)


def shipped_path(name: str) -> Path:
    return WEIGHTS / f"{name}_generator.pt"


def _resolve(path_or_name) -> Path:
    if isinstance(path_or_name, str) and path_or_name in SHIPPED:
        path = shipped_path(path_or_name)
        if not path.is_file():
            raise GanError(f"The shipped {path_or_name} weights are missing from {path}; "
                           f"make them with `python -m gan_helpers.explore ship "
                           f"{path_or_name}`, or reinstall gan_helpers.")
        return path
    return Path(path_or_name)


def _remake(path_or_name, provenance: dict):
    """The command that makes these weights again, if the file says."""
    if path_or_name in SHIPPED and "steps" in provenance:
        steps = provenance["steps"]
        return f"python -m gan_helpers.explore ship {path_or_name} --steps {steps}"
    return provenance.get("command")


def _build(name, path):
    if name not in recipes.RECIPES:
        raise GanError(f"{path} holds a {name!r} model, which is none of the series' "
                       f"models ({', '.join(recipes.RECIPES)}).")
    G, _ = recipes.get(name).build()
    return G


def _fill(G, weights, path, name, remake=None) -> None:
    """Load `weights` into G, or say which tensor does not fit: the recipe changed."""
    again = f"make them again with `{remake}`" if remake else "train them again"
    if not isinstance(weights, dict) or not all(torch.is_tensor(t) for t in weights.values()):
        raise GanError(f"{path} holds no generator weights; {again}.")
    own = G.state_dict()
    for key in sorted(own.keys() | weights.keys()):
        mine, saved = own.get(key), weights.get(key)
        if mine is None or saved is None or mine.shape != saved.shape:
            shape = lambda t: "missing" if t is None else tuple(t.shape)
            raise GanError(f"{path} does not fit the {name!r} generator that recipes.py "
                           f"builds now ({key}: {shape(saved)} in the file, {shape(mine)} "
                           f"in the model): the recipe changed since these weights were "
                           f"trained; {again}, or use the gan_helpers version they came with.")
    G.load_state_dict(weights)


def _describe(G) -> str:
    n = sum(p.numel() for p in G.parameters())
    width = (f", hidden={G.net[0].out_channels // 4}" if isinstance(G, DCGANGenerator) else "")
    return f"{type(G).__name__}(z_dim={G.z_dim}{width}), {n:,} parameters"


# --- python -m gan_helpers.explore ship MODEL --------------------------------------------

def ship(model: str, steps: int, seed: int = 0, out: Path | None = None) -> dict:
    """Train MODEL with the project's command line, then export its generator to
    gan_helpers/weights/MODEL_generator.pt with the exact command as provenance."""
    from .__main__ import main as cli
    if model not in SHIPPED:
        raise GanError(f"Only {', '.join(SHIPPED)} are shipped; not {model!r}.")
    out = Path(out) if out is not None else Path("runs") / f"ship-{model}"
    argv = ["train", model, "--out", str(out), "--steps", str(steps), "--seed", str(seed)]
    threads = os.environ.get("OMP_NUM_THREADS")  # CPU results depend on the thread count
    command = (f"OMP_NUM_THREADS={threads} " if threads else "") + \
        "python -m gan_helpers " + " ".join(argv)
    print(command, flush=True)
    if cli(argv) != 0:
        raise GanError("Training failed; see the message above. Nothing was exported.")
    data_name = data.load("mnist").name   # what `train` loaded: the same lookup
    provenance = export_generator(out / "checkpoint.pt", shipped_path(model),
                                  command=command, data_name=data_name)
    shipped_path(model).chmod(0o644)  # package data: readable by every user of the install
    size = shipped_path(model).stat().st_size
    print(f"wrote {shipped_path(model)} ({size / 1e6:.2f} MB): {provenance}")
    return provenance


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_helpers.explore",
                                description="Make the shipped generators again.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("ship", help="train with the command line, then export the generator")
    s.add_argument("model", choices=SHIPPED)
    s.add_argument("--steps", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, help="the run folder (default runs/ship-MODEL)")
    args = p.parse_args(argv)
    try:
        ship(args.model, args.steps, args.seed, args.out)
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
