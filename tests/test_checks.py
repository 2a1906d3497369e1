"""Each chapter's final check fails on the failure its chapter is about: fed a collapsed
generator, a stalled game or a generator that ignores its labels, it raises."""

import pytest
import torch
from torch import nn

from gan_helpers import checks, data, metrics, toy
from gan_helpers.runtime import History


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
    return {
        "collapsed": metrics.evaluate(Copier(train.x[train.y == 7][:1])),
        "three digits": metrics.evaluate(
            Copier(torch.cat([train.x[train.y == k][:30] for k in (1, 4, 7)]))
        ),
        "real": metrics.evaluate(train.x[: metrics.default_n()]),
        "noise": metrics.evaluate(torch.rand(metrics.default_n(), 1, 28, 28) * 2 - 1),
    }


@pytest.mark.parametrize("smoke", ["1", ""])
def test_coverage_fails_a_collapsed_generator_in_both_modes(judged, smoke, monkeypatch):
    monkeypatch.setenv("GAN_SMOKE", smoke)
    with pytest.raises(AssertionError, match="collapsed: 1/10 classes"):
        checks.coverage(judged["collapsed"])
    checks.coverage(judged["real"])


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


def _history(d_fake, d_real=None, penalty=None):
    h = History()
    n = len(d_fake)
    h.step = list(range(1, n + 1))
    h.values.update(
        d_fake=list(d_fake), d_real=list(d_real or [0.5] * n), penalty=list(penalty or [0.0] * n)
    )
    return h


def test_saturation_fails_when_the_saturating_run_is_not_stuck_or_the_other_does_not_learn():
    stuck, learning = _history([0.001] * 100), _history([0.3] * 100)
    checks.saturation(stuck, learning)
    with pytest.raises(AssertionError, match="stall did not show"):
        checks.saturation(learning, learning)  # the saturating run got a signal
    with pytest.raises(AssertionError, match="stall did not show"):
        checks.saturation(stuck, stuck)  # both stuck: nothing learned


@pytest.mark.parametrize("smoke", ["1", ""])
def test_wasserstein_fails_a_critic_whose_estimate_does_not_fall(smoke, monkeypatch):
    monkeypatch.setenv("GAN_SMOKE", smoke)
    falling = _history(
        d_fake=[0.0] * 100,
        d_real=[30 - 0.29 * i for i in range(100)],
        penalty=[0.5 - 0.0049 * i for i in range(100)],
    )
    checks.wasserstein(falling)
    flat = _history(d_fake=[0.0] * 100, d_real=[30.0] * 100, penalty=[0.01] * 100)
    with pytest.raises(AssertionError, match="did not settle"):
        checks.wasserstein(flat)
    unsettled = _history(
        d_fake=[0.0] * 100, d_real=[30 - 0.29 * i for i in range(100)], penalty=[2.0] * 100
    )
    with pytest.raises(AssertionError, match="did not settle"):
        checks.wasserstein(unsettled)


def test_follows_labels_fails_a_generator_that_ignores_its_labels():
    always_three = torch.tensor([0.0] * 3 + [1.0] + [0.0] * 6)  # every label drew a 3
    with pytest.raises(AssertionError, match="only 10%"):
        checks.follows_labels(always_three, floor=0.8)
    checks.follows_labels(torch.full((10,), 0.95), floor=0.8)


def test_modes_covered_counts_a_collapsed_toy_as_one_mode():
    ring = toy.ring_of_gaussians(2000, seed=0)
    assert toy.modes_covered(ring.x) == 8
    assert toy.modes_covered(ring.x[ring.y == 2]) == 1


def test_code_purity_fails_a_code_the_generator_ignores():
    torch.manual_seed(0)
    from gan_helpers import explore, models

    ignored, _ = explore.code_purity(models.InfoGenerator().eval(), n=20)  # untrained
    assert ignored == pytest.approx(0.1)
    with pytest.raises(AssertionError, match="only 10%"):
        checks.code_purity(ignored, floor=0.2)
    checks.code_purity(0.35, floor=0.2)
