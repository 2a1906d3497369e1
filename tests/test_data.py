"""The data path: one normalised tensor, batches by permutation, and clear errors."""

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision.datasets.mnist import read_label_file

from conftest import LAYOUT, N_TRAIN
from gan_helpers import data, toy
from gan_helpers.env import GanError, data_root

MNIST_RAW = data_root() / "MNIST" / "raw"
FASHION_DEB = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist")


def test_the_tests_bring_their_own_data():
    """conftest lays out a data folder of its own, whatever the user's data/ holds."""
    assert "gan-data-" in str(data_root())
    names = sorted(p.name for p in MNIST_RAW.iterdir() if not p.name.endswith(".gz"))
    assert any(n.startswith("train") for n in names) == (LAYOUT == "with-train")


def test_the_tests_folders_are_removed_when_pytest_exits():
    """Each run's checkpoints and data copy go at exit: .ci/run runs pytest four times."""
    root = Path(__file__).resolve().parents[1]
    code = "import os, conftest; print(os.environ['GAN_RUNS_DIR'], os.environ['GAN_DATA_ROOT'])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=True,
    ).stdout
    made = [Path(p) for p in out.split()]
    assert len(made) == 2 and all("gan-" in p.name for p in made), out
    assert not any(p.exists() for p in made), made


def test_mnist_is_one_normalised_tensor(mnist):
    assert mnist.x.shape == (N_TRAIN, 1, 28, 28) and mnist.x.dtype == torch.float32
    assert mnist.x.min().item() == -1.0 and mnist.x.max().item() == 1.0
    # background pixels (0 in the IDX file) map to exactly -1, Tanh's lower bound
    assert (mnist.x == -1).float().mean() > 0.7
    assert mnist.y.shape == (len(mnist.x),) and set(mnist.y.tolist()) == set(range(10))


def test_padding_to_32_adds_background_only(mnist):
    padded = data.load("mnist", size=32)
    assert padded.x.shape == (N_TRAIN, 1, 32, 32)
    assert torch.equal(padded.x[..., 2:30, 2:30], mnist.x)
    border = padded.x.clone()
    border[..., 2:30, 2:30] = -1
    assert (border == -1).all()


def test_the_held_out_digits_are_the_same_2000_in_every_layout(mnist):
    """Neither the generators nor the judge ever train on them: offline they are cut from
    the test split, and with a training split present they are the same 2,000."""
    held = data.load("mnist", split="held-out")
    assert len(held) == 2000 and "held-out" in held.name
    _, labels, _ = data.read("mnist", split="held-out")
    order = torch.randperm(10000, generator=torch.Generator().manual_seed(0))[:2000]
    all_test = read_label_file(str(MNIST_RAW / "t10k-labels-idx1-ubyte"))
    assert torch.equal(labels, all_test[order])
    if LAYOUT == "offline":  # the other 8,000 train, and no digit is in both
        both = torch.cat([mnist.x, held.x]).flatten(1)
        assert len(torch.unique(both, dim=0)) >= 9_990  # MNIST repeats a few images itself
        assert "8000 images of the 10k test split" in mnist.name
    else:
        assert mnist.name == "mnist (train, 10000 images)"


def _copy_raw(src: Path, dst_root: Path, folder: str, pattern: str):
    raw = dst_root / folder / "raw"
    raw.mkdir(parents=True)
    for f in src.glob(pattern):
        shutil.copy(f, raw / f.name)
    return raw


def _gzipped_test_split(root: Path) -> Path:
    """The test split as the official .gz files, in root/MNIST/raw/."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with open(MNIST_RAW / name, "rb") as src, gzip.open(raw / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    return raw


def test_gan_data_root_and_gz_files_are_used(tmp_path, monkeypatch):
    _gzipped_test_split(tmp_path)
    monkeypatch.setenv("GAN_DATA_ROOT", str(tmp_path))
    assert len(data.load("mnist")) == 8_000
    assert (tmp_path / "MNIST/raw/t10k-images-idx3-ubyte").is_file()  # unpacked once


def test_a_training_split_is_used_when_it_is_there(tmp_path):
    raw = _gzipped_test_split(tmp_path)
    for f in raw.glob("t10k-*.gz"):
        shutil.copy(f, raw / f.name.replace("t10k", "train"))
    images = data.load("mnist", root=tmp_path)
    assert len(images) == 10_000 and images.name == "mnist (train, 10000 images)"


def test_argument_beats_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_DATA_ROOT", "/nonexistent/place")
    assert data_root(tmp_path) == tmp_path
    assert data_root() == Path("/nonexistent/place")


def test_missing_data_offline_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: 1 / 0)  # no download
    with pytest.raises(GanError) as err:
        data.load("mnist", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    assert "t10k-images-idx3-ubyte" in msg and "GAN_DATA_ROOT" in msg
    assert "\n" not in msg


def test_unknown_dataset():
    with pytest.raises(GanError, match="Unknown dataset 'cifar'"):
        data.load("cifar")


def test_corrupt_data_file(tmp_path):
    raw = _copy_raw(MNIST_RAW, tmp_path, "MNIST", "t10k-labels*")
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(GanError, match="could not be read"):
        data.load("mnist", root=tmp_path)


@pytest.mark.skipif(not FASHION_DEB.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_fashion_mnist_from_the_debian_files(tmp_path):
    _copy_raw(FASHION_DEB, tmp_path, "FashionMNIST", "*.gz")
    images = data.load("fashion-mnist", root=tmp_path)
    assert images.x.shape == (60_000, 1, 28, 28)
    assert "train" in images.name


def test_batches_are_full_permutations(mnist):
    small = data.Images(mnist.x[:100], mnist.y[:100], "first 100")
    b = data.Batches(small, 30, torch.Generator().manual_seed(0))
    seen = torch.cat([b.next()[1] for _ in range(3)])
    assert len(seen) == 90  # three full batches; the last 10 wait
    first_pass = b.perm.clone()
    assert sorted(first_pass.tolist()) == list(range(100))
    x, _ = b.next()  # a new pass starts, never a short batch
    assert len(x) == 30 and not torch.equal(b.perm, first_pass)


def test_batches_follow_the_seed(mnist):
    def order(seed):
        b = data.Batches(mnist, 64, torch.Generator().manual_seed(seed))
        return b.next()[1]

    assert torch.equal(order(1), order(1)) and not torch.equal(order(1), order(2))


def test_batches_without_labels(mnist):
    x, y = data.Batches(mnist, 8, torch.Generator(), labels=False).next()
    assert x.shape == (8, 1, 28, 28) and y is None


def test_batch_larger_than_the_data_set(mnist):
    with pytest.raises(GanError, match="larger than"):
        data.Batches(data.Images(mnist.x[:10], mnist.y[:10], "ten"), 11, torch.Generator())


def test_ring_of_gaussians():
    ring = toy.ring_of_gaussians(800, modes=8, radius=2.0, std=0.01)
    assert ring.x.shape == (800, 2)
    assert torch.allclose(ring.x.norm(dim=1), torch.full((800,), 2.0), atol=0.05)
    assert set(ring.y.tolist()) == set(range(8))
