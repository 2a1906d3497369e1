"""The tricks of chapter 09: spectral normalisation and dropout do what they claim and leave
D a discriminator, and the EMA copy draws with statistics of its own."""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_helpers import models, recipes
from gan_helpers.data import Images
from gan_helpers.train import Trainer, ema_update, standing_statistics

pytestmark = pytest.mark.usefixtures("one_thread")

DISCRIMINATORS = {
    "mlp": models.MLPDiscriminator,
    "lenet": models.LeNetDiscriminator,
    "dcgan": lambda: models.DCGANDiscriminator(hidden=16),
}


def batch_for(D, n=8):
    size = 28 if isinstance(D, models.MLPDiscriminator) else 32
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
    for _ in range(30):  # each training-mode pass runs one power iteration
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
    assert sum(isinstance(m, nn.Dropout) for m in D.modules()) == 3  # one per LeakyReLU
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
    D.load_state_dict(state)  # the same keys and shapes
    x = batch_for(D)
    assert torch.equal(D.eval()(x), plain.eval()(x))  # eval mode: exactly the plain D


def test_each_trick_changes_only_what_it_names():
    """benchmarks/tricks.py: a trick changes what it says and keeps the rest of the seed's
    plain run: G's weights, the data order, the fixed noise, and D where it keeps D."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from tricks import TRICKS, build

    images = Images(torch.rand(256, 1, 32, 32) * 2 - 1, torch.arange(256) % 10, "tiny")
    plain = build("plain", 0, 100, images)
    expected = {
        "plain": set(),
        "label smoothing": {"loss"},
        "instance noise": {"noise"},
        "TTUR": {"lr_g"},
        "dropout in D": {"D"},
        "no BatchNorm in D": {"D"},
        "spectral norm": {"D"},
        "SN, setting C": {"D", "lr_g", "lr_d"},
        "hinge + SN": {"loss", "D"},
        "R1": {"loss", "D"},
        "EMA": {"ema"},
    }
    assert set(expected) == set(TRICKS)

    def layers(D):  # every module, and every weight's shape
        return [type(m).__name__ for m in D.modules()] + [p.shape for p in D.parameters()]

    for name in TRICKS:
        t = build(name, 0, 100, images)
        assert torch.equal(t.fixed_z, plain.fixed_z)
        assert all(torch.equal(a, b) for a, b in zip(t.G.parameters(), plain.G.parameters()))
        changed = {k for k, v in t.settings.items() if plain.settings[k] != v}
        changed |= {"loss"} if t.loss != plain.loss else set()
        changed |= {"D"} if layers(t.D) != layers(plain.D) else set()
        assert changed == expected[name], name
        has = lambda kind, D=t.D: any(isinstance(m, kind) for m in D.modules())
        assert has(nn.Dropout) == (name == "dropout in D")
        keeps_d = ("plain", "label smoothing", "instance noise", "TTUR", "dropout in D", "EMA")
        assert has(nn.BatchNorm2d) == (name in keeps_d), name
        sn = any("parametrizations" in k for k in t.D.state_dict())
        assert sn == (name in ("spectral norm", "SN, setting C", "hinge + SN")), name
    assert build("instance noise", 0, 700, images).noise.steps == 700


class _NormedG(nn.Module):
    z_dim = 3

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))

    def forward(self, z):
        return self.net(z)


def test_standing_statistics_are_the_generators_own_batch_statistics():
    """Two batches of 64 from seed 0, by hand: the running mean is the mean of the batch
    means, the running variance the mean of the unbiased batch variances."""
    torch.manual_seed(0)
    G = _NormedG()
    momentum = G.net[1].momentum
    standing_statistics(G, batches=2, size=64, seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        h = [G.net[0](torch.randn(64, 3, generator=g)) for _ in range(2)]
    bn = G.net[1]
    torch.testing.assert_close(bn.running_mean, torch.stack([x.mean(0) for x in h]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([x.var(0) for x in h]).mean(0))
    assert bn.momentum == momentum and not G.training


def test_the_ema_generator_samples_with_statistics_for_its_own_weights(tmp_path):
    """The averaged weights differ from the live ones, so the live BatchNorm statistics do
    not fit them; what is sampled and what is saved carry statistics measured for G_ema."""
    images = Images(torch.rand(64, 1, 32, 32) * 2 - 1, torch.zeros(64, dtype=torch.long), "noise")
    t = Trainer(images=images, **{**recipes.dcgan(seed=0), "ema": 0.5, "batch_size": 16})
    t.train(3, checkpoint=tmp_path / "c.pt")
    expected = [b.clone() for b in t.G_ema.buffers()]
    standing_statistics(t.G_ema)
    measured = [b.clone() for b in t.G_ema.buffers()]
    assert all(torch.equal(a, b) for a, b in zip(expected, measured))
    live = [b for n, b in t.G.named_buffers() if n.endswith("running_mean")]
    ema = [b for n, b in t.G_ema.named_buffers() if n.endswith("running_mean")]
    assert not any(torch.allclose(a, b) for a, b in zip(live, ema))
    saved = torch.load(tmp_path / "c.pt", weights_only=True)["G_ema"]
    assert all(torch.equal(saved[k], v) for k, v in t.G_ema.state_dict().items())


def test_ema_update_by_hand():
    """d = min(decay, (1 + t) / (10 + t)): at t = 0 the average keeps a tenth of itself;
    late in a run the decay caps it."""
    ema, model = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        ema.weight.fill_(1.0)
        model.weight.fill_(3.0)
    ema_update(ema, model, decay=0.999, step=0)  # d = 0.1: 0.1 * 1 + 0.9 * 3
    assert ema.weight.item() == pytest.approx(2.8)
    ema_update(ema, model, decay=0.5, step=10_000)  # d = 0.5: halfway to 3
    assert ema.weight.item() == pytest.approx(2.9)
