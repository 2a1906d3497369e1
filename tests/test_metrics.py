"""The quality metric: the Fréchet distance by hand, the shipped judge, and rankings that
must come out right (noise < blurred digits < real digits, one digit = one class)."""

import math

import pytest
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from conftest import LAYOUT, assert_one_sentence
from gan_helpers import data, metrics
from gan_helpers.env import GanError

N = metrics.default_n()
DISJOINT = (
    "the stand-in training split of this layout holds the held-out digits, which a real "
    "training split never does"
)  # 500 under the tests' smoke mode, as the chapters use it


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist")


# --- the Fréchet distance against closed forms -----------------------------------------


def test_frechet_distance_of_1d_gaussians_by_hand():
    # N(m1, s1^2), N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2 = 3^2 + 1.5^2
    assert metrics.frechet_distance([1.0], [[4.0]], [-2.0], [[0.25]]) == pytest.approx(11.25)
    same = metrics.frechet_distance([5.0], [[2.0]], [5.0], [[2.0]])
    assert same == pytest.approx(0, abs=1e-12)


def test_frechet_distance_of_diagonal_gaussians_by_hand():
    # per axis (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations, summed:
    # means 1 + 0 + 4, deviations (1-2)^2 + (2-1)^2 + (3-1)^2 = 6
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.diag(torch.tensor([1.0, 4.0, 9.0])), torch.diag(torch.tensor([4.0, 1, 1]))
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(11.0)


