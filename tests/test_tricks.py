"""The discriminator tricks of chapter 08: spectral normalisation and dropout do what they
claim, and leave D a discriminator (same shapes, logits of shape (B,))."""
import pytest
import torch
from torch import nn

from gan_helpers import compare, models
from gan_helpers.losses import BCE

pytestmark = pytest.mark.usefixtures("one_thread")

DISCRIMINATORS = {
    "mlp": models.MLPDiscriminator,
    "lenet": models.LeNetDiscriminator,
    "dcgan": lambda: models.DCGANDiscriminator(hidden=16),
}


def batch_for(D, n=8):
    size = D.image_size
    return torch.rand(n, 1, size, size) * 2 - 1


def largest_singular_value(layer: nn.Module) -> float:
    """sigma of the weight the layer actually uses, viewed as (out, in * k * k)."""
    return torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()


def weighted_layers(D):
    return [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_spectral_norm_brings_every_largest_singular_value_to_one(name):
    torch.manual_seed(0)
    D = DISCRIMINATORS[name]()
    before = [largest_singular_value(m) for m in weighted_layers(D)]
    assert any(abs(s - 1) > 0.3 for s in before)  # otherwise the test would prove nothing
    models.with_spectral_norm(D)
    x = batch_for(D)
    for _ in range(30):          # each training-mode pass runs one power iteration
        D(x)
    after = [largest_singular_value(m) for m in weighted_layers(D)]
    assert after == pytest.approx([1.0] * len(after), abs=0.02)


def test_spectral_norm_holds_while_the_raw_weights_grow():
    torch.manual_seed(0)
    D = models.with_spectral_norm(models.MLPDiscriminator())
    x = batch_for(D)
    first = D.net[1]
    with torch.no_grad():
        first.parametrizations.weight.original.mul_(50.0)
    for _ in range(30):
        D(x)
    assert largest_singular_value(first) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", DISCRIMINATORS)
@pytest.mark.parametrize("trick", ["spectral norm", "dropout"])
def test_tricks_keep_d_a_discriminator(name, trick):
    torch.manual_seed(0)
    D = DISCRIMINATORS[name]()
    x = batch_for(D)
    D = models.with_spectral_norm(D) if trick == "spectral norm" else models.with_dropout(D)
    for mode in (True, False):
        out = D.train(mode)(x)
        assert out.shape == (len(x),)
        assert torch.isfinite(out).all()


def test_dropout_changes_outputs_in_training_mode_only():
    torch.manual_seed(0)
    D = models.with_dropout(models.DCGANDiscriminator(hidden=16), p=0.3)
    assert sum(isinstance(m, nn.Dropout) for m in D.modules()) == 3   # one per LeakyReLU
    x = batch_for(D)
    D.eval()
    assert torch.equal(D(x), D(x))
    D.train()
    assert not torch.allclose(D(x), D(x))


def test_dropout_keeps_the_weights_and_their_names():
    torch.manual_seed(0)
    plain = models.MLPDiscriminator()
    state = plain.state_dict()
    D = models.with_dropout(models.MLPDiscriminator(), p=0.5)
    D.load_state_dict(state)                      # the same keys and shapes
    x = batch_for(D)
    assert torch.equal(D.eval()(x), plain.eval()(x))   # eval mode: exactly the plain D


def test_each_trick_changes_only_what_it_names():
    plain = compare.trick_trainer(compare.TRICKS["plain"], _tiny_images(), seed=0)
    for name, trick in compare.TRICKS.items():
        t = compare.trick_trainer(trick, _tiny_images(), seed=0)
        assert torch.equal(t.fixed_z, plain.fixed_z)
        changed = {k for k, v in t.hparams.items() if plain.hparams[k] != v}
        assert changed == set(trick.trainer), name
        assert isinstance(t.loss, BCE)
        assert (t.loss.smoothing > 0) == (name == "label smoothing")
        has = lambda kind: any(isinstance(m, kind) for m in t.D.modules())
        assert has(nn.Dropout) == (name == "dropout in D")
        sn = any("parametrizations" in k for k in t.D.state_dict())
        assert sn == (name == "spectral norm in D")


def test_verdict_needs_the_seed_ranges_to_separate():
    plain = {"cfid_min": 10.0, "cfid_max": 20.0}
    assert compare.verdict({"cfid_min": 5.0, "cfid_max": 9.0}, plain) == "helped"
    assert compare.verdict({"cfid_min": 21.0, "cfid_max": 30.0}, plain) == "hurt"
    assert compare.verdict({"cfid_min": 5.0, "cfid_max": 15.0}, plain) == "no clear effect"


def test_summary_gives_the_spread_over_seeds_and_keeps_diverged_runs():
    rows = [{"trick": "plain", "cfid": c, "classes_covered": k}
            for c, k in ((10.0, 9), (12.0, 10), (14.0, 8))]
    rows.append({"trick": "TTUR", "cfid": float("inf"), "classes_covered": 0})
    rows.append({"trick": "TTUR", "cfid": 11.0, "classes_covered": 9})
    s = compare.summarise(rows)
    assert s["plain"]["cfid_mean"] == pytest.approx(12.0)
    assert s["plain"]["cfid_std"] == pytest.approx(2.0)
    assert (s["plain"]["cfid_min"], s["plain"]["cfid_max"]) == (10.0, 14.0)
    assert (s["plain"]["classes_min"], s["plain"]["classes_max"]) == (8, 10)
    assert s["TTUR"]["cfid_mean"] == float("inf") and s["TTUR"]["classes_min"] == 0
    assert compare.verdict(s["TTUR"], s["plain"]) == "no clear effect"


def _tiny_images():
    from gan_helpers.data import Images
    return Images(torch.rand(256, 1, 28, 28) * 2 - 1, torch.arange(256) % 10, "tiny")
