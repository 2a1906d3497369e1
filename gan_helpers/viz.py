"""Pictures: sample grids (also updated live while training), training animations, curves,
and source code."""
import inspect
import io
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from .errors import GanError


def grid_image(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """(N, 1, H, W) in [-1, 1] -> one (H', W') grid in [0, 1], on the CPU."""
    g = make_grid(images.detach().cpu().float(), nrow=nrow, padding=2, pad_value=1.0,
                  normalize=True, value_range=(-1, 1))
    return g[0]


def show_grid(images, title=None, nrow=8, ax=None, size=4):
    """Draw a sample grid inline (white digits on black, as in MNIST)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(grid_image(images, nrow), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def compare_grids(named_images: dict, nrow=8, size=3.5):
    """Several grids side by side, e.g. two chapters' samples on the same fixed noise."""
    fig, axes = plt.subplots(1, len(named_images), figsize=(size * len(named_images), size))
    for ax, (name, images) in zip(list(axes) if len(named_images) > 1 else [axes],
                                  named_images.items()):
        show_grid(images, title=name, nrow=nrow, ax=ax)
    plt.show()


class LiveGrid:
    """A sample grid that redraws in place in a notebook each time training calls it.

    Pass it as `on_snapshot=`; outside a notebook it does nothing but keep the last grid.
    """

    def __init__(self, nrow=8, size=4):
        self.nrow, self.size, self.handle, self.last = nrow, size, None, None

    def __call__(self, step, images):
        self.last = (step, images)
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


def _smooth(values, k):
    if len(values) < k or k <= 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    return torch.nn.functional.avg_pool1d(t[None, None], k, 1).flatten().tolist()


def plot_history(history, title="", smooth=25):
    """Loss curves (left) and D(x) against D(G(z)) (right), smoothed over `smooth` steps."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.5))
    steps = history.step
    for key, label in (("loss_d", "D loss"), ("loss_g", "G loss")):
        v = _smooth(history[key], smooth)
        a.plot(steps[len(steps) - len(v):], v, label=label)
    a.set_xlabel("step")
    a.set_title(f"{title} losses".strip())
    a.legend()
    for key, label in (("d_real", "D(x), real"), ("d_fake", "D(G(z)), fake")):
        v = _smooth(history[key], smooth)
        b.plot(steps[len(steps) - len(v):], v, label=label)
    b.set_xlabel("step")
    b.set_title("discriminator outputs")
    b.legend()
    plt.show()


def show_source(obj):
    """Show the source of a function or class of gan_helpers, highlighted, in place."""
    src = inspect.getsource(obj)
    try:
        from IPython.display import Code, display
    except ImportError:
        print(src)
        return
    display(Code(src, language="python"))


def training_gif(snapshots, path=None, nrow=8, scale=2, ms_per_frame=150, hold_last=8) -> bytes:
    """The fixed-noise grid at every snapshot of a run, as an animated GIF that loops.

    `snapshots` is `Trainer.snapshots`, a list of (step, images). Each frame is stamped
    with its step; the last frame is held `hold_last` times longer so the result can be
    read before the loop restarts. Returns the GIF bytes, also written to `path` if given.
    """
    from PIL import Image, ImageDraw
    if not snapshots:
        raise GanError("There are no snapshots to animate; train with snapshot_every=N first.")
    frames = []
    for step, images in snapshots:
        pixels = (grid_image(images, nrow) * 255).round().to(torch.uint8).numpy()
        frame = Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale),
                                               Image.NEAREST)
        canvas = Image.new("L", (frame.width, frame.height + 14), color=255)
        canvas.paste(frame, (0, 14))
        ImageDraw.Draw(canvas).text((4, 1), f"step {step}", fill=0)
        frames.append(canvas)
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * hold_last]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=durations, loop=0)
    gif = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(gif)
    return gif


def show_training(snapshots, **kw):
    """`training_gif`, shown inline in a notebook. Returns None, so that a notebook cell
    ending with this call does not also print the GIF's bytes."""
    from IPython.display import Image, display
    display(Image(data=training_gif(snapshots, **kw), format="gif"))