def test_frechet_distance_with_covariances_that_do_not_commute():
    """tr((S1 S2)^1/2) another way: S1 S2 is not symmetric, but its eigenvalues are those
    of S1^1/2 S2 S1^1/2, real and >= 0; a general eigensolver finds them directly."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(6, 6, generator=g, dtype=torch.float64) for _ in range(2))
    s1, s2 = a @ a.T + 0.1 * torch.eye(6), b @ b.T + 0.1 * torch.eye(6)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.zeros(6)
    cross = torch.linalg.eigvals(s1 @ s2).real.clamp(min=0).sqrt().sum()
    expected = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * cross
    got = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected.item(), rel=1e-9)


def test_a_small_difference_of_large_traces_needs_float64():
    """Variances of the real features' size (~1e4 to 6e5) that differ by one part in a
    million: the distance, ~5e-6, is what is left of traces of ~2e7. float32 keeps 7 digits
    of those traces, so it would return noise of order 1 here."""
    v1 = 1e4 * torch.arange(1, 65, dtype=torch.float64)
    v2 = v1 * (1 + 1e-6)
    q, _ = torch.linalg.qr(
        torch.randn(64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    )
    rotate = lambda v: q @ torch.diag(v) @ q.T  # the same axes: closed form still holds
    expected = (v1.sqrt() - v2.sqrt()).square().sum().item()
    mu = torch.full((64,), 1e3, dtype=torch.float64)
    got = metrics.frechet_distance(mu, rotate(v1), mu, rotate(v2))
    assert got == pytest.approx(expected, rel=0.05)


def test_features_and_moments_are_float64(mnist):
    feats = metrics.features(mnist.x[:200])
    assert feats.dtype == torch.float64 and feats.shape == (200, 64)
    mu, sigma = metrics.moments(feats.float())
    assert mu.dtype == sigma.dtype == torch.float64
    assert torch.allclose(sigma, torch.cov(feats.T))
    assert metrics.fid(feats, feats) < 1e-6 * sigma.trace().item()


# --- the shipped judge -------------------------------------------------------------------


def test_the_shipped_classifier_is_small_and_accurate():
    net, held = metrics.load_classifier(), metrics.real_digits("held-out")
    assert metrics.WEIGHTS.stat().st_size < 400_000
    assert net.info["command"].startswith("python tools/train_classifier.py")
    accuracy = (metrics.classify(held.x) == held.y).double().mean().item()
    print(f"held-out accuracy {accuracy:.2%} on {held.name}; trained on {net.info['trained_on']}")
    assert accuracy > 0.95 and net.info["held_out_accuracy"] == pytest.approx(accuracy)


@pytest.mark.parametrize("content", [None, b"", b"not a torch file", "other dict"])
def test_missing_or_damaged_weights_say_how_to_retrain(tmp_path, content):
    path = tmp_path / "weights.pt"
    if content == "other dict":
        torch.save({"format": "something else"}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(GanError, match="python tools/train_classifier.py") as e:
        metrics.load_classifier(path)
    assert_one_sentence(str(e.value))


# --- known answers: real against real, noise, one digit repeated, copies -----------------


@pytest.fixture(scope="module")
def scores(mnist):
    """evaluate() on the cases whose answers are known. "training digits" are digits the
    "generator" was trained on: copies; "held-out digits" are new real digits."""
    g = torch.Generator().manual_seed(1)
    train = mnist.x[torch.randperm(len(mnist), generator=g)[:N]]
    held = metrics.real_digits("held-out").x[:N]
    cases = {
        "training digits": train,
        "held-out digits": held,
        "blurred digits": gaussian_blur(train, kernel_size=5, sigma=1.0),
        "noise": torch.rand(N, 1, 28, 28, generator=g) * 2 - 1,
        "one digit repeated": Copier(judged_a(3, mnist)),
    }
    out = {name: metrics.evaluate(x, n=N) for name, x in cases.items()}
    for name, r in out.items():
        print(metrics.describe(r, name))
    return out


def judged_a(digit, images):
    """One real image of `digit` that the judge also calls a `digit`, whatever the data."""
    candidates = images.x[images.y == digit][:50]
    return candidates[metrics.classify(candidates) == digit][:1]


class Copier(nn.Module):
    """A "generator" that draws only copies of the given images: mode collapse itself."""

    z_dim = 8

    def __init__(self, images):
        super().__init__()
        self.images = images
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z):
        return self.images[torch.arange(len(z)) % len(self.images)]


@pytest.mark.skipif(LAYOUT == "with-train", reason=DISJOINT)
def test_cfid_ranks_noise_worse_than_blur_and_blur_worse_than_real(scores):
    cfid = {name: r["cfid"] for name, r in scores.items()}
    baseline = scores["noise"]["cfid_real"]
    assert cfid["noise"] > 1.5 * cfid["blurred digits"] > 15 * cfid["held-out digits"]
    assert cfid["held-out digits"] < 3 * baseline and cfid["training digits"] < 3 * baseline
    assert all(r["n"] == N and r["cfid_real"] == baseline for r in scores.values())


def test_kid_is_near_zero_for_real_digits_and_far_from_it_otherwise(scores):
    real = max(abs(scores[k]["kid"]) for k in ("training digits", "held-out digits"))
    assert real < 0.02 * scores["blurred digits"]["kid"]
    assert scores["noise"]["kid"] > scores["blurred digits"]["kid"] > 0


def test_kid_by_hand():
    """Two points at 0 against two at 1, d = 1, kernel (ab + 1)^3: the off-diagonal means
    are k(0,0) = 1 and k(1,1) = 8, the cross mean k(0,1) = 1, so MMD^2 = 1 + 8 - 2."""
    assert metrics.kid(torch.zeros(2, 1), torch.ones(2, 1)) == pytest.approx(7.0)


def test_precision_and_recall_tell_collapse_from_blur(scores):
    real, one = scores["held-out digits"], scores["one digit repeated"]
    assert real["precision"] > 0.7 and real["recall"] > 0.7
    assert one["precision"] > 0.9 and one["recall"] < 0.05  # sharp, but one kind only
    # noise maps to one tight cluster amid the real features: a few large real balls take
    # some of it in, so precision alone is fooled; recall is not
    noise = scores["noise"]
    assert noise["recall"] < 0.01 and noise["precision"] < real["precision"] - 0.3


def test_precision_and_recall_by_hand():
    """Reals at 0, 1, 2, 3 on a line, k = 1: each ball's radius is 1. Fakes at 0.5 and 10:
    one of two inside (precision 1/2). Each fake's nearest other fake is 9.5 away, so every
    real lies within 9.5 of the fake at 0.5 (recall 1)."""
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [10.0]])
    assert metrics.precision_recall(fake, real, k=1) == pytest.approx((0.5, 1.0))


def test_one_digit_repeated_covers_one_class(scores):
    one = scores["one digit repeated"]
    assert one["classes"] == 1 and one["entropy"] == 0 and one["histogram"][3] == 1
    real = scores["held-out digits"]
    assert real["classes"] == 10 and real["entropy"] > 0.95


@pytest.mark.skipif(LAYOUT == "with-train", reason=DISJOINT)
def test_copies_of_training_digits_are_caught_by_their_nearest_neighbours(scores):
    """A memoriser scores as well as real data on cFID; only the distance to the nearest
    training digit gives it away: zero for copies, like any new digit's for real ones."""
    copies, new = scores["training digits"], scores["held-out digits"]
    assert copies["nn_train"] < 0.01 * copies["nn_real"] and copies["nn_real"] > 0.2
    assert new["nn_train"] == pytest.approx(new["nn_real"], rel=1e-6)


def test_coverage_by_hand():
    uniform = metrics.coverage(torch.arange(100) % 10)
    assert (uniform["classes"], uniform["entropy"]) == (10, pytest.approx(1.0))
    two = metrics.coverage(torch.tensor([0, 1] * 50))
    assert (two["classes"], two["entropy"]) == (2, pytest.approx(math.log(2) / math.log(10)))
    rare = metrics.coverage(torch.tensor([0] * 99 + [1]))  # 1% is not covered
    assert rare["classes"] == 1


def test_bad_samples_are_refused_with_a_reason(mnist):
    with pytest.raises(GanError, match="samples"):
        metrics.evaluate(mnist.x[:10], n=N)
    with pytest.raises(GanError, match="28, 28"):
        metrics.evaluate(torch.zeros(N, 2), n=N)
    with pytest.raises(GanError, match="held-out digits, fewer than"):
        metrics.evaluate(mnist.x, n=len(metrics.real_digits("held-out")) + 1)


def test_loading_the_judge_leaves_the_random_stream_alone():
    # a chapter judges its run before and during training: the judge's first load builds a
    # network, and drawing its initial weights from the global generator would change the run
    metrics._cache.pop(("classifier", str(metrics.WEIGHTS)), None)  # the rest stays cached
    torch.manual_seed(0)
    metrics.load_classifier()
    after_load = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(after_load, torch.rand(4))
