"""The quality metric: the Fréchet distance by hand, the shipped judge, and rankings that
must come out right (noise < blurred digits < real digits, one digit = one class)."""
import math

import pytest
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from gan_helpers import data, metrics
from gan_helpers.errors import GanError

N = metrics.N_SMOKE   # the size chapters use in smoke mode: every number below is at it


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist")


@pytest.fixture(scope="module")
def split(mnist):
    """2N reference digits for evaluate, and N other real digits to score, both drawn at
    random: the test split's two halves come from different writers."""
    order = torch.randperm(len(mnist), generator=torch.Generator().manual_seed(1))
    return mnist.x[order[:2 * N]], mnist.x[order[2 * N:3 * N]]


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
    q, _ = torch.linalg.qr(torch.randn(64, 64, generator=torch.Generator().manual_seed(0),
                                       dtype=torch.float64))
    rotate = lambda v: q @ torch.diag(v) @ q.T        # the same axes: closed form still holds
    expected = (v1.sqrt() - v2.sqrt()).square().sum().item()
    mu = torch.full((64,), 1e3, dtype=torch.float64)
    got = metrics.frechet_distance(mu, rotate(v1), mu, rotate(v2))
    assert got == pytest.approx(expected, rel=0.05)


def test_features_and_statistics_are_float64(mnist):
    feats = metrics.features(mnist.x[:200])
    assert feats.dtype == torch.float64 and feats.shape == (200, 64)
    mu, sigma = metrics.feature_statistics(feats.float())
    assert mu.dtype == sigma.dtype == torch.float64
    assert torch.allclose(sigma, torch.cov(feats.T))
    assert metrics.frechet_distance(mu, sigma, mu, sigma) < 1e-6 * sigma.trace().item()


# --- the shipped judge -------------------------------------------------------------------

def test_the_shipped_classifier_is_small_and_accurate():
    info = metrics.weights_info()
    assert metrics.WEIGHTS.stat().st_size < 400_000
    assert info["command"].startswith("python -m gan_helpers.metrics train-classifier")
    _, held_out, _ = metrics.classifier_data()
    accuracy = metrics.accuracy(metrics.load_classifier(), held_out)
    print(f"held-out accuracy {accuracy:.2%} on {held_out.name}; "
          f"trained on {info['trained_on']}")
    assert accuracy > 0.95 and info["held_out_accuracy"] > 0.95


@pytest.mark.parametrize("content", [None, b"", b"not a torch file", "other dict"])
def test_missing_or_damaged_weights_say_how_to_retrain(tmp_path, content):
    path = tmp_path / "weights.pt"
    if content == "other dict":
        torch.save({"format": "something else"}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(GanError, match="train-classifier"):
        metrics.load_classifier(path)


# --- rankings and coverage ---------------------------------------------------------------

def test_noise_ranks_worse_than_blurred_digits_and_those_worse_than_real(split):
    reference, real = split
    noise = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    blurred = gaussian_blur(real, kernel_size=5, sigma=1.0)
    scores = {name: metrics.evaluate(x, reference, n=N)
              for name, x in (("noise", noise), ("blurred", blurred), ("real", real))}
    for name, r in scores.items():
        print(metrics.describe(r, name))
    cfid = {name: r["cfid"] for name, r in scores.items()}
    baseline = scores["real"]["cfid_real_baseline"]
    assert cfid["noise"] > 1.5 * cfid["blurred"]
    assert cfid["blurred"] > 10 * cfid["real"]
    assert cfid["real"] < 2 * baseline     # real digits score like the baseline
    assert all(r["n"] == N and r["cfid_real_baseline"] == baseline for r in scores.values())


class Copier(nn.Module):
    """A "generator" that draws only copies of the given images: total mode collapse."""
    z_dim = 8

    def __init__(self, images):
        super().__init__()
        self.images = images

    def forward(self, z):
        return self.images[torch.arange(len(z)) % len(self.images)]


def test_a_generator_of_one_digit_covers_one_class(mnist, split):
    reference, real = split
    threes = Copier(mnist.x[mnist.y == 3][:100])
    collapsed = metrics.evaluate(threes, reference, n=N)
    print(metrics.describe(collapsed, "copies of real 3s"))
    assert collapsed["classes_covered"] == 1 and collapsed["entropy"] < 0.2
    assert max(collapsed["histogram"]) == collapsed["histogram"][3]
    whole = metrics.evaluate(real, reference, n=N)
    assert whole["classes_covered"] == 10 and whole["entropy"] > 0.95


def test_coverage_by_hand():
    uniform = torch.full((10,), 0.1, dtype=torch.float64)
    assert metrics.coverage(uniform) == (10, pytest.approx(1.0))
    two = torch.tensor([0.5, 0.5] + [0.0] * 8, dtype=torch.float64)
    assert metrics.coverage(two) == (2, pytest.approx(math.log(2) / math.log(10)))
    rare = torch.tensor([0.99, 0.01] + [0.0] * 8, dtype=torch.float64)   # 1% is not covered
    assert metrics.coverage(rare)[0] == 1


def test_too_few_images_are_refused_with_a_reason(split):
    reference, real = split
    with pytest.raises(GanError, match="2n"):
        metrics.evaluate(real, reference[:N], n=N)
    with pytest.raises(GanError, match="samples"):
        metrics.evaluate(real[:10], reference, n=N)
    with pytest.raises(GanError, match="28, 28"):
        metrics.evaluate(torch.zeros(N, 2), reference, n=N)
