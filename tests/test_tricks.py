"""The tricks of chapter 09: spectral normalisation and dropout do what they claim and leave
D a discriminator, R1 is each image's own gradient only without BatchNorm, the EMA copy
draws with statistics of its own, and the benchmark's statistics are right."""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_helpers import losses, models, recipes
from gan_helpers.data import Images
from gan_helpers.train import Trainer, ema_update, standing_statistics

pytestmark = pytest.mark.usefixtures("one_thread")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

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
        "no BatchNorm, setting C": {"D", "lr_g", "lr_d"},
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
    bare = build("no BatchNorm in D", 0, 100, images).D.state_dict()
    for name in ("spectral norm", "R1", "hinge + SN", "no BatchNorm, setting C", "SN, setting C"):
        D = build(name, 0, 100, images).D
        weights = {k.replace(".parametrizations.weight.original", ".weight"): v
                   for k, v in D.state_dict().items() if not k.endswith("_u") and
                   not k.endswith("_v")}  # fmt: skip
        assert weights.keys() == bare.keys(), name
        assert all(torch.equal(weights[k], bare[k]) for k in bare), name  # paired with its control


def test_every_control_is_an_arm_that_differs_from_its_trick_by_the_trick_alone():
    from tricks import CONTROL, TRICKS

    images = Images(torch.rand(64, 1, 32, 32) * 2 - 1, torch.arange(64) % 10, "tiny")
    from tricks import build

    for name, control in CONTROL.items():
        assert control in TRICKS
        a, b = build(name, 0, 100, images), build(control, 0, 100, images)
        assert a.settings == b.settings, name  # the learning rates and betas agree
        assert not any(isinstance(m, nn.BatchNorm2d) for m in a.D.modules())
        assert not any(isinstance(m, nn.BatchNorm2d) for m in b.D.modules())


def _own_gradients_r1(D, x):
    """E ||d logit_i / d x_i||^2: each image's gradient of its own logit alone, one
    backward pass per image through the same batched forward (the same batch statistics)."""
    x = x.detach().clone().requires_grad_(True)
    logits = D(x)
    own = [torch.autograd.grad(logits[i], x, retain_graph=True)[0][i] for i in range(len(x))]
    return torch.stack(own).flatten(1).square().sum(1).mean()


@pytest.mark.parametrize("norm", [False, True])
def test_r1_is_each_images_own_gradient_only_without_batchnorm(norm):
    """The penalty differentiates the summed logits once, for the whole batch. That is each
    image's own gradient only if logit i depends on image i alone. Batch statistics couple
    the images: then the gradient with respect to image i also carries every other logit's
    dependence on it. Without BatchNorm the two agree (to float tolerance: one backward pass
    and sixteen sum in different orders); with it, they do not."""
    torch.manual_seed(0)
    D = models.DCGANDiscriminator(hidden=16, norm=norm).train()
    x = (torch.rand(16, 1, 32, 32) * 2 - 1).requires_grad_(True)
    batched, own = losses.r1_penalty(D(x), x), _own_gradients_r1(D, x)
    if not norm:
        torch.testing.assert_close(batched, own, rtol=1e-5, atol=0)
    else:
        assert abs(batched.item() - own.item()) > 0.02 * own.item(), (batched, own)


def test_the_t_test_and_holm_agree_with_their_tables():
    from tricks import holm, t_quantile, t_two_sided_p

    for df, t in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)):
        assert t_two_sided_p(t, df) == pytest.approx(0.05, abs=2e-4)
        assert t_quantile(0.05, df) == pytest.approx(t, abs=2e-3)
    assert t_two_sided_p(4.604, 4) == pytest.approx(0.01, abs=1e-4)
    assert t_two_sided_p(0.0, 4) == 1.0
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1, then non-decreasing
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def _rows(trick, values, metric="cfid"):
    base = {"precision": 0.5, "recall": 0.5, "kid": 0.0, "classes": 10, "entropy": 1.0}
    return [{"trick": trick, "seed": s, "steps": 10, "cpu_s": 1.0, **base, metric: v}
            for s, v in enumerate(values)]  # fmt: skip


def test_the_verdicts_pair_by_seed_judge_against_the_control_and_adjust_for_many():
    """A difference that is the same on every seed is a verdict; one that the seeds'
    spread swallows is not; a trick on a D without BatchNorm is judged against that D as
    well; and a comparison that passes at 95% alone can fail once the table's many
    comparisons are counted."""
    from tricks import CONTROL, summarise

    trick, control = next(iter(CONTROL.items()))
    plain = [50.0, 80.0, 60.0, 90.0, 70.0]
    rows = (
        _rows("plain", plain)
        + _rows(control, [v + 30 for v in plain])                 # worse than plain every seed
        + _rows(trick, [v + 30 + d for v, d in zip(plain, (1, -1, 2, -2, 0))])  # = control
        + _rows("EMA", [v + d for v, d in zip(plain, (9, 1, 12, 1, 9))])  # p < .05, not Holm
    )  # fmt: skip
    s = summarise(rows, ["plain", control, trick, "EMA"])
    assert s[control]["verdict"]["cfid"]["says"] == "hurt"
    assert s[trick]["verdict"]["cfid"]["says"] == "hurt"  # against plain: the D's doing
    assert s[trick]["against_control"]["reference"] == control
    assert s[trick]["against_control"]["cfid"]["says"] == "no difference shown"
    ema = s["EMA"]["verdict"]["cfid"]
    assert ema["p"] < 0.05 and ema["unadjusted"] == "hurt"
    assert ema["p_holm"] > 0.05 and ema["says"] == "no difference shown"
    assert "against_control" not in s["EMA"]


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
