"""The shared final checks fail on the failures they guard against: fed a collapsed generator,
a generator that copies one digit of each class over and over, or noise, they raise. The
checks only one chapter makes are tested in that chapter's last cell."""

import pytest
import torch
from torch import nn

from gan_helpers import checks, data, metrics, recipes, toy


class Copier(nn.Module):
    """A collapsed "generator": copies of a few real digits, whatever z is."""

    def __init__(self, images, z_dim=8):
        super().__init__()
        self.images, self.z_dim = images, z_dim
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z):
        return self.images[torch.arange(len(z)) % len(self.images)]


@pytest.fixture(scope="module")
def judged():
    train = data.load()
    one_per_class = torch.cat([train.x[train.y == k][:1] for k in range(10)])
    return {
        "collapsed": metrics.evaluate(Copier(train.x[train.y == 7][:1])),
        "three digits": metrics.evaluate(
            Copier(torch.cat([train.x[train.y == k][:30] for k in (1, 4, 7)]))
        ),
        "ten digits, one per class": metrics.evaluate(Copier(one_per_class)),
        "real": metrics.evaluate(train.x[: metrics.default_n()]),
        "noise": metrics.evaluate(torch.rand(metrics.default_n(), 1, 28, 28) * 2 - 1),
        "untrained": metrics.evaluate(recipes.dcgan(seed=0)["G"]),
    }


@pytest.mark.parametrize("smoke", ["1", ""])
def test_coverage_fails_a_collapsed_generator_in_both_modes(judged, smoke, monkeypatch):
    monkeypatch.setenv("GAN_SMOKE", smoke)
    with pytest.raises(AssertionError, match="collapsed: 1/10 classes"):
        checks.coverage(judged["collapsed"])
    checks.coverage(judged["real"])


@pytest.mark.parametrize("smoke", ["1", ""])
def test_coverage_fails_a_generator_that_copies_one_digit_per_class(judged, smoke, monkeypatch):
    """Ten real digits, one of each class, drawn over and over: every class is there and
    evenly, and the cFID is far below an untrained generator's. Only recall sees it."""
    monkeypatch.setenv("GAN_SMOKE", smoke)
    copier = judged["ten digits, one per class"]
    assert copier["classes"] >= 9 and copier["entropy"] >= 0.9
    checks.learned(copier, judged["untrained"])  # learned() alone lets it through
    with pytest.raises(AssertionError, match="draws too little variety: recall 0.0"):
        checks.coverage(copier)


def test_full_coverage_fails_three_digits_that_smoke_coverage_lets_through(judged, monkeypatch):
    monkeypatch.setenv("GAN_SMOKE", "")
    with pytest.raises(AssertionError, match="3/10 classes"):
        checks.coverage(judged["three digits"])


def test_learned_fails_a_generator_no_better_than_noise(judged):
    with pytest.raises(AssertionError, match="did not learn"):
        checks.learned(judged["noise"], judged["noise"])
    checks.learned(judged["real"], judged["noise"])


def test_beats_fails_when_the_fix_is_not_twice_as_good(judged):
    with pytest.raises(AssertionError, match="is not below 0.5 times"):
        checks.beats(judged["collapsed"], judged["noise"], factor=0.5)
    checks.beats(judged["real"], judged["collapsed"], factor=0.5)


def test_modes_covered_counts_a_collapsed_toy_as_one_mode():
    ring = toy.ring_of_gaussians(2000, seed=0)
    assert toy.modes_covered(ring.x) == 8
    assert toy.modes_covered(ring.x[ring.y == 2]) == 1
