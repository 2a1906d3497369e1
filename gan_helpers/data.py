"""MNIST and Fashion-MNIST as one normalised tensor on the training device, and batches drawn
by a random permutation on that device.

The images are read once from the official IDX files and scaled once to [-1, 1], the Tanh
range of every generator; the source posts decode and transform every image on every step.
The held-out digits, against which every sample is judged, are a fixed 2,000 of the test
split: the generators never train on them and the course's judge was never trained on them.
"""

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.datasets.mnist import read_image_file, read_label_file

from .env import GanError, data_root, resolve_device

DATASETS = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}
HELD_OUT = 2000  # test digits kept out of every training set, and out of the judge's


@dataclass
class Images:
    """A whole data set on one device."""

    x: torch.Tensor  # (N, C, H, W) float32 in [-1, 1]; (N, 2) points for the toy
    y: torch.Tensor  # (N,) int64 class labels
    name: str  # e.g. "mnist (train, 60000 images)"

    def __len__(self):
        return len(self.x)


def load(name="mnist", root=None, device="cpu", split="train", size=28) -> Images:
    """The `split` ("train" or "held-out") of a data set, as Images on `device`, each image
    padded with background to `size` x `size` (28: as drawn; 32 for the 32x32 models).

    "held-out" is a fixed 2,000 of the 10k test split. "train" is the 60k training split
    when its files are there; offline, with only the test split, it is the other 8,000."""
    if split not in ("train", "held-out"):
        raise GanError(f"Unknown split {split!r}; choose 'train' or 'held-out'.")
    if size < 28:
        raise GanError(f"size must be 28 or more, not {size}: digits are padded, never cut.")
    x, y, where = read(name, root, split)
    pixels = x.to(device=resolve_device(device), dtype=torch.float32).unsqueeze(1) / 127.5 - 1
    pad = (size - 28) // 2
    pixels = torch.nn.functional.pad(pixels, (pad, size - 28 - pad) * 2, value=-1.0)
    return Images(pixels, y.to(pixels.device), f"{name} ({where})")


def read(name="mnist", root=None, split="train") -> tuple[torch.Tensor, torch.Tensor, str]:
    """The split's images as the files hold them, (N, 28, 28) uint8, their labels, and where
    they come from. Missing files are downloaded by torchvision where there is internet."""
    if name not in DATASETS:
        raise GanError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    cls, root = DATASETS[name], data_root(root)
    if root.exists() and not root.is_dir():
        raise GanError(f"The data root {root} is a file, not a folder; pass a folder.")
    test = _split(cls, root, name, train=False)  # the held-out digits come from it
    order = torch.randperm(len(test[0]), generator=torch.Generator().manual_seed(0))
    if split == "held-out":
        keep = order[:HELD_OUT]
        return test[0][keep], test[1][keep], f"held-out, {HELD_OUT} images of the test split"
    train = _split(cls, root, name, train=True, download=False)
    if train is not None:
        return *train, f"train, {len(train[0])} images"
    keep = order[HELD_OUT:]  # offline: the rest of the test split trains
    return test[0][keep], test[1][keep], f"train, {len(keep)} images of the 10k test split"


def _split(cls, root: Path, name: str, train: bool, download=True):
    """(images, labels) of one split from `root/<Class>/raw/`, unpacking `.gz` files once;
    a missing split is downloaded, or None with `download=False`."""
    raw = root / cls.__name__ / "raw"
    files = [raw / Path(url).stem for url, _ in cls.resources]
    files = [f for f in files if f.name.startswith("train" if train else "t10k")]
    for f in files:
        if not f.exists() and f.with_name(f.name + ".gz").exists():
            _unpack(f.with_name(f.name + ".gz"))
    if not all(f.exists() for f in files):
        if not download:
            return None
        try:  # torchvision fetches every file of the data set, both splits
            cls(str(root), train=train, download=True)
        except Exception as e:  # URLError, RuntimeError or OSError offline
            raise GanError(
                f"No {name} data in {raw} and it could not be downloaded ({type(e).__name__}); "
                f"put the IDX files ({', '.join(f.name for f in files)}, .gz or not) there, or "
                f"point GAN_DATA_ROOT (or --data-root) at a folder that holds {cls.__name__}/raw/."
            ) from None
    try:
        images, labels = read_image_file(str(files[0])), read_label_file(str(files[1]))
    except Exception as e:
        raise GanError(
            f"The {name} files in {raw} could not be read ({e or type(e).__name__}); delete "
            f"them and download or copy them again."
        ) from None
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise GanError(
            f"The {name} files in {raw} hold images of shape {tuple(images.shape)} and "
            f"{len(labels)} labels, not (N, 28, 28) and N; replace them."
        )
    return images, labels


def _unpack(gz: Path) -> None:
    """Decompress an official `*.gz` beside itself, into the raw file torchvision reads."""
    part = gz.with_name(gz.stem + ".part")
    try:
        with gzip.open(gz, "rb") as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as e:
        part.unlink(missing_ok=True)
        raise GanError(
            f"{gz} could not be unpacked ({e or type(e).__name__}); delete it and download or "
            f"copy it again."
        ) from None
    part.replace(gz.with_suffix(""))


class Batches:
    """Random full batches by permutation on the data's device, in a reproducible order.

    Each pass draws a new permutation and serves full batches only: BatchNorm's statistics
    would differ on a short last batch. With `labels=False` the labels come back as None.
    """

    def __init__(self, images: Images, batch_size: int, generator: torch.Generator, labels=True):
        if batch_size > len(images):
            raise GanError(
                f"The batch size {batch_size} is larger than the {len(images)} images of "
                f"{images.name}; use a smaller batch size."
            )
        self.x, self.y, self.batch_size, self.generator = images.x, images.y, batch_size, generator
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
