"""Chapter 00's toy world, which chapter 05 reuses: a ring of Gaussians in the plane, a small
pair of networks for 2-D points, a count of the modes a generator covers, and the
playground that trains the pair live under widgets, in the spirit of GAN Lab."""

import io
import time

import torch
from torch import nn

from .data import Images
from .env import one_thread, resolve_device
from .losses import BCE, WassersteinGP
from .train import Trainer


def ring_of_gaussians(n=4096, modes=8, radius=2.0, std=0.05, seed=0, device="cpu") -> Images:
    """`modes` Gaussians evenly spaced on a circle: x is (n, 2), y each point's mode. Every
    mode is visible, so missing ones (mode collapse) are plain to see."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(modes, (n,), generator=g)
    x = ring_centres(modes, radius)[y] + std * torch.randn(n, 2, generator=g)
    device = resolve_device(device)
    return Images(x.to(device), y.to(device), f"ring of {modes} Gaussians")


def ring_centres(modes=8, radius=2.0) -> torch.Tensor:
    angle = torch.arange(modes) * (2 * torch.pi / modes)
    return radius * torch.stack([angle.cos(), angle.sin()], dim=1)  # (modes, 2)


def modes_covered(points, modes=8, radius=2.0, within=0.25, min_share=0.02) -> int:
    """How many ring modes hold at least `min_share` of the points within `within` of their
    centre: `modes` is full coverage, 1 is complete mode collapse."""
    d = torch.cdist(points.detach().float().cpu(), ring_centres(modes, radius))
    counts = torch.bincount(d.argmin(dim=1)[d.min(dim=1).values < within], minlength=modes)
    return int((counts >= min_share * len(points)).sum())


# each layer beside the shape it outputs, as in models.py
# fmt: off
class ToyGenerator(nn.Module):
    """z (B, z_dim) -> a point (B, 2)."""

    def __init__(self, z_dim=2, hidden=128):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(),      # (B, 128)
                                 nn.Linear(hidden, hidden), nn.ReLU(),     # (B, 128)
                                 nn.Linear(hidden, 2))                     # (B, 2)

    def forward(self, z):
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """A point (B, 2) -> a logit (B,)."""

    def __init__(self, hidden=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(0.2),        # (B, 128)
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),   # (B, 128)
                                 nn.Linear(hidden, 1))                           # (B, 1)

    def forward(self, x):
        return self.net(x).squeeze(1)                                            # (B,)
# fmt: on


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
        self.loss = w.Dropdown(options=list(self.LOSSES), description="loss")
        sizes = (1, 2, 4, 16, 64, 256)
        self.z_dim = w.SelectionSlider(options=sizes, value=2, description="noise size")
        self.modes = w.IntSlider(value=8, min=2, max=12, description="modes")
        self.image, self.status = w.Image(format="png"), w.Label()
        controls = [w.HBox([self.play, self.one_step, self.reset]), self.lr_g, self.lr_d]
        controls += [self.loss, self.z_dim, self.modes]
        self.widget = w.HBox([w.VBox([self.image, self.status]), w.VBox(controls)])
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
        with one_thread():
            self.trainer.train(self.steps_per_frame)
        self.render()

    def render(self):
        t = self.trainer
        with one_thread(), torch.inference_mode():
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


def _draw_toy(t, real, fakes, colours, size, grid, critic) -> bytes:
    """One frame as PNG bytes: D's surface as an image (a critic's score stretched to its
    range), the real points black, G's points orange, and where G's loss pushes them."""
    from PIL import Image, ImageDraw

    axis = torch.linspace(-3, 3, grid)
    points = torch.stack(torch.meshgrid(axis, -axis, indexing="xy"), -1).reshape(-1, 2)
    with one_thread(), torch.inference_mode():
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
