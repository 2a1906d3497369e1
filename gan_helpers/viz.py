"""Pictures: sample grids (also updated live while training), curves, and source code."""
import inspect

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid


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
