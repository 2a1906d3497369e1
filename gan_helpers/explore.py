"""Explore what a generator learned: walks along latent dimensions, what each one changes, how
an InfoGAN code matches the digits, and the slider explorer. Only widget APIs common to
ipywidgets 7.7 (Colab) and 8 are used."""

import time

import torch

from .env import GanError, one_thread
from .metrics import classify
from .models import N_CLASSES, crop_to_28, generate, is_conditional
from .viz import png_bytes


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
    w = (images.detach().cpu().float()[:, 0] + 1) / 2  # (N, H, W) in [0, 1]
    ys, xs = torch.meshgrid(*(torch.arange(float(n)) for n in w.shape[1:]), indexing="ij")
    mass = w.sum((1, 2)).clamp_min(1e-6)
    dx = xs - ((w * xs).sum((1, 2)) / mass)[:, None, None]
    dy = ys - ((w * ys).sum((1, 2)) / mass)[:, None, None]
    # rows grow downwards, so a stroke leaning right has x falling as the row index grows
    slant = -(w * dx * dy).sum((1, 2)) / (w * dy * dy).sum((1, 2)).clamp_min(1e-6)
    return {"ink": w.mean((1, 2)), "slant": slant}


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


class LatentExplorer:
    """Sliders on chosen latent dimensions of a trained generator.

    Parts, all plain ipywidgets: `image`, `sliders`, `dims` (which dimensions the sliders
    drive), `seed`, `new_z` (a button), `status`, and `digit`: the label of a conditional
    generator, or the categorical code of an InfoGAN generator. Displaying the explorer
    displays `widget`; `render_ms` is the last redraw's time in the kernel.
    """

    def __init__(self, G, n_sliders=6, seed=0, span=3.0, scale=8, label=0, dims=None):
        import ipywidgets as w

        with torch.no_grad():  # one draw says whether G makes pictures at all
            shape = generate(G, torch.zeros(1, G.z_dim), _labels(G, 0, 1)).shape
        if len(shape) != 4:
            raise GanError(
                f"LatentExplorer shows pictures, but this generator draws outputs of shape "
                f"{tuple(shape)}; for 2-D points use toy.ToyPlayground."
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
        z = self.z[None].to(next(self.G.parameters()).device)  # the sliders edit a CPU z
        with one_thread(), torch.inference_mode():
            x = crop_to_28(
                self.G(z)
                if not is_conditional(self.G)
                else self.G(z, torch.tensor([self.digit.value], device=z.device))
            )
        self.image.value = png_bytes(x, nrow=1, scale=self.scale)
        self.render_ms = 1000 * (time.perf_counter() - start)
        self.status.value = f"updated in {self.render_ms:.1f} ms"
