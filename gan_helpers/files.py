"""Finding and reading the data files torchvision reads: the official IDX files, gzipped
or not, with both splits, or offline with the test split only, else a download. Each
failure is one sentence."""

import gzip
import shutil
from pathlib import Path

from .env import GanError, data_root


def root_folder(root) -> Path:
    root = data_root(root)
    if root.exists() and not root.is_dir():
        raise GanError(f"The data root {root} is a file, not a folder; pass a folder.")
    return root


def raw_folder(cls, root: Path) -> Path:
    return root / cls.__name__ / "raw"


def _split_files(cls, train: bool) -> list[str]:
    """The uncompressed IDX names torchvision looks for, e.g. 't10k-images-idx3-ubyte'."""
    prefix = "train" if train else "t10k"
    return [Path(url).stem for url, _ in cls.resources if Path(url).name.startswith(prefix)]


def only_split(cls, train: bool):
    """The same torchvision class, told that one split's files are all there is: it checks
    for all four files even to read one split, and offline machines have only the test
    split. The class keeps its name, which torchvision uses for the raw folder."""
    files = set(_split_files(cls, train))
    resources = [r for r in cls.resources if Path(r[0]).stem in files]
    return type(cls.__name__, (cls,), {"resources": resources})


def open_dataset(cls, root: Path, name: str, transform=None):
    """The training split if present, else the test split (the offline stand-in), else a
    download."""
    raw = raw_folder(cls, root)
    for gz in raw.glob("*-ubyte.gz") if raw.is_dir() else []:
        _unpack(gz)
    for train in (True, False):
        if all((raw / f).is_file() for f in _split_files(cls, train)):
            return read_dataset(
                cls if train else only_split(cls, False), root, train, name, transform
            )
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


def read_dataset(cls, root: Path, train: bool, name: str, transform=None):
    try:
        return cls(str(root), train=train, download=False, transform=transform)
    except Exception as e:
        raise GanError(
            f"The {name} files in {raw_folder(cls, root)} could not be read "
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
