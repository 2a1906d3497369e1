"""MNIST and Fashion-MNIST as one normalised tensor on the training device, batches drawn by
a random permutation on that device, and the 2-D toy ring of chapter 00.

The images are decoded once by torchvision and scaled once to [-1, 1], the Tanh range of
every generator; the source posts decode and transform every image on every step.
"""

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import datasets

from .env import GanError, data_root, resolve_device

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
    cls, root = _dataset_class(name), _root(root)
    ds = _open(cls, root, name)
    if ds.train:
        if split == "held-out":
            ds = _read(_only_split(cls, False), root, False, name)
        x, y = ds.data, ds.targets
    else:
        order = torch.randperm(len(ds.data), generator=torch.Generator().manual_seed(0))
        keep = order[:HELD_OUT] if split == "held-out" else order[HELD_OUT:]
        x, y = ds.data[keep], ds.targets[keep]
    if x.ndim != 3 or tuple(x.shape[1:]) != (28, 28):
        raise GanError(
            f"The {name} files in {_raw(cls, root)} hold images of shape "
            f"{tuple(x.shape)}, not (N, 28, 28); replace them."
        )
    device = resolve_device(device)
    pixels = x.to(device=device, dtype=torch.float32).unsqueeze(1) / 127.5 - 1.0
    where = f"{split}, {len(x)} images" + ("" if ds.train else " of the 10k test split")
    return Images(pixels, y.to(device), f"{name} ({where})")


def torchvision_dataset(name="mnist", root=None, transform=None):
    """The torchvision data set itself (training split, else test split), found as `load`
    finds it: for code that rebuilds the source posts' DataLoader pipelines."""
    return _open(_dataset_class(name), _root(root), name, transform)


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


# --- finding and reading the files ---------------------------------------------------------


def _dataset_class(name):
    if name not in DATASETS:
        raise GanError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    return DATASETS[name]


def _root(root) -> Path:
    root = data_root(root)
    if root.exists() and not root.is_dir():
        raise GanError(f"The data root {root} is a file, not a folder; pass a folder.")
    return root


def _raw(cls, root: Path) -> Path:
    return root / cls.__name__ / "raw"


def _split_files(cls, train: bool) -> list[str]:
    """The uncompressed IDX names torchvision looks for, e.g. 't10k-images-idx3-ubyte'."""
    prefix = "train" if train else "t10k"
    return [Path(url).stem for url, _ in cls.resources if Path(url).name.startswith(prefix)]


def _only_split(cls, train: bool):
    """The same torchvision class, told that one split's files are all there is: it checks
    for all four files even to read one split, and offline machines have only the test
    split. The class keeps its name, which torchvision uses for the raw folder."""
    files = set(_split_files(cls, train))
    resources = [r for r in cls.resources if Path(r[0]).stem in files]
    return type(cls.__name__, (cls,), {"resources": resources})


def _open(cls, root: Path, name: str, transform=None):
    """The training split if present, else the test split (the offline stand-in), else a
    download."""
    raw = _raw(cls, root)
    for gz in raw.glob("*-ubyte.gz") if raw.is_dir() else []:
        _unpack(gz)
    for train in (True, False):
        if all((raw / f).is_file() for f in _split_files(cls, train)):
            return _read(cls if train else _only_split(cls, False), root, train, name, transform)
    try:
        return cls(str(root), train=True, download=True, transform=transform)
    except Exception as e:  # torchvision raises URLError, RuntimeError or OSError offline
        files = ", ".join(_split_files(cls, True) + _split_files(cls, False))
        raise GanError(
            f"No {name} data in {raw} and it could not be downloaded "
            f"({type(e).__name__}); put the IDX files ({files}, .gz or not) there, "
            f"or point GAN_DATA_ROOT (or --data-root) at a folder that holds "
            f"{cls.__name__}/raw/."
        ) from None


def _read(cls, root: Path, train: bool, name: str, transform=None):
    try:
        return cls(str(root), train=train, download=False, transform=transform)
    except Exception as e:
        raise GanError(
            f"The {name} files in {_raw(cls, root)} could not be read "
            f"({e or type(e).__name__}); delete them and download or copy them "
            f"again."
        ) from None


def _unpack(gz: Path) -> None:
    """Decompress an official `*.gz` in place of the raw file torchvision reads."""
    target = gz.with_suffix("")
    if target.exists():
        return
    part = target.with_name(target.name + ".part")
    try:
        with gzip.open(gz, "rb") as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as e:
        part.unlink(missing_ok=True)
        raise GanError(
            f"{gz} could not be unpacked ({e or type(e).__name__}); delete it and "
            f"download or copy it again."
        ) from None
    part.replace(target)
