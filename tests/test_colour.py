"""Beyond MNIST: a folder of the learner's own pictures, colour models of any size, the
command line on them, and FID and KID on Inception's features."""

import subprocess
import sys

import pytest
import torch
from PIL import Image

from conftest import assert_one_sentence
from gan_helpers import GanError, data, metrics, models, recipes
from gan_helpers.__main__ import main
from gan_helpers.train import Trainer


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """40 pictures of two classes, of mixed sizes and formats: a left half red, a right half
    blue, so that resizing and cropping can be checked by colour."""
    root = tmp_path_factory.mktemp("pictures")
    g = torch.Generator().manual_seed(0)
    for name in ("apples", "pears"):
        (root / name).mkdir()
        for i in range(20):
            w, h = (int(v) for v in torch.randint(40, 120, (2,), generator=g))
            picture = Image.new("RGB", (w, h), (0, 0, 255))
            picture.paste((255, 0, 0), (0, 0, w // 2, h))
            picture.save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}", quality=95)
    return root


def test_a_folder_is_resized_cropped_and_held_as_uint8(pictures):
    train = data.load(f"folder:{pictures}", size=32)
    held = data.load(f"folder:{pictures}", size=32, split="held-out")
    assert train.x.shape == (36, 3, 32, 32) and train.x.dtype == torch.uint8
    assert len(held) == 4 and set(train.y.tolist()) == {0, 1}  # one class per sub-folder
    left, right = (
        train.x[..., :, :12].float().mean((0, 2, 3)),
        train.x[..., :, -12:].float().mean((0, 2, 3)),
    )
    assert left[0] > 200 > left[2] and right[2] > 200 > right[0]  # red left, blue right
    x, _ = data.Batches(train, 8, torch.Generator().manual_seed(0)).next()
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1


def test_greyscale_pictures_keep_one_channel(tmp_path):
    for i in range(3):
        Image.new("L", (40, 50), 30 * i).save(tmp_path / f"{i}.png")
    assert data.load(f"folder:{tmp_path}", size=16).x.shape == (2, 1, 16, 16)  # 1 held out


def test_cifar10_is_read_through_torchvision_resized_and_split(monkeypatch):
    """CIFAR-10 cannot be downloaded here: torchvision's reader is replaced by one that holds
    six pictures in its layout (N, 32, 32, 3), so this checks the course's side only."""

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            n = 6 if train else 2
            g = torch.Generator().manual_seed(n)
            self.data = torch.randint(
                0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g
            ).numpy()
            self.targets = list(range(n))

    monkeypatch.setattr(data.datasets, "CIFAR10", FakeCIFAR10)
    train, held = data.load("cifar10"), data.load("cifar10", split="held-out")
    source = torch.from_numpy(FakeCIFAR10("", True, False).data).permute(0, 3, 1, 2)
    assert torch.equal(train.x, source) and len(held) == 2  # channels first, as stored
    big = data.load("cifar10", size=64)
    assert big.x.shape == (6, 3, 64, 64) and big.x.dtype == torch.uint8


def test_cifar10_offline_is_one_sentence(monkeypatch):
    def offline(root, train, download):
        raise RuntimeError("no network")

    monkeypatch.setattr(data.datasets, "CIFAR10", offline)
    with pytest.raises(GanError, match="No cifar10 data") as e:
        data.load("cifar10")
    assert_one_sentence(str(e.value))


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda p: p / "nowhere", "There is no folder"),
        (lambda p: p, "holds no pictures"),
        (
            lambda p: (p / "x.png").write_bytes(b"not a picture") and p,
            "could not be read as a picture",
        ),
    ],
)
def test_a_bad_folder_is_one_sentence(tmp_path, make, says):
    folder = make(tmp_path) or tmp_path
    with pytest.raises(GanError, match=says) as e:
        data.load(f"folder:{folder}")
    assert_one_sentence(str(e.value))


@pytest.mark.parametrize("size, channels", [(32, 3), (64, 3), (64, 1)])
def test_the_dcgan_pair_at_any_size_and_channels(size, channels):
    pair = recipes.dcgan64(seed=0, size=size, channels=channels)
    x = pair["G"](torch.randn(2, 100))
    assert x.shape == (2, channels, size, size) and pair["D"](x).shape == (2,)


def test_the_dcgan64_recipe_is_the_tutorials_pair():
    pair = recipes.dcgan64()
    convs = [m for m in pair["G"].modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [512, 256, 128, 64, 3]  # ngf = 64: 8, 4, 2, 1
    # the tutorial's counts, but for the biases of D's first and last convolutions (64 + 1)
    assert models.n_params(pair["G"]) == 3_576_704 and models.n_params(pair["D"]) == 2_765_633


def test_train_and_sample_on_a_folder_through_the_command_line(pictures, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "dcgan64", "--dataset", f"folder:{pictures}", "--size", "32"]
    assert main([*argv, "--out", str(out), "--steps", "3", "--batch-size", "8"]) == 0
    r = subprocess.run(
        [sys.executable, "-m", "gan_helpers", "sample", str(out / "checkpoint.pt"), "--n", "9",
         "--out", str(tmp_path / "grid.png")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.mode == "RGB" and grid.size == (3 * 34 + 2, 3 * 34 + 2)


def test_a_colour_data_set_for_a_digit_model_is_one_sentence(pictures, capsys):
    assert main(["train", "dcgan", "--dataset", f"folder:{pictures}", "--out", "/tmp/x"]) == 2
    err = capsys.readouterr().err
    assert_one_sentence(err) and "train dcgan64 on it" in err


def test_fid_and_kid_plumbing_with_weights_made_here(tmp_path):
    """Only the plumbing: Inception's real weights cannot be had offline, so a randomly
    initialised Inception v3 stands in. The numbers mean nothing; what is checked is that
    images go in at any size and channel count, and that identical sets get an FID of 0."""
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    torch.save(inception_v3(weights=None, aux_logits=False).state_dict(), tmp_path / "w.pt")
    real = torch.rand(12, 3, 32, 32) * 2 - 1
    same = metrics.fid_kid(real, real, weights=tmp_path / "w.pt")
    other = metrics.fid_kid(-real, real, weights=tmp_path / "w.pt")
    grey = metrics.inception_features(real[:, :1], weights=tmp_path / "w.pt")
    assert same["fid"] == pytest.approx(0, abs=1e-6) and other["fid"] > 1e-3
    assert grey.shape == (12, 2048) and same["n"] == 12


def test_no_inception_weights_offline_is_one_sentence(monkeypatch):
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: 1 / 0)
    monkeypatch.setattr("torch.hub.get_dir", lambda: "/nonexistent-hub")
    with pytest.raises(GanError, match="Inception v3's weights could not be had") as e:
        metrics.inception()
    assert_one_sentence(str(e.value))


def test_a_colour_trainer_learns_the_colours(pictures):
    """A short run on red-and-blue pictures: the samples' left halves turn red."""
    images = data.load(f"folder:{pictures}", size=16)
    t = Trainer(images=images, **{**recipes.dcgan64(seed=0, size=16), "batch_size": 12})
    t.progress = False
    before = t.sample(64)
    t.train(300)
    after = t.sample(64)
    red = lambda x: (x[:, 0, :, :6] - x[:, 2, :, :6]).mean().item()  # red minus blue, left
    assert red(after) > red(before) + 1.0
