"""Each loss against a hand computation."""

import math

import pytest
import torch

from gan_helpers import losses


def sp(x):  # softplus, computed by hand: log(1 + e^x)
    return math.log1p(math.exp(x))


def test_d_loss_bce_by_hand():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    # -log sigmoid(2) - log(1 - sigmoid(-1)) = softplus(-2) + softplus(-1)
    assert losses.d_loss_bce(real, fake).item() == pytest.approx(sp(-2) + sp(-1), abs=1e-6)
    assert losses.d_loss_bce(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(
        2 * math.log(2), abs=1e-6
    )


def test_one_sided_label_smoothing_moves_only_the_real_target():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    # real target 0.9: -(0.9 log s(2) + 0.1 log(1 - s(2))) = 0.9 sp(-2) + 0.1 sp(2)
    expected = 0.9 * sp(-2) + 0.1 * sp(2) + sp(-1)
    assert losses.d_loss_bce(real, fake, smoothing=0.1).item() == pytest.approx(expected, abs=1e-6)


def test_generator_losses_by_hand():
    logit = torch.tensor([0.0, -3.0])
    assert losses.g_loss_nonsaturating(logit).item() == pytest.approx((sp(0) + sp(3)) / 2, abs=1e-6)
    assert losses.g_loss_saturating(logit).item() == pytest.approx(-(sp(0) + sp(-3)) / 2, abs=1e-6)


def test_saturating_loss_vanishes_where_the_nonsaturating_one_does_not():
    # D confidently rejects the fake: D(G(z)) = sigmoid(-5) ~ 0.0067
    logit = torch.tensor([-5.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(losses.g_loss_saturating(logit), logit)
    l2 = torch.tensor([-5.0], requires_grad=True)
    (g_ns,) = torch.autograd.grad(losses.g_loss_nonsaturating(l2), l2)
    s = 1 / (1 + math.exp(5))
    assert g_sat.item() == pytest.approx(-s, abs=1e-6)  # -sigmoid(l)
    assert g_ns.item() == pytest.approx(-(1 - s), abs=1e-6)  # -sigmoid(-l)
    assert abs(g_ns.item()) > 100 * abs(g_sat.item())


def linear_critic(c):
    """C(x) = c * sum(x) per sample: its gradient is c at every pixel, so the per-sample
    gradient norm is c * sqrt(784) = 28c."""
    return lambda x: c * x.flatten(1).sum(1)


def test_gradient_penalty_with_a_known_gradient_norm():
    real, fake = torch.randn(6, 1, 28, 28), torch.randn(6, 1, 28, 28)
    # norm 2 -> (2 - 1)^2 = 1. A per-row norm (post 002's dim=1) would see |c| per pixel.
    gp = losses.gradient_penalty(linear_critic(2 / 28), real, fake)
    assert gp.item() == pytest.approx(1.0, abs=1e-4)  # float32 sums over 784 pixels
    # norm exactly 1 -> no penalty
    assert losses.gradient_penalty(linear_critic(1 / 28), real, fake).item() == pytest.approx(
        0, abs=1e-6
    )


def test_gradient_penalty_draws_one_alpha_per_sample():
    # C(x) = 0.5 * ||x||^2 has gradient x_hat, so the penalty reveals where x_hat lies.
    torch.manual_seed(0)
    real = torch.ones(4, 1, 28, 28)
    fake = torch.zeros(4, 1, 28, 28)
    critic = lambda x: 0.5 * x.flatten(1).pow(2).sum(1)
    gp = losses.gradient_penalty(critic, real, fake)
    torch.manual_seed(0)
    alpha = torch.rand(4)  # the same draw, one per sample
    expected = ((alpha * 28 - 1) ** 2).mean()  # ||alpha * ones|| = 28 alpha
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)


def test_wasserstein_loss_applies_lambda_once():
    real, fake = torch.randn(6, 1, 28, 28), torch.randn(6, 1, 28, 28)
    c = 2 / 28
    critic = linear_critic(c)
    loss, stats = losses.WassersteinGP(lam=10.0).d_loss(critic, real, fake)
    w = critic(fake).mean() - critic(real).mean()
    assert loss.item() == pytest.approx(w.item() + 10.0 * 1.0, abs=1e-3)
    assert stats["penalty"].item() == pytest.approx(1.0, abs=1e-4)
    scores_1_and_3 = lambda x: x.flatten(1)[:, 0]
    assert (
        losses.WassersteinGP().g_loss(scores_1_and_3, torch.tensor([[1.0], [3.0]])).item() == -2.0
    )


def test_instance_noise():
    x = torch.zeros(100_000)
    assert losses.instance_noise(x, 0.0) is x
    torch.manual_seed(0)
    assert losses.instance_noise(x, 0.3).std().item() == pytest.approx(0.3, rel=0.02)


def test_instance_noise_anneals_linearly_to_zero_over_its_horizon():
    noise = losses.InstanceNoise(sigma=0.2, steps=100)
    assert [noise.at(t) for t in (0, 25, 50, 100, 150)] == pytest.approx([0.2, 0.15, 0.1, 0, 0])


def test_r1_is_zero_for_a_constant_critic_and_the_squared_weight_norm_for_a_linear_one():
    real = torch.randn(5, 1, 28, 28)
    constant = lambda x: x.flatten(1).sum(1) * 0 + 3.0
    loss, stats = losses.BCE(r1=10.0).d_loss(constant, real, torch.randn(5, 1, 28, 28))
    assert stats["penalty"].item() == 0
    w = torch.randn(784)
    linear = lambda x: x.flatten(1) @ w + 0.5  # grad_x D = w for every sample
    loss, stats = losses.BCE(r1=10.0).d_loss(linear, real, torch.randn(5, 1, 28, 28))
    assert stats["penalty"].item() == pytest.approx(w.square().sum().item(), rel=1e-5)
    plain, _ = losses.BCE().d_loss(linear, real, torch.zeros(5, 1, 28, 28))
    with_r1, _ = losses.BCE(r1=10.0).d_loss(linear, real, torch.zeros(5, 1, 28, 28))
    assert (with_r1 - plain).item() == pytest.approx(5.0 * w.square().sum().item(), rel=1e-4)


def test_r1_reaches_the_critic_weights():
    """The penalty trains D: its gradient with respect to D's weights is not zero."""
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Flatten(0))
    loss, stats = losses.BCE(r1=1.0).d_loss(D, torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28))
    (grad,) = torch.autograd.grad(stats["penalty"], D[1].weight)
    assert torch.allclose(grad, 2 * D[1].weight, atol=1e-6)  # d/dw ||w||^2


