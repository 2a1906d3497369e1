"""Every network of the series: output shapes, value ranges, and the fixes it promises."""
import pytest
import torch
from torch import nn

from gan_helpers import models, recipes


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_recipe_pair_shapes(name):
    torch.manual_seed(0)
    G, D = recipes.get(name).build()
    z = torch.randn(5, G.z_dim)
    y = torch.arange(5)
    cond = models.is_conditional(G)
    x = G(z, y) if cond else G(z)
    S = G.image_size
    assert x.shape == (5, 1, S, S)
    assert x.min() >= -1 and x.max() <= 1            # Tanh range, same as the data
    logits = D(x, y) if cond else D(x)
    assert logits.shape == (5,)


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_discriminators_return_logits_not_probabilities(name):
    _, D = recipes.get(name).build()
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())


def test_wgan_critic_has_no_batchnorm():
    critic = recipes.get("wgan-gp").build()[1]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in recipes.get("dcgan").build()[1].modules())


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
    x = torch.nn.functional.pad(torch.arange(784.).view(1, 1, 28, 28), (2, 2, 2, 2), value=-1)
    assert torch.equal(models.crop_to_28(x), torch.arange(784.).view(1, 1, 28, 28))
    same = torch.randn(2, 1, 28, 28)
    assert models.crop_to_28(same) is same


def test_conditional_generator_depends_on_the_label():
    torch.manual_seed(0)
    G = models.ConditionalGenerator().eval()
    z = torch.randn(1, G.z_dim).repeat(2, 1)
    a, b = G(z, torch.tensor([3, 7]))
    assert not torch.allclose(a, b)


def test_toy_pair_shapes():
    G, D = models.ToyGenerator(), models.ToyDiscriminator()
    assert G(torch.randn(7, 2)).shape == (7, 2)
    assert D(torch.randn(7, 2)).shape == (7,)
