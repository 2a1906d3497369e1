"""Pictures: sample grids (also redrawn live while training), PNG bytes for widgets, curves,
looping GIFs, and source code shown in place."""

import inspect
import io
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from .env import GanError


def grid_image(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> one grid in [0, 1] on the CPU, white lines between:
    (H', W') for greyscale, (H', W', 3) for colour."""
    g = make_grid(
        images.detach().cpu().float(),
        nrow=nrow,
        padding=2,
        pad_value=1.0,
        normalize=True,
        value_range=(-1, 1),
    )
    return g[0] if images.shape[1] == 1 else g.permute(1, 2, 0)


def grid_pixels(images, nrow: int = 8, scale: int = 1):
    """The grid as a PIL image, each pixel `scale` times larger."""
    from PIL import Image

    img = Image.fromarray((grid_image(images, nrow) * 255).round().to(torch.uint8).numpy())
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def png_bytes(images, nrow: int = 8, scale: int = 6) -> bytes:
    """PNG bytes of the grid for a widget; fast compression, as they live for one redraw."""
    buf = io.BytesIO()
    grid_pixels(images, nrow, scale).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def show_grid(images, title=None, nrow=8, ax=None, size=4):
    """Draw a sample grid inline (white digits on black, as in MNIST)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(grid_image(images, nrow), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def compare_grids(named_images: dict, nrow=8, size=3.5, ncols=4):
    """Several grids, titled by their names, in rows of at most `ncols`."""
    ncols = min(ncols, len(named_images))
    nrows = -(-len(named_images) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, (size + 0.3) * nrows), squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, images) in zip(axes.flat, named_images.items()):
        show_grid(images, title=name, nrow=nrow, ax=ax)
    fig.tight_layout()
    plt.show()


class LiveGrid:
    """A sample grid that redraws in place each time training calls it: pass it as
    `on_snapshot=`. Outside a notebook it draws nothing."""

    def __init__(self, nrow=8, size=4):
        self.nrow, self.size, self.handle = nrow, size, None

    def __call__(self, step, images):
        try:
            from IPython.display import display
        except ImportError:
            return
        fig, ax = plt.subplots(figsize=(self.size, self.size))
        show_grid(images, title=f"step {step}", nrow=self.nrow, ax=ax)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)


def smooth(values, k=25) -> list:
    """A running mean over k values, for noisy per-step curves."""
    if len(values) < k or k <= 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    return torch.nn.functional.avg_pool1d(t[None, None], k, 1).flatten().tolist()


def plot_history(history, title="", k=25):
    """The two losses (left) and D's outputs on real and fake (right), smoothed over k steps,
    from a Trainer's history: {"step": [...], "loss_d": [...], ...}."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    panels = (
        (("loss_d", "D loss"), ("loss_g", "G loss")),
        (("d_real", "D(x), real"), ("d_fake", "D(G(z)), fake")),
    )
    for ax, curves, name in zip(axes, panels, ("losses", "discriminator outputs")):
        for key, label in curves:
            v = smooth(history[key], k)
            ax.plot(history["step"][len(history["step"]) - len(v) :], v, label=label)
        ax.set(xlabel="step", title=f"{title} {name}".strip())
        ax.legend()
    plt.show()


def show_source(obj):
    """The source of a function or class, highlighted, in place."""
    src = inspect.getsource(obj)
    try:
        from IPython.display import Code, display
    except ImportError:
        print(src)
        return
    display(Code(src, language="python"))


def gif(frames, captions=None, path=None, nrow=8, scale=2, ms_per_frame=150, hold_last=8) -> bytes:
    """A looping GIF with one grid per batch of images in `frames`, each under its caption,
    the last frame held `hold_last` frames long. Returns the bytes, also written to `path`."""
    from PIL import Image, ImageDraw

    if not len(frames):
        raise GanError(
            "There are no frames to animate; a Trainer keeps them with snapshot_every=N."
        )
    shots = []
    for i, images in enumerate(frames):
        grid = grid_pixels(images, nrow, scale)
        shot = Image.new(grid.mode, (grid.width, grid.height + 14), color="white")
        shot.paste(grid, (0, 14))
        ImageDraw.Draw(shot).text((4, 1), captions[i] if captions else "", fill="black")
        shots.append(shot)
    buf = io.BytesIO()
    durations = [ms_per_frame] * (len(shots) - 1) + [ms_per_frame * hold_last]
    shots[0].save(
        buf, format="GIF", save_all=True, append_images=shots[1:], loop=0, duration=durations
    )
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(buf.getvalue())
    return buf.getvalue()


def show_gif(frames, captions=None, **kw) -> None:
    """`gif`, shown inline."""
    from IPython.display import Image, display

    display(Image(data=gif(frames, captions, **kw), format="gif"))
