"""MNIST and Fashion-MNIST as one normalised tensor on the training device.

The source posts decode and transform every image on every step through a DataLoader.
Here the images are decoded once by torchvision, scaled once to [-1, 1] (the Tanh range of
every generator), moved to the device once, and batches are drawn by a random permutation
on that device.
"""
import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import datasets

from .device import resolve_device
from .errors import GanError
from .paths import data_root

DATASETS = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}


@dataclass
class Images:
    """A whole data set on one device."""
    x: torch.Tensor          # (N, 1, 28, 28) float32 in [-1, 1]
    y: torch.Tensor          # (N,) int64 class labels
    name: str                # e.g. "mnist (train, 60000 images)"

    def __len__(self):
        return len(self.x)


def _split_files(cls, train: bool) -> list[str]:
    """The uncompressed IDX file names torchvision looks for, e.g. 't10k-images-idx3-ubyte'."""
    prefix = "train" if train else "t10k"
    return [Path(url).stem for url, _ in cls.resources if Path(url).name.startswith(prefix)]


def _raw_folder(cls, root: Path) -> Path:
    return root / cls.__name__ / "raw"


def _unpack_archives(raw: Path) -> None:
    """Decompress any `*.gz` dropped into the raw folder, so the official files work as-is."""
    for gz in raw.glob("*-ubyte.gz"):
        target = gz.with_suffix("")
        if not target.exists():
            tmp = target.with_name(target.name + ".part")
            try:
                with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as e:
                tmp.unlink(missing_ok=True)
                raise GanError(f"{gz} could not be unpacked ({e or type(e).__name__}); "
                               f"delete it and download or copy it again.") from None
            tmp.replace(target)


def _has_split(cls, root: Path, train: bool) -> bool:
    raw = _raw_folder(cls, root)
    return all((raw / f).is_file() for f in _split_files(cls, train))



def _only_split(cls, train: bool):
    """The same torchvision class, told that one split's files are all there is.

    torchvision checks for all four files even to read one split; offline machines have
    only the 10k test split. Narrowing `resources` keeps every other line of torchvision's
    reading code. The class keeps its name, which torchvision uses for the raw folder.
    """
    files = set(_split_files(cls, train))
    resources = [r for r in cls.resources if Path(r[0]).stem in files]
    return type(cls.__name__, (cls,), {"resources": resources})


def _open(cls, root: Path, name: str, transform=None):
    """The torchvision data set: the training split if present, else the test split if
    present (the offline stand-in), else a download."""
    raw = _raw_folder(cls, root)
    if raw.is_dir():
        _unpack_archives(raw)
    if _has_split(cls, root, True):
        return _read(cls, root, True, name, transform)
    if _has_split(cls, root, False):
        print(f"Note: {raw} holds only the {name} test split, so training uses its 10,000 "
              f"images.")
        return _read(_only_split(cls, False), root, False, name, transform)
    try:
        return cls(str(root), train=True, download=True, transform=transform)
    except Exception as e:  # torchvision raises URLError, RuntimeError or OSError offline
        expected = ", ".join(_split_files(cls, True) + _split_files(cls, False))
        raise GanError(
            f"No {name} data in {raw} and it could not be downloaded ({type(e).__name__}); "
            f"put the IDX files ({expected}, .gz or not) there, or point GAN_DATA_ROOT "
            f"(or --data-root) at a folder that holds {cls.__name__}/raw/."
        ) from None


def _read(cls, root: Path, train: bool, name: str, transform=None):
    try:
        return cls(str(root), train=train, download=False, transform=transform)
    except Exception as e:
        raise GanError(f"The {name} files in {_raw_folder(cls, root)} could not be read "
                       f"({e or type(e).__name__}); delete them and download or copy them "
                       f"again.") from None


def torchvision_dataset(name: str = "mnist", root=None, transform=None):
    """The torchvision data set itself, found the same way as `load` finds it. Only the
    benchmark uses it, to rebuild the source posts' DataLoader pipelines."""
    if name not in DATASETS:
        raise GanError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    root = data_root(root)
    if root.exists() and not root.is_dir():
        raise GanError(f"The data root {root} is a file, not a folder; pass a folder.")
    return _open(DATASETS[name], root, name, transform)


def load(name: str = "mnist", root=None, device="cpu") -> Images:
    """Load a data set as `Images` on `device`, normalised once to [-1, 1]."""
    ds = torchvision_dataset(name, root)
    cls, root = DATASETS[name], data_root(root)
    pixels = ds.data
    if pixels.ndim != 3 or tuple(pixels.shape[1:]) != (28, 28) or len(pixels) != len(ds.targets):
        raise GanError(f"The {name} files in {_raw_folder(cls, root)} hold images of shape "
                       f"{tuple(pixels.shape)}, not (N, 28, 28); replace them.")
    device = resolve_device(device)
    x = (pixels.to(device=device, dtype=torch.float32).unsqueeze(1) / 127.5 - 1.0)
    split = "train" if ds.train else "test"
    return Images(x=x, y=ds.targets.to(device), name=f"{name} ({split}, {len(x)} images)")


class Batches:
    """Random batches by permutation, on the data's device, in a reproducible order.

    Each pass draws a new permutation and serves full batches only: a short last batch
    would give BatchNorm a different batch size (and crashed source post 004).
    """

    def __init__(self, images: Images, batch_size: int, generator: torch.Generator,
                 pad: int = 0):
        if batch_size > len(images):
            raise GanError(f"The batch size {batch_size} is larger than the {len(images)} "
                           f"images of {images.name}; use a smaller --batch-size.")
        x = images.x
        if pad:  # background is -1, so padding with -1 adds an empty border
            x = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=-1.0)
        self.x, self.y = x, images.y
        self.batch_size = batch_size
        self.generator = generator
        self.perm = None
        self.pos = 0

    def next(self):
        """The next (images, labels) batch."""
        if self.perm is None or self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(len(self.x), generator=self.generator,
                                       device=self.generator.device)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.x[idx], self.y[idx]

    def state_dict(self) -> dict:
        perm = None if self.perm is None else self.perm.cpu()
        return {"perm": perm, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        perm = state["perm"]
        self.perm = None if perm is None else perm.to(self.x.device)
        self.pos = state["pos"]


def ring_of_gaussians(n: int = 4096, modes: int = 8, radius: float = 2.0, std: float = 0.05,
                      seed: int = 0, device="cpu") -> Images:
    """The classic 2-D toy set: `modes` Gaussians evenly spaced on a circle.

    x is (n, 2), y the index of each point's mode. Small enough to train a GAN in seconds,
    and every mode is visible, so missing ones (mode collapse) are plain to see.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(modes, (n,), generator=g)
    centres = ring_centres(modes, radius)
    x = centres[y] + std * torch.randn(n, 2, generator=g)
    device = resolve_device(device)
    return Images(x=x.to(device), y=y.to(device), name=f"ring of {modes} Gaussians")


def ring_centres(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    angle = torch.arange(modes) * (2 * torch.pi / modes)
    return radius * torch.stack([angle.cos(), angle.sin()], dim=1)     # (modes, 2)
