"""The losses of the series, all on logits (raw discriminator scores).

With D(x) = sigmoid(l(x)), the minimax value function is
    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].
The discriminator maximises V. The generator minimises it (saturating), or in practice
maximises log D(G(z)) instead (non-saturating, Goodfellow et al. 2014, section 3).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def d_loss_bce(real_logits, fake_logits, smoothing: float = 0.0):
    """-V for D: BCE with target 1 on real and 0 on fake. With `smoothing` s the real
    target is 1 - s (one-sided label smoothing: the fake target stays 0)."""
    real_target = torch.full_like(real_logits, 1.0 - smoothing)
    return (F.binary_cross_entropy_with_logits(real_logits, real_target)
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def g_loss_nonsaturating(fake_logits):
    """-E[log D(G(z))] = E[softplus(-l)]: strong gradients while D rejects the fakes."""
    return F.softplus(-fake_logits).mean()


def g_loss_saturating(fake_logits):
    """E[log(1 - D(G(z)))] = -E[softplus(l)]: the minimax form, whose gradient vanishes
    when D confidently rejects the fakes, as it does early in training."""
    return -F.softplus(fake_logits).mean()


def gradient_penalty(critic, real, fake, labels=None):
    """E[(||grad_x critic(x_hat)||_2 - 1)^2], x_hat = a*real + (1-a)*fake, a ~ U(0,1).

    One a per sample; the norm is over each sample's whole gradient (all pixels), not per
    row as in post 002. Returned without lambda: the caller scales it exactly once.
    """
    alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(x_hat) if labels is None else critic(x_hat, labels)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def instance_noise(x, sigma: float):
    """Add N(0, sigma^2) noise to a D input, blurring real and fake distributions so they
    overlap early in training (Sønderby et al. 2016); anneal sigma to 0."""
    return x + sigma * torch.randn_like(x) if sigma > 0 else x


@dataclass
class BCE:
    """The standard GAN loss. `saturating=True` is the minimax G loss of the theory."""
    saturating: bool = False
    smoothing: float = 0.0

    def d_loss(self, D, real, fake, labels=None):
        real_logits, fake_logits = _scores(D, real, labels), _scores(D, fake, labels)
        stats = {"d_real": torch.sigmoid(real_logits).mean(),
                 "d_fake": torch.sigmoid(fake_logits).mean()}
        return d_loss_bce(real_logits, fake_logits, self.smoothing), stats

    def g_loss(self, fake_logits):
        return (g_loss_saturating if self.saturating else g_loss_nonsaturating)(fake_logits)


@dataclass
class WassersteinGP:
    """WGAN-GP (Gulrajani et al. 2017): the critic maximises E[C(real)] - E[C(fake)]
    while the penalty keeps it close to 1-Lipschitz; lambda is applied once."""
    lam: float = 10.0

    def d_loss(self, D, real, fake, labels=None):
        real_scores, fake_scores = _scores(D, real, labels), _scores(D, fake, labels)
        gp = gradient_penalty(D, real, fake, labels)
        stats = {"d_real": real_scores.mean(), "d_fake": fake_scores.mean(), "gp": gp}
        return fake_scores.mean() - real_scores.mean() + self.lam * gp, stats

    def g_loss(self, fake_scores):
        return -fake_scores.mean()


def _scores(D, x, labels):
    return D(x) if labels is None else D(x, labels)
