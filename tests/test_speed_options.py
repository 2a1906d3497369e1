"""The command line's opt-in speed options: each one trains, and does what it says.

No timing here: how fast each option is lives in benchmarks/ and the README.
"""

import math

import pytest
import torch

from gan_helpers import data, models, speed, toy
from gan_helpers.__main__ import main
from gan_helpers.env import GanError
from gan_helpers.losses import InstanceNoise, WassersteinGP
from gan_helpers.speed import OPTIONS
from gan_helpers.train import Trainer


@pytest.fixture(scope="module")
def digits():
    full = data.load("mnist", size=32)
    return data.Images(full.x[:256], full.y[:256], "256 digits")


def _conv_trainer(digits, *options):
    """The DCGAN pair at its smallest: convolutions, BatchNorm, transposed convolutions."""
    torch.manual_seed(0)
    G, D = models.DCGANGenerator(z_dim=16, hidden=8), models.DCGANDiscriminator(hidden=8)
    t = Trainer(G, D, digits, batch_size=16)
    speed.apply(t, options)
    return t


def _toy_trainer(options=(), **kw):
    torch.manual_seed(0)
    G, D = toy.ToyGenerator(), toy.ToyDiscriminator()
    t = Trainer(G, D, toy.ring_of_gaussians(512, seed=0), batch_size=64, **kw)
    speed.apply(t, options)
    return t


@pytest.mark.parametrize("option", [o for o in OPTIONS if o != "compile"])
def test_each_option_trains_a_conv_gan(digits, option):
    t = _conv_trainer(digits, option)
    history = t.train(3)
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert len(history[key]) == 3 and all(math.isfinite(v) for v in history[key])
    samples = t.sample(5)
    assert samples.shape == (5, 1, 32, 32) and samples.dtype == torch.float32
    assert samples.abs().max() <= 1


def test_compile_trains_with_a_gradient_penalty():
    """Compiling is slow on a CPU (minutes for a conv pair), so the compile tests use the
    toy MLPs; the gradient penalty's double backward is what could break."""
    t = _toy_trainer(["compile"], loss=WassersteinGP(), n_critic=2)
    history = t.train(2)
    assert all(math.isfinite(v) for k in ("loss_d", "loss_g", "penalty") for v in history[k])
    assert t.sample(3).shape == (3, 2)


def test_bf16_runs_the_forward_passes_in_bfloat16_and_keeps_float32_weights(digits):
    t = _conv_trainer(digits, "bf16")
    seen = []
    hook = lambda module, inputs, output: seen.append((type(module).__name__, output.dtype))
    layers = [t.G.net[0], t.D.features[0], t.D.head]  # a transposed conv, two convs
    handles = [layer.register_forward_hook(hook) for layer in layers]
    t.train(1)
    for h in handles:
        h.remove()
    # G once; D on real, on fake, and again on fake for G's loss: every output in bf16
    assert len(seen) == 7 and {dtype for _, dtype in seen} == {torch.bfloat16}
    for p in [*t.G.parameters(), *t.D.parameters()]:
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32


def test_bf16_is_off_by_default(digits):
    t = _conv_trainer(digits)
    dtypes = []
    t.D.head.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    t.train(1)
    assert set(dtypes) == {torch.float32}


def test_channels_last_puts_conv_weights_in_nhwc(digits):
    def nhwc(t):
        return [
            m.weight.is_contiguous(memory_format=torch.channels_last)
            for m in [*t.G.modules(), *t.D.modules()]
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
        ]

    fast, default = _conv_trainer(digits, "channels_last"), _conv_trainer(digits)
    fast.train(2)
    assert all(nhwc(fast)) and not all(nhwc(default))


def test_compile_gives_the_eager_losses():
    """Same seed, same draws (Inductor's own RNG off): the compiled step matches eager up
    to float rounding, which its fused kernels order differently."""
    losses = {}
    with torch._inductor.config.patch(fallback_random=True):
        for compiled in (False, True):
            t = _toy_trainer(["compile"] if compiled else [])
            h = t.train(3)
            losses[compiled] = torch.tensor([h["loss_d"], h["loss_g"]])
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-4, atol=1e-5)


def test_bf16_and_compile_together_still_train_in_bfloat16():
    """The autocast hooks stay outside the compiled graph, which is traced inside the
    autocast they open: together, the losses are bf16's, not float32's."""
    losses = {}
    with torch._inductor.config.patch(fallback_random=True):
        for options in ((), ("bf16",), ("bf16", "compile")):
            h = _toy_trainer(options).train(3)
            losses[options] = torch.tensor([h["loss_d"], h["loss_g"]])
    torch.testing.assert_close(losses["bf16", "compile"], losses["bf16",], rtol=2e-2, atol=2e-3)
    assert not torch.allclose(losses["bf16",], losses[()], rtol=1e-5, atol=1e-6)


def test_compile_does_not_recompile_as_the_instance_noise_anneals():
    """The noise scale changes every step; it stays outside the compiled models, or each
    new value would recompile them (up to the recompile limit, then fall back to eager)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    t = _toy_trainer(["compile"], noise=InstanceNoise(0.5, 8))
    t.train(2)
    graphs = counters["stats"]["unique_graphs"]
    t.train(6)
    assert 0 < graphs == counters["stats"]["unique_graphs"]


def test_an_unknown_option_is_refused(digits):
    with pytest.raises(GanError, match="Unknown speed option 'bf32'"):
        _conv_trainer(digits, "bf32")


def test_cli_takes_the_speed_flags(tmp_path, capsys):
    code = main(
        [
            "train",
            "mlp",
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "3",
            "--batch-size",
            "16",
            "--bf16",
            "--channels-last",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "bf16, channels_last" in capsys.readouterr().out