def test_hinge_loss_by_hand():
    D = lambda x: x.flatten(1)[:, 0]  # the score is the input itself
    loss, _ = losses.Hinge().d_loss(D, torch.tensor([[2.0], [0.5]]), torch.tensor([[-3.0], [0.0]]))
    # relu(1 - 2) = 0, relu(1 - 0.5) = 0.5; relu(1 - 3) = 0, relu(1 + 0) = 1
    assert loss.item() == pytest.approx(0.25 + 0.5)
    assert losses.Hinge().g_loss(D, torch.tensor([[-3.0], [0.0]])).item() == pytest.approx(1.5)


def test_infogan_code_loss_by_hand():
    """Cross-entropy for the category read from z, half the squared error for the
    continuous codes (a unit Gaussian), the latter weighted 0.1."""
    z = torch.zeros(2, 14)
    z[0, 3], z[1, 7] = 1.0, 1.0  # categories 3 and 7
    z[:, 10:12] = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    q = torch.zeros(2, 12)
    q[:, 10:12] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    # uniform category logits: -log(1/10) each; squared errors 0.25 and 1.0
    expected = math.log(10) + 0.1 * 0.5 * (0.25 + 1.0) / 2
    assert losses.InfoGAN().info(q, z).item() == pytest.approx(expected, rel=1e-6)
