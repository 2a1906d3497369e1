"""Every network of the series: output shapes, value ranges, and the fixes it promises."""

import pytest
import torch
from torch import nn

from gan_helpers import models, recipes, toy


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_recipe_pair_shapes(name):
    pair = recipes.get(name)(seed=0)
    G, D = pair["G"], pair["D"]
    z = torch.randn(5, G.z_dim)
    y = torch.arange(5)
    cond = models.is_conditional(G)
    x = G(z, y) if cond else G(z)
    S = recipes.SIZE[name]
    assert x.shape == (5, 3 if name in recipes.SIZED else 1, S, S)  # dcgan64: colour
    assert x.min() >= -1 and x.max() <= 1  # Tanh range, same as the data
    logits = D(x, y) if cond else D(x)
    if name == "infogan":  # the logit, and Q's guess of the codes
        logits, q = logits
        assert q.shape == (5, G.n_cat + G.n_cont)
    assert logits.shape == (5,)


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_discriminators_return_logits_not_probabilities(name):
    D = recipes.get(name)()["D"]
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())


def test_wgan_critic_has_no_batchnorm():
    critic = recipes.wgan_gp()["D"]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in recipes.dcgan()["D"].modules())


def test_deconv_generator_grows_6x6_noise_to_32x32():
    G = models.DeconvGenerator()
    assert G.z_dim == 36
    sizes = []
    h = torch.randn(2, 1, 6, 6)
    for layer in G.net:
        h = layer(h)
        if isinstance(layer, nn.ConvTranspose2d):
            sizes.append(h.shape[-1])
    assert sizes == [10, 14, 18, 22, 26, 30, 32]


def test_lenet_flattens_to_400_features():
    D = models.LeNetDiscriminator()
    flat = D.net[:9](torch.zeros(3, 1, 32, 32))
    assert flat.shape == (3, 400)


def test_crop_to_28_removes_exactly_the_padding():
    x = torch.nn.functional.pad(torch.arange(784.0).view(1, 1, 28, 28), (2, 2, 2, 2), value=-1)
    assert torch.equal(models.crop_to_28(x), torch.arange(784.0).view(1, 1, 28, 28))
    same = torch.randn(2, 1, 28, 28)
    assert models.crop_to_28(same) is same


def test_conditional_generator_depends_on_the_label():
    torch.manual_seed(0)
    G = models.ConditionalGenerator().eval()
    z = torch.randn(1, G.z_dim).repeat(2, 1)
    a, b = G(z, torch.tensor([3, 7]))
    assert not torch.allclose(a, b)


def test_toy_pair_shapes():
    G, D = toy.ToyGenerator(), toy.ToyDiscriminator()
    assert G(torch.randn(7, 2)).shape == (7, 2)
    assert D(torch.randn(7, 2)).shape == (7,)


def test_the_mlp_bn_discriminator_has_no_batchnorm_after_its_input_layer():
    """Post 000's blinding mistake stays in chapter 02; the recipe's D is the fixed one."""
    D = recipes.mlp_bn()["D"]
    layers = list(D.net)
    assert isinstance(layers[1], nn.Linear) and not isinstance(layers[2], nn.BatchNorm1d)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in layers) == 1


def test_the_projection_starts_on_the_scale_of_the_head():
    """An N(0, 1) embedding over 4h*16 features made the projection term dwarf the head's
    logit at the start; N(0, 0.02^2), the head's own law, keeps them comparable."""
    torch.manual_seed(0)
    D = models.ConditionalDiscriminator(hidden=32)
    x, y = torch.randn(64, 1, 32, 32), torch.arange(64) % 10
    with torch.no_grad():
        f = D.features(x)
        head, projection = D.head(f).flatten(), (f.flatten(1) * D.embed(y)).sum(1)
    assert D.embed.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert 0.2 < projection.std() / head.std() < 5


def test_the_infogan_category_is_the_argmax_of_the_first_ten_numbers_of_z():
    torch.manual_seed(0)
    G = models.InfoGenerator().eval()
    z = torch.randn(1, G.z_dim)
    k = int(z[0, :10].argmax())
    louder = z.clone()
    louder[0, :10] *= 3  # the same argmax: the same input
    other = z.clone()
    other[0, (k + 1) % 10] = z[0, :10].max() + 1  # another category
    with torch.no_grad():
        assert torch.equal(G(z), G(louder))
        assert not torch.allclose(G(z), G(other))


def test_the_infogan_code_enters_as_loud_as_the_noise():
    """G's first layer sees the one-hot code times 8 (the noise's expected length), then z's
    other 64 numbers as they are; at code_scale=1, the one-hot as it is."""
    torch.manual_seed(0)
    z = torch.randn(512, 74)
    one_hot = nn.functional.one_hot(z[:, :10].argmax(1), 10).float()
    seen = []
    for scale, expected in ((None, 8.0), (1.0, 1.0)):
        G = models.InfoGenerator(code_scale=scale).eval()
        G.fc[0].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
        with torch.no_grad():
            G(z)
        assert torch.equal(seen[-1][:, :10], expected * one_hot)
        assert torch.equal(seen[-1][:, 10:], z[:, 10:])
    assert z[:, 10:].norm(dim=1).mean().item() == pytest.approx(8.0, rel=0.05)


def test_batchnorm_undoes_any_rescaling_of_the_weights_before_it():
    """Why spectral norm measures nothing Lipschitz on a D with BatchNorm: dividing a
    bias-free conv's weights by a constant, as W / sigma(W) does, leaves D's training-mode
    output unchanged but for BatchNorm's eps. Without BatchNorm it scales the output by 1/7."""
    x = torch.randn(16, 1, 32, 32)
    change = {}
    for norm in (True, False):
        torch.manual_seed(0)
        D = models.DCGANDiscriminator(hidden=16, norm=norm)
        before = D(x)
        with torch.no_grad():
            D.features[2].weight /= 7.0  # the conv of the second block
        change[norm] = ((D(x) - before).norm() / before.norm()).item()
    assert change[True] < 0.1 and change[False] == pytest.approx(6 / 7, rel=1e-4)


def test_generate_checks_labels_and_restores_training_mode():
    G = models.ConditionalGenerator(hidden=16).train()
    z = torch.randn(3, G.z_dim)
    assert models.generate(G, z, [1, 2, 3]).shape == (3, 1, 32, 32) and G.training
    with pytest.raises(models.GanError, match="needs labels"):
        models.generate(G, z)
    with pytest.raises(models.GanError, match="3 digits from 0 to 9"):
        models.generate(G, z, [1, 2, 12])


@pytest.mark.parametrize("conditional", [False, True])
def test_generate_draws_on_the_generators_device(conditional):
    # a seeded z is drawn on the CPU; a generator on a GPU must still take it. The meta
    # device stands in for the GPU: mixing it with CPU tensors fails the same way
    G = (models.ConditionalGenerator if conditional else models.DCGANGenerator)(hidden=8)
    z, labels = torch.randn(4, G.z_dim), [0, 1, 2, 3] if conditional else None
    out = models.generate(G.to("meta"), z, labels)
    assert out.device.type == "meta" and out.shape == (4, 1, 32, 32)
