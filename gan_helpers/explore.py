"""Explore what a generator learned: paths through latent space, what a direction changes,
the slider explorer, and the steerable toy GAN. Only widget APIs common to ipywidgets 7.7
(Colab) and 8 are used."""

import io
import time
from contextlib import contextmanager

import torch

from .env import GanError
from .losses import BCE, WassersteinGP
from .metrics import classify
from .models import N_CLASSES, crop_to_28, generate, is_conditional
from .viz import png_bytes


def lerp(z0, z1, t: float):
    """The straight line between two latent vectors."""
    return (1 - t) * z0 + t * z1


def slerp(z0, z1, t: float):
    """The great circle between two latent vectors. A Gaussian z in d dimensions has norm
    close to sqrt(d); the straight line's midpoint is shorter (about sqrt(d/2)), where the
    generator rarely was in training. The arc keeps the norm in the typical range."""
    a, b = z0 / z0.norm(), z1 / z1.norm()
    omega = torch.arccos((a * b).sum().clamp(-1, 1))
    if omega.abs() < 1e-6:  # (nearly) the same direction: the line is the arc
        return lerp(z0, z1, t)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def interpolate(G, z0, z1, steps=8, method="slerp", label=None):
    """(steps, 1, 28, 28) images along the path from z0 to z1."""
    paths = {"lerp": lerp, "slerp": slerp}
    if method not in paths:
        raise GanError(f"Unknown interpolation {method!r}; choose 'slerp' or 'lerp'.")
    z = torch.stack([paths[method](z0, z1, t) for t in torch.linspace(0, 1, steps).tolist()])
    return generate(G, z, _labels(G, label, steps))


def latent_walk(G, z, dims, span=2.5, steps=7, label=None):
    """A (len(dims) * steps) grid: row i sets z[dims[i]] from -span to +span."""
    zs = z.repeat(len(dims) * steps, 1)
    for i, d in enumerate(dims):
        zs[i * steps : (i + 1) * steps, d] = torch.linspace(-span, span, steps)
    return generate(G, zs, _labels(G, label, len(zs)))


def _labels(G, label, n):
    if not is_conditional(G):
        return None
    if label is None:
        raise GanError("This generator is conditional: pass label=, the digit to draw (0-9).")
    return torch.full((n,), int(label), dtype=torch.long)


def style(images) -> dict:
    """Two style measures per image, each (N,): `ink`, the mean brightness in [0, 1] (thicker
    or bigger digits have more), and `slant`, how many pixels the stroke leans right per
    pixel of height (0 upright), from the image's second moments."""
    w = (images.detach().cpu().float()[:, 0] + 1) / 2  # (N, 28, 28) in [0, 1]
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = w.sum((1, 2)).clamp_min(1e-6)
    dx = xs - ((w * xs).sum((1, 2)) / mass)[:, None, None]
    dy = ys - ((w * ys).sum((1, 2)) / mass)[:, None, None]
    # rows grow downwards, so a stroke leaning right has x falling as the row index grows
    slant = -(w * dx * dy).sum((1, 2)) / (w * dy * dy).sum((1, 2)).clamp_min(1e-6)
    return {"ink": w.mean((1, 2)), "slant": slant}


