"""Files on disk, each failure one sentence: the data files torchvision reads (the official
IDX files, gzipped or not, both splits or offline the test split only, else a download),
and PyTorch files, saved atomically and loaded safely.

A save is serialised in memory, written to a temporary file in the same folder, synced,
then renamed over the old file (`os.replace` is atomic): a kill or a full disk mid-save
leaves the previous file whole. Loads use `weights_only=True`, which refuses anything but
tensors and plain containers, so a crafted file cannot run code.
"""

import errno
import gzip
import io
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from .env import GanError, data_root

UNFINISHED = ".tmp"  # the suffix of a save still being written
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip format; its legacy pickle format


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


# --- PyTorch files, written atomically and read safely -------------------------------------


class DiskFull(GanError):
    """A save found the disk full. `held` is the step the file at `path` still holds."""

    def __init__(self, path, step=None, held=None):
        self.path, self.step, self.held = Path(path), step, held
        super().__init__(self.sentence("free some space, then save again or resume from it"))

    def sentence(self, then: str) -> str:
        at = "" if self.step is None else f" at step {self.step}"
        held = (
            f"it still holds step {self.held}"
            if self.held is not None
            else "any earlier copy is intact"
        )
        return f"The disk is full: {self.path} could not be written{at}, and {held}; {then}."


def write(path, obj) -> None:
    """`torch.save(obj, path)`, atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=UNFINISHED)
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide shipped weights from other users
            _write_all(fd, buffer.getbuffer())
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _write_error(path, e) from None
        raise


def _write_all(fd, data) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _write_error(path: Path, e: OSError) -> GanError:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return DiskFull(path)
    return GanError(
        f"Cannot write {path} ({e.strerror}); choose a folder you can write to, "
        f"and any earlier copy is intact."
    )


def read(path, map_location="cpu"):
    """torch.load with weights_only=True, each way a file can be wrong one sentence."""
    path = Path(path)
    if not path.is_file():
        raise GanError(f"There is no checkpoint at {path}; check the path.")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise GanError(f"{path} cannot be read ({e.strerror}); check its permissions.") from None
    if not head:
        raise GanError(f"{path} is empty; use an earlier checkpoint or train again.")
    if not head.startswith(_TORCH_MAGIC):  # never hand a file of another kind to a parser
        raise GanError(
            f"{path} is not a checkpoint, nor any file written by torch.save; "
            f"pass a checkpoint.pt written by `python -m gan_helpers train`."
        )
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise GanError(
                f"{path} was refused unopened: it holds Python objects other than "
                f"tensors and plain values, which could run code when loaded; use "
                f"only files from a source you trust."
            ) from None
        raise GanError(_corrupted(path)) from None
    except Exception:  # torch.load fails in many ways on damaged bytes; all mean the same
        raise GanError(_corrupted(path)) from None


def _corrupted(path: Path) -> str:
    return (
        f"{path} is truncated or corrupted and cannot be read; use an earlier copy "
        f"(checkpoint-<step>.pt, if you kept one) or train again."
    )
