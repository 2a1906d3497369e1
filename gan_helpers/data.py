"""The data as one tensor on the training device, and batches drawn by a random permutation
on that device.

MNIST and Fashion-MNIST are read once from the official IDX files and scaled once to
[-1, 1], the Tanh range of every generator; the source posts decode and transform every
image on every step. Their held-out digits, against which samples are judged, are a fixed
2,000 of the test split, on which neither the generators nor the course's judge trained.
Colour images (CIFAR-10, or a folder of your own) are resized and centre-cropped once and
kept as uint8, four times smaller than floats; each batch is scaled to [-1, 1] as it is drawn.
"""

import gzip
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets
from torchvision.datasets.mnist import read_image_file, read_label_file

from .env import DRIVE, GanError, data_root, resolve_device

DATASETS = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}
COLOUR = "cifar10, or folder:PATH for a folder of images"
HELD_OUT = 2000  # test digits kept out of every training set, and out of the judge's
PICTURES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class Images:
    """A whole data set on one device."""

    x: torch.Tensor  # (N, C, H, W): float32 in [-1, 1], or uint8 for colour; (N, 2) for the toy
    y: torch.Tensor  # (N,) int64 class labels
    name: str  # e.g. "mnist (train, 60000 images)"

    def __len__(self):
        return len(self.x)


def load(name="mnist", root=None, device="cpu", split="train", size=None) -> Images:
    """The `split` ("train" or "held-out") of a data set, as Images on `device`.

    MNIST and Fashion-MNIST: each digit padded with background to `size` x `size` (28, the
    default, as drawn; 32 for the 32x32 models). "held-out" is a fixed 2,000 of the 10k test
    split; "train" is the 60k training split when its files are there, and offline, with
    only the test split, the other 8,000. Colour: "cifar10" (its test split is held out) or
    "folder:PATH" (a fixed tenth held out), resized and cropped to `size` (default 32)."""
    if split not in ("train", "held-out"):
        raise GanError(f"Unknown split {split!r}; choose 'train' or 'held-out'.")
    if name == "cifar10" or name.startswith("folder:"):
        return _colour(name, root, resolve_device(device), split, size or 32)
    size = size or 28
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
        choices = ", ".join(DATASETS)
        raise GanError(f"Unknown dataset {name!r}; choose one of: {choices}, {COLOUR}.")
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


def _colour(name, root, device, split, size) -> Images:
    """CIFAR-10 or a folder of images as uint8 (N, C, size, size): on `device` when they
    take less than a quarter of its free memory, else on the CPU, batches moved as drawn."""
    if name == "cifar10":
        root = data_root(root)
        try:  # torchvision reads its files, or downloads them where there is internet
            ds = datasets.CIFAR10(str(root), train=split == "train", download=True)
        except Exception as e:
            raise GanError(
                f"No cifar10 data in {root} and it could not be downloaded ({type(e).__name__}); "
                f"go online once, or train on a folder of your own images (folder:PATH)."
            ) from None
        x = _fit(torch.from_numpy(ds.data).permute(0, 3, 1, 2), size)
        y, where = torch.tensor(ds.targets), f"{split}, {len(ds.data)} images"
    else:
        x, y, where = _folder(name.removeprefix("folder:"), split, size)
    if device.type == "cuda" and x.numel() > torch.cuda.mem_get_info(device)[0] // 4:
        device, where = torch.device("cpu"), where + ", kept on the CPU: too large for the GPU"
    return Images(x.to(device), y.to(device), f"{name} ({where}, {size}x{size})")


def _folder(path, split, size):
    """Every picture under `path` (in class sub-folders, as torchvision's ImageFolder reads
    them, or flat), resized and cropped; a fixed tenth is held out."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(path).expanduser()
    if folder.is_relative_to(DRIVE) and "google.colab" in sys.modules:
        local = Path("/content/gan-data") / folder.name  # Drive reads many small files slowly
        if not local.is_dir():
            print(f"copying {folder} from Google Drive to the runtime's disk, once ...")
            shutil.copytree(folder, local)
        folder = local
    if not folder.is_dir():
        raise GanError(f"There is no folder {folder}; check the path after folder:.")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PICTURES)
    if not files:
        raise GanError(
            f"{folder} holds no pictures ({', '.join(PICTURES)}); put yours there, in one "
            f"folder or in one sub-folder per class."
        )
    classes = sorted({p.parent for p in files})
    fitted = []
    for p in files:
        try:
            with Image.open(p) as picture:
                fitted.append(_fit(_to_tensor(picture), size))
        except (UnidentifiedImageError, OSError) as e:
            raise GanError(
                f"{p} could not be read as a picture ({type(e).__name__}); remove or replace it."
            ) from None
    colour = max(t.shape[1] for t in fitted)  # greyscale stays 1 channel unless any has colour
    x = torch.cat([t.expand(-1, colour, -1, -1) for t in fitted])
    y = torch.tensor([classes.index(p.parent) for p in files])
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = max(1, len(x) // 10)
    keep = order[:cut] if split == "held-out" else order[cut:]
    return x[keep], y[keep], f"{split}, {len(keep)} of {len(x)} pictures"


def _to_tensor(picture) -> torch.Tensor:
    """A PIL picture as a (1, C, H, W) uint8 tensor: C = 1 for greyscale, else 3."""
    picture = picture.convert("L" if picture.mode in ("1", "L", "I", "I;16") else "RGB")
    data = torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8)
    return data.view(picture.height, picture.width, -1).permute(2, 0, 1)[None]


def _fit(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8: the shorter side resized to `size` (antialiased), then the centre
    cropped to size x size."""
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        shape = (max(size, round(h * scale)), max(size, round(w * scale)))
        x = F.interpolate(x.float(), shape, mode="bilinear", antialias=True, align_corners=False)
        top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
        x = x[..., top : top + size, left : left + size].round().clamp(0, 255).to(torch.uint8)
    return x


class Batches:
    """Random full batches by permutation, in a reproducible order, on the generator's device;
    uint8 images are scaled to [-1, 1] as each batch is drawn. Under torchrun, process
    `rank` of `world` takes its slice of every batch: the same order, disjoint images.

    Each pass draws a new permutation and serves full batches only: BatchNorm's statistics
    would differ on a short last batch. With `labels=False` the labels come back as None.
    """

    def __init__(self, images: Images, batch_size: int, generator, labels=True, rank=0, world=1):
        if batch_size > len(images):
            raise GanError(
                f"The batch size {batch_size} is larger than the {len(images)} images of "
                f"{images.name}; use a smaller batch size."
            )
        if batch_size % world:
            raise GanError(
                f"The batch size {batch_size} does not split evenly over {world} processes; "
                f"use a multiple of {world}."
            )
        self.x, self.y, self.batch_size, self.generator = images.x, images.y, batch_size, generator
        self.labels, self.rank, self.world = labels, rank, world
        self.perm, self.pos = None, 0

    def next(self):
        """The next (images, labels) batch, on the generator's device."""
        if self.perm is None or self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(
                len(self.x), generator=self.generator, device=self.generator.device
            )
            self.pos = 0
        part = self.batch_size // self.world  # every process its own slice of one batch
        idx = self.perm[self.pos + self.rank * part : self.pos + (self.rank + 1) * part]
        self.pos += self.batch_size
        x, y = (t[idx.to(t.device)].to(idx.device, non_blocking=True) for t in (self.x, self.y))
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1
        return x, y if self.labels else None

    def state_dict(self) -> dict:
        return {"perm": None if self.perm is None else self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        perm = state["perm"]
        self.perm = None if perm is None else perm.to(self.x.device)
        self.pos = state["pos"]
