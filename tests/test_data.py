"""The data path: one normalised tensor, batches by permutation, and clear errors."""

import shutil
from pathlib import Path

import pytest
import torch

from gan_helpers import data, toy
from gan_helpers.env import GanError, data_root

MNIST_RAW = data_root() / "MNIST" / "raw"
FASHION_DEB = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist")


def test_mnist_is_one_normalised_tensor(mnist):
    assert mnist.x.shape[1:] == (1, 28, 28) and len(mnist.x) in (8_000, 60_000)
    assert mnist.x.dtype == torch.float32
    assert mnist.x.min().item() == -1.0 and mnist.x.max().item() == 1.0
    # background pixels (0 in the IDX file) map to exactly -1, Tanh's lower bound
    assert (mnist.x == -1).float().mean() > 0.7
    assert mnist.y.shape == (len(mnist.x),) and set(mnist.y.tolist()) == set(range(10))


def test_offline_the_test_split_is_cut_into_training_and_held_out_digits(mnist):
    """Offline only the 10k test split exists: 8,000 train, 2,000 are held out for judging,
    and no digit is in both."""
    held = data.load("mnist", split="held-out")
    if len(mnist) == 60_000:
        assert len(held) == 10_000
        return
    assert len(held) == 2_000 and "held-out" in held.name and "train" in mnist.name
    both = torch.cat([mnist.x, held.x]).flatten(1)
    assert len(torch.unique(both, dim=0)) >= 9_990  # MNIST repeats a few images itself
    ordered = data.torchvision_dataset("mnist")
    assert sorted((mnist.y.tolist() + held.y.tolist())) == sorted(ordered.targets.tolist())


def _copy_raw(src: Path, dst_root: Path, folder: str, pattern: str):
    raw = dst_root / folder / "raw"
    raw.mkdir(parents=True)
    for f in src.glob(pattern):
        shutil.copy(f, raw / f.name)
    return raw


def test_gan_data_root_and_gz_files_are_used(tmp_path, monkeypatch):
    _copy_raw(MNIST_RAW, tmp_path, "MNIST", "t10k-*.gz")
    monkeypatch.setenv("GAN_DATA_ROOT", str(tmp_path))
    images = data.load("mnist")
    assert len(images) == 8_000
    assert (tmp_path / "MNIST/raw/t10k-images-idx3-ubyte").is_file()  # unpacked once


def test_argument_beats_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_DATA_ROOT", "/nonexistent/place")
    assert data_root(tmp_path) == tmp_path
    assert data_root() == Path("/nonexistent/place")


def test_missing_data_offline_gives_one_clear_error(tmp_path):
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
    raw = _copy_raw(MNIST_RAW, tmp_path, "MNIST", "t10k-labels*.gz")
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


def test_batches_pad_with_background(mnist):
    b = data.Batches(mnist, 8, torch.Generator().manual_seed(0), pad=2)
    x, _ = b.next()
    assert x.shape == (8, 1, 32, 32)
    assert (x[..., :2, :] == -1).all() and (x[..., :, -2:] == -1).all()
    # data in [0, 1], as post 004 had it, pads with its own background, 0
    shifted = data.Images((mnist.x + 1) / 2, mnist.y, "[0, 1]", background=0.0)
    x, y = data.Batches(shifted, 8, torch.Generator(), pad=2, labels=False).next()
    assert (x[..., :2, :] == 0).all() and y is None


def test_batch_larger_than_the_data_set(mnist):
    with pytest.raises(GanError, match="larger than"):
        data.Batches(data.Images(mnist.x[:10], mnist.y[:10], "ten"), 11, torch.Generator())


def test_ring_of_gaussians():
    ring = toy.ring_of_gaussians(800, modes=8, radius=2.0, std=0.01)
    assert ring.x.shape == (800, 2)
    assert torch.allclose(ring.x.norm(dim=1), torch.full((800,), 2.0), atol=0.05)
    assert set(ring.y.tolist()) == set(range(8))
