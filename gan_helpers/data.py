"""MNIST and Fashion-MNIST as one normalised tensor on the training device, and batches drawn
by a random permutation on that device.

The images are decoded once by torchvision and scaled once to [-1, 1], the Tanh range of
every generator; the source posts decode and transform every image on every step.
"""

from dataclasses import dataclass

import torch
from torchvision import datasets

from . import files
from .env import GanError, resolve_device

DATASETS = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}
HELD_OUT = 2000  # offline, with only the 10k test split: digits kept out of training


@dataclass
class Images:
    """A whole data set on one device."""

    x: torch.Tensor  # (N, 1, 28, 28) float32 in [-1, 1]; (N, 2) points for the toy
    y: torch.Tensor  # (N,) int64 class labels
    name: str  # e.g. "mnist (train, 60000 images)"
    background: float = -1.0  # the pixel value of empty paper, used to pad to 32x32

    def __len__(self):
        return len(self.x)


def load(name="mnist", root=None, device="cpu", split="train") -> Images:
    """The `split` ("train" or "held-out") of a data set, as Images on `device`.

    With the official training split present, "held-out" is the 10k test split. Offline,
    with only the test split, a fixed 2,000 of its digits are held out and the other 8,000
    train, so that samples can still be judged against digits no generator saw.
    """
    if split not in ("train", "held-out"):
        raise GanError(f"Unknown split {split!r}; choose 'train' or 'held-out'.")
    cls, root = _dataset_class(name), files.root_folder(root)
    ds = files.open_dataset(cls, root, name)
    if ds.train:
        if split == "held-out":
            ds = files.read_dataset(files.only_split(cls, False), root, False, name)
        x, y = ds.data, ds.targets
    else:
        order = torch.randperm(len(ds.data), generator=torch.Generator().manual_seed(0))
        keep = order[:HELD_OUT] if split == "held-out" else order[HELD_OUT:]
        x, y = ds.data[keep], ds.targets[keep]
    if x.ndim != 3 or tuple(x.shape[1:]) != (28, 28):
        raise GanError(
            f"The {name} files in {files.raw_folder(cls, root)} hold images of shape "
            f"{tuple(x.shape)}, not (N, 28, 28); replace them."
        )
    device = resolve_device(device)
    pixels = x.to(device=device, dtype=torch.float32).unsqueeze(1) / 127.5 - 1.0
    where = f"{split}, {len(x)} images" + ("" if ds.train else " of the 10k test split")
    return Images(pixels, y.to(device), f"{name} ({where})")


def torchvision_dataset(name="mnist", root=None, transform=None):
    """The torchvision data set itself (training split, else test split), found as `load`
    finds it: for code that rebuilds the source posts' DataLoader pipelines."""
    return files.open_dataset(_dataset_class(name), files.root_folder(root), name, transform)


class Batches:
    """Random full batches by permutation on the data's device, in a reproducible order.

    Each pass draws a new permutation and serves full batches only: BatchNorm's statistics
    would differ on a short last batch. `pad` adds a border of background, once; with
    `labels=False` the labels come back as None.
    """

    def __init__(
        self, images: Images, batch_size: int, generator: torch.Generator, pad=0, labels=True
    ):
        if batch_size > len(images):
            raise GanError(
                f"The batch size {batch_size} is larger than the {len(images)} "
                f"images of {images.name}; use a smaller --batch-size."
            )
        x = images.x
        if pad:
            x = torch.nn.functional.pad(x, (pad,) * 4, value=images.background)
        self.x, self.y, self.batch_size, self.generator = x, images.y, batch_size, generator
        self.labels = labels
        self.perm, self.pos = None, 0

    def next(self):
        """The next (images, labels) batch."""
        if self.perm is None or self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(
                len(self.x), generator=self.generator, device=self.generator.device
            )
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.x[idx], self.y[idx] if self.labels else None

    def state_dict(self) -> dict:
        return {"perm": None if self.perm is None else self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        perm = state["perm"]
        self.perm = None if perm is None else perm.to(self.x.device)
        self.pos = state["pos"]


def _dataset_class(name):
    if name not in DATASETS:
        raise GanError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    return DATASETS[name]
