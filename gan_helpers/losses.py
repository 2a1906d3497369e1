"""The games of the series, all on logits (raw discriminator scores).

With D(x) = sigmoid(l(x)), the minimax value function is
    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].
D maximises V; G minimises it (saturating) or, in practice, maximises log D(G(z)) instead
(non-saturating, Goodfellow et al. 2014). Each loss object has
    d_loss(D, real, fake, z, y) -> (loss, stats)   and   g_loss(D, fake, z, y) -> loss,
with y the labels of a conditional pair (else None) and z the noise behind `fake`.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def scores(D, x, y=None):
    """D's logits for x; a conditional D also reads the labels."""
    return D(x) if y is None else D(x, y)


def d_loss_bce(real_logits, fake_logits, smoothing=0.0):
    """-V for D: BCE with target 1 on real and 0 on fake. With `smoothing` s the real
    target is 1 - s (one-sided label smoothing: the fake target stays 0)."""
    real_target = torch.full_like(real_logits, 1.0 - smoothing)
    return F.binary_cross_entropy_with_logits(
        real_logits, real_target
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def g_loss_nonsaturating(fake_logits):
    """-E[log D(G(z))]: BCE with target 1 on the fakes; strong gradients while D wins."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def g_loss_saturating(fake_logits):
    """E[log(1 - D(G(z)))], the minimax form: its gradient vanishes while D rejects the
    fakes, as it does early in training."""
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def gradient_penalty(D, real, fake, y=None):
    """E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = a*real + (1-a)*fake, one a ~ U(0, 1) per
    sample, the norm over each sample's whole gradient (post 002 took it per pixel).
    Returned without lambda: the caller scales it once."""
    alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(scores(D, x_hat, y).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(real_logits, real):
    """E[||grad_x D(x)||^2] on real images (Mescheder et al. 2018): D's slope where the data
    is, pushed towards 0. `real` must require grad and `real_logits` come from it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


@dataclass
class BCE:
    """The standard GAN game. `saturating=True` is the minimax G loss of the theory;
    `smoothing` the one-sided label smoothing; `r1` the weight gamma of gamma/2 * R1."""

    saturating: bool = False
    smoothing: float = 0.0
    r1: float = 0.0

    def d_loss(self, D, real, fake, z=None, y=None):
        if self.r1:
            real = real.detach().requires_grad_(True)
        real_logits, fake_logits = scores(D, real, y), scores(D, fake, y)
        loss = d_loss_bce(real_logits, fake_logits, self.smoothing)
        stats = {
            "d_real": torch.sigmoid(real_logits).mean(),
            "d_fake": torch.sigmoid(fake_logits).mean(),
        }
        if self.r1:
            stats["penalty"] = r1_penalty(real_logits, real)
            loss = loss + self.r1 / 2 * stats["penalty"]
        return loss, stats

    def g_loss(self, D, fake, z=None, y=None):
        logits = scores(D, fake, y)
        return g_loss_saturating(logits) if self.saturating else g_loss_nonsaturating(logits)


@dataclass
class Hinge:
    """The hinge game of SN-GAN (Miyato et al. 2018): D pushes real scores above +1 and
    fake ones below -1; G raises the fakes' scores."""

    def d_loss(self, D, real, fake, z=None, y=None):
        real_scores, fake_scores = scores(D, real, y), scores(D, fake, y)
        loss = F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
        return loss, {"d_real": real_scores.mean(), "d_fake": fake_scores.mean()}

    def g_loss(self, D, fake, z=None, y=None):
        return -scores(D, fake, y).mean()


@dataclass
class WassersteinGP:
    """WGAN-GP (Gulrajani et al. 2017): the critic maximises E[C(real)] - E[C(fake)], the
    penalty keeps it near 1-Lipschitz; lambda is applied once."""

    lam: float = 10.0

    def d_loss(self, D, real, fake, z=None, y=None):
        real_scores, fake_scores = scores(D, real, y), scores(D, fake, y)
        gp = gradient_penalty(D, real, fake, y)
        stats = {"d_real": real_scores.mean(), "d_fake": fake_scores.mean(), "penalty": gp}
        return fake_scores.mean() - real_scores.mean() + self.lam * gp, stats

    def g_loss(self, D, fake, z=None, y=None):
        return -scores(D, fake, y).mean()


@dataclass
class InfoGAN:
    """InfoGAN (Chen et al. 2016): the non-saturating game plus a lower bound on the mutual
    information between the codes in z and the image, L_I = E[-log Q(c | G(z))] (up to the
    constant H(c)): cross-entropy for the categorical code, a unit Gaussian for the
    continuous ones. D returns (logit, Q's guess); both players minimise `weight` * L_I."""

    n_cat: int = 10
    n_cont: int = 2
    weight: float = 1.0
    cont_weight: float = 0.1

    def info(self, q, z):
        cat = F.cross_entropy(q[:, : self.n_cat], z[:, : self.n_cat].argmax(1))
        codes = z[:, self.n_cat : self.n_cat + self.n_cont]
        cont = 0.5 * (q[:, self.n_cat :] - codes).square().sum(1).mean()
        return self.weight * (cat + self.cont_weight * cont)

    def d_loss(self, D, real, fake, z, y=None):
        (real_logits, _), (fake_logits, q) = D(real), D(fake)
        info = self.info(q, z)
        stats = {
            "d_real": torch.sigmoid(real_logits).mean(),
            "d_fake": torch.sigmoid(fake_logits).mean(),
            "info": info,
        }
        return d_loss_bce(real_logits, fake_logits) + info, stats

    def g_loss(self, D, fake, z, y=None):
        logits, q = D(fake)
        return g_loss_nonsaturating(logits) + self.info(q, z)


@dataclass(frozen=True)
class InstanceNoise:
    """N(0, sigma_t^2) added to everything D sees, real and fake (Sønderby et al. 2016),
    sigma_t = sigma * (1 - t / steps): annealed over an explicit horizon, zero after it,
    so training in chunks or resuming never restarts the schedule."""

    sigma: float
    steps: int

    def at(self, step: int) -> float:
        return self.sigma * max(0.0, 1.0 - step / self.steps)


def instance_noise(x, sigma: float):
    return x + sigma * torch.randn_like(x) if sigma > 0 else x