def follows_labels(G, n=100, seed=0) -> torch.Tensor:
    """(10,): for each digit k, the share of n samples drawn with label k that the metrics'
    judge calls a k. Near 1 for a generator that obeys its labels, about 0.1 if it ignores them."""
    z = torch.randn(n * N_CLASSES, G.z_dim, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(N_CLASSES).repeat_interleave(n)
    return (classify(generate(G, z, labels)) == labels).view(N_CLASSES, n).float().mean(1)


def code_purity(G, n=100, seed=0) -> tuple[float, list]:
    """How well an InfoGAN generator's categorical code matches the digit classes: n samples
    per code, judged by the metrics' classifier; see `matched_purity`."""
    z = torch.randn(n * G.n_cat, G.z_dim, generator=torch.Generator().manual_seed(seed))
    codes = torch.arange(G.n_cat).repeat_interleave(n)
    z[:, : G.n_cat] = torch.nn.functional.one_hot(codes, G.n_cat).float()
    return matched_purity(codes, classify(generate(G, z)))


def matched_purity(codes, digits) -> tuple[float, list]:
    """The share of samples whose digit is the one their code stands for, under the best
    one-to-one matching of codes to digits, and that matching (code -> digit). Exact: a
    dynamic programme over the sets of digits already matched."""
    n_cat = int(codes.max()) + 1
    counts = torch.zeros(n_cat, N_CLASSES)
    counts.index_put_((codes, digits), torch.ones(len(codes)), accumulate=True)
    best, pick = {0: 0.0}, {0: []}  # over digit sets `mask`: the best for codes 0..|mask|-1
    for mask in range(1, 1 << N_CLASSES):
        k = bin(mask).count("1") - 1
        if k < n_cat:
            best[mask], pick[mask] = max(
                (best[mask ^ (1 << d)] + counts[k, d].item(), pick[mask ^ (1 << d)] + [d])
                for d in range(N_CLASSES)
                if mask >> d & 1
            )
    full = max((m for m in best if bin(m).count("1") == n_cat), key=best.get)
    return best[full] / len(codes), pick[full]


def walk_effects(G, dims, n=64, span=2.5, seed=0, label=None) -> dict:
    """What moving each dimension from -span to +span does, over n random z:
    {dim: {"ink", "slant": mean |change|, "identity": share of digits whose class changes}}."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    effects = {}
    for d in dims:
        lo, hi = z.clone(), z.clone()
        lo[:, d], hi[:, d] = -span, span
        a, b = (generate(G, v, _labels(G, label, n)) for v in (lo, hi))
        sa, sb = style(a), style(b)
        effects[d] = {
            "ink": (sb["ink"] - sa["ink"]).abs().mean().item(),
            "slant": (sb["slant"] - sa["slant"]).abs().mean().item(),
            "identity": (classify(a) != classify(b)).float().mean().item(),
        }
    return effects


@contextmanager
def _one_thread():
    """One image is too little work to share: a second thread only adds waiting."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class LatentExplorer:
    """Sliders on chosen latent dimensions of a trained generator.

    Parts, all plain ipywidgets: `image`, `sliders`, `dims` (which dimensions the sliders
    drive), `seed`, `new_z` (a button), `status`, and `digit`: the label of a conditional
    generator, or the categorical code of an InfoGAN generator. Displaying the explorer
    displays `widget`; `render_ms` is the last redraw's time in the kernel.
    """

    def __init__(self, G, n_sliders=6, seed=0, span=3.0, scale=8, label=0, dims=None):
        import ipywidgets as w

        if getattr(G, "image_size", None) is None:
            raise GanError(
                f"The explorer draws images, but this {type(G).__name__} draws 2-D "
                f"points; plot its samples with matplotlib instead."
            )
        self.G, self.scale, self.render_ms = G.eval(), scale, 0.0
        self.n_cat = getattr(G, "n_cat", 0)  # InfoGAN: the categorical code
        first = self.n_cat if dims is None else 0
        dims = tuple(range(first, first + n_sliders)) if dims is None else tuple(dims)
        self.z = torch.zeros(G.z_dim)
        self.seed = w.IntText(value=seed, description="seed")
        self.new_z = w.Button(description="new random z")
        self.dims = w.SelectMultiple(
            options=list(range(G.z_dim)), value=dims, rows=4, description="dimensions"
        )
        self.sliders = [
            w.FloatSlider(
                min=-span, max=span, step=0.05, continuous_update=True, readout_format=".2f"
            )
            for _ in range(n_sliders)
        ]
        has_digit = is_conditional(G) or self.n_cat
        self.digit = (
            w.Dropdown(
                options=list(range(self.n_cat or N_CLASSES)),
                value=label,
                description="code" if self.n_cat else "digit",
            )
            if has_digit
            else None
        )
        self.image, self.status = w.Image(format="png"), w.Label()
        controls = [self.seed, self.new_z, self.dims] + ([self.digit] if self.digit else [])
        self.widget = w.HBox([w.VBox([self.image, self.status]), w.VBox(controls + self.sliders)])
        self._quiet = False  # no redraw while several sliders are set at once
        for s in self.sliders:
            s.observe(self._on_slider, names="value")
        self.dims.observe(lambda _: self._bind_sliders(), names="value")
        self.seed.observe(lambda _: self.draw_z(), names="value")
        self.new_z.on_click(lambda _: setattr(self.seed, "value", int(self.seed.value) + 1))
        if self.digit:
            self.digit.observe(self._on_digit, names="value")
        self.draw_z()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def draw_z(self):
        """A fresh z from the seed box; the sliders jump to its values."""
        self.z = torch.randn(
            self.G.z_dim, generator=torch.Generator().manual_seed(int(self.seed.value))
        )
        self._set_code()
        self._bind_sliders()

    def _on_digit(self, change):
        self._set_code()
        self.render()

    def _set_code(self):
        if self.n_cat:  # the code is the argmax of z's first n_cat numbers
            self.z = self.G.with_code(self.z[None], self.digit.value)[0]

    def _driven(self):
        return list(self.dims.value)[: len(self.sliders)]

    def _bind_sliders(self):
        self._quiet, dims = True, self._driven()
        for i, s in enumerate(self.sliders):
            s.disabled = i >= len(dims)
            s.description = f"z[{dims[i]}]" if i < len(dims) else "-"
            if i < len(dims):
                s.value = float(self.z[dims[i]].clamp(s.min, s.max))
        self._quiet = False
        self.render()

    def _on_slider(self, change):
        i, dims = self.sliders.index(change["owner"]), self._driven()
        if not self._quiet and i < len(dims):  # only the moved slider's dimension changes
            self.z[dims[i]] = change["new"]
            self.render()

    def render(self):
        start = time.perf_counter()
        # G stays in eval mode, so call it directly: generate() would switch modes each time
        with _one_thread(), torch.inference_mode():
            x = crop_to_28(
                self.G(self.z[None])
                if not is_conditional(self.G)
                else self.G(self.z[None], torch.tensor([self.digit.value]))
            )
        self.image.value = png_bytes(x, nrow=1, scale=self.scale)
        self.render_ms = 1000 * (time.perf_counter() - start)
        self.status.value = f"updated in {self.render_ms:.1f} ms"

    def time_moves(self, moves=100, slider=0) -> list:
        """Move one slider `moves` times across its range, as a drag would; the milliseconds
        each move took in the kernel (the observer, G and the PNG)."""
        s, times = self.sliders[slider], []
        for v in torch.linspace(s.min, s.max, moves).tolist():
            start = time.perf_counter()
            s.value = v
            times.append(1000 * (time.perf_counter() - start))
        return times


class ToyPlayground:
    """Chapter 00's toy GAN, trained live under widgets, in the spirit of GAN Lab.

    Parts: `play` (a widgets.Play, which ticks in the browser; each tick trains
    `steps_per_frame` steps and redraws), `one_step`, `reset`, the learning rates `lr_g`
    and `lr_d` (applied at once), and `loss`, `z_dim` and `modes`, which start a fresh run.
    Each frame is one PNG: D's surface as an image, the real points black, G's fixed points
    orange, and lines for where G's loss pushes them. `status` shows the step, the modes
    covered and the frame rate.
    """

    RATES = (0.0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    LOSSES = {
        "non-saturating": BCE,
        "saturating": lambda: BCE(saturating=True),
        "WGAN-GP": WassersteinGP,
    }

    def __init__(self, steps_per_frame=5, seed=0, size=300, grid=75):
        import ipywidgets as w
        from matplotlib import colormaps

        self.steps_per_frame, self.seed, self.size, self.grid = steps_per_frame, seed, size, grid
        self.colours = torch.tensor(colormaps["PRGn"](torch.linspace(0, 1, 256).numpy())[:, :3])
        self.play = w.Play(interval=60, min=0, max=10**9, step=1, description="play")
        self.one_step = w.Button(description="one step")
        self.reset = w.Button(description="reset")
        self.lr_g = w.SelectionSlider(options=self.RATES, value=1e-3, description="lr G")
        self.lr_d = w.SelectionSlider(options=self.RATES, value=1e-3, description="lr D")
        self.loss = w.Dropdown(
            options=list(self.LOSSES), value="non-saturating", description="loss"
        )
        self.z_dim = w.SelectionSlider(
            options=(1, 2, 4, 16, 64, 256), value=2, description="noise size"
        )
        self.modes = w.IntSlider(value=8, min=2, max=12, description="modes")
        self.image, self.status = w.Image(format="png"), w.Label()
        self.widget = w.HBox(
            [
                w.VBox([self.image, self.status]),
                w.VBox(
                    [
                        w.HBox([self.play, self.one_step, self.reset]),
                        self.lr_g,
                        self.lr_d,
                        self.loss,
                        self.z_dim,
                        self.modes,
                    ]
                ),
            ]
        )
        self.play.observe(lambda _: self.tick(), names="value")
        self.one_step.on_click(lambda _: self.tick())
        self.reset.on_click(lambda _: self.start())
        for rate in (self.lr_g, self.lr_d):
            rate.observe(lambda _: self._set_rates(), names="value")
        for knob in (self.loss, self.z_dim, self.modes):
            knob.observe(lambda _: self.start(), names="value")
        self._last = None
        self.start()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def start(self):
        """A fresh run with the current loss, noise size and number of modes."""
        from .data import ring_of_gaussians
        from .models import ToyDiscriminator, ToyGenerator
        from .train import Trainer

        self.ring = ring_of_gaussians(4096, modes=self.modes.value, seed=self.seed)
        torch.manual_seed(self.seed)
        wgan = self.loss.value == "WGAN-GP"
        self.trainer = Trainer(
            ToyGenerator(z_dim=self.z_dim.value),
            ToyDiscriminator(),
            self.ring,
            loss=self.LOSSES[self.loss.value](),
            batch_size=256,
            n_critic=5 if wgan else 1,
            betas=(0.5, 0.9 if wgan else 0.999),
            seed=self.seed,
            n_fixed=512,
        )
        self.trainer.progress = False
        self._set_rates()
        self.render()

    def _set_rates(self):
        for opt, rate in ((self.trainer.opt_g, self.lr_g), (self.trainer.opt_d, self.lr_d)):
            for group in opt.param_groups:
                group["lr"] = rate.value

    def tick(self):
        """Train one frame's steps, then draw."""
        with _one_thread():
            self.trainer.train(self.steps_per_frame)
        self.render()

    def render(self):
        from .checks import modes_covered

        t = self.trainer
        with _one_thread(), torch.inference_mode():
            fakes = t.G.eval()(t.fixed_z).detach()
        t.G.train()
        self.image.value = _draw_toy(
            t,
            self.ring.x[:500],
            fakes,
            self.colours,
            self.size,
            self.grid,
            critic=self.loss.value == "WGAN-GP",
        )
        now = time.perf_counter()
        fps = "" if self._last is None else f" · {1 / max(now - self._last, 1e-6):.0f} frames/s"
        self._last = now
        covered = modes_covered(fakes, modes=self.modes.value)
        self.status.value = f"step {t.step} · {covered}/{self.modes.value} modes{fps}"

    def frame_rate(self, frames=50) -> float:
        """Frames per second over `frames` ticks, training and drawing, as play runs them."""
        start = time.perf_counter()
        for _ in range(frames):
            self.tick()
        return frames / (time.perf_counter() - start)


def _draw_toy(t, real, fakes, colours, size, grid, critic) -> bytes:
    """One frame as PNG bytes: D's surface as an image (a critic's score stretched to its
    range), the real points black, G's points orange, and where G's loss pushes them."""
    from PIL import Image, ImageDraw

    axis = torch.linspace(-3, 3, grid)
    points = torch.stack(torch.meshgrid(axis, -axis, indexing="xy"), -1).reshape(-1, 2)
    with _one_thread(), torch.inference_mode():
        score = t.D(points)
    if critic:  # a critic's score has no scale of its own
        score = (score - score.min()) / (score.max() - score.min()).clamp_min(1e-6)
    else:
        score = torch.sigmoid(score)
    rgb = colours[(score * 255).long().clamp(0, 255)].reshape(grid, grid, 3)
    img = Image.fromarray((rgb * 255).byte().numpy()).resize((size, size), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    to_px = lambda p: ((p[:, 0] + 3) / 6 * size, (3 - p[:, 1]) / 6 * size)
    at = fakes[:60].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(t.loss.g_loss(t.D, at), at)
    push = -grad / grad.norm(dim=1).max().clamp_min(1e-12) * 0.5
    for (x0, y0), (x1, y1) in zip(zip(*to_px(at.detach())), zip(*to_px(at.detach() + push))):
        draw.line([(x0, y0), (x1, y1)], fill=(166, 54, 3), width=2)
    for colour, p in (((0, 0, 0), real), ((255, 140, 0), fakes)):
        for x, y in zip(*to_px(p)):
            draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=colour)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
