"""Each model of the series by name, with its own settings.

A recipe names the generator/discriminator pair, the loss, and the hyper-parameters the
source post used, corrected where the post was wrong. The command line and the notebooks
both build models from here, so a name means the same thing everywhere.
"""
from dataclasses import dataclass, field, asdict
from typing import Callable

from torch import nn

from . import losses, models
from .errors import GanError


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str                     # which post it follows
    make_g: Callable[[], nn.Module]
    make_d: Callable[[], nn.Module]
    loss: str = "bce"               # "bce", "bce-saturating" or "wgan-gp"
    batch_size: int = 128
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.5, 0.999)
    n_critic: int = 1
    steps: int = 3000               # a full-mode default for the command line
    notes: str = ""

    def build(self):
        """A fresh (G, D) pair."""
        return self.make_g(), self.make_d()

    def settings(self) -> dict:
        """The plain-value hyper-parameters, for checkpoints and printing."""
        d = asdict(self)
        for k in ("make_g", "make_d", "notes"):
            d.pop(k)
        d["betas"] = list(self.betas)
        return d


def make_loss(name: str, **kw):
    """'bce' (non-saturating), 'bce-saturating' or 'wgan-gp', with optional tricks."""
    if name == "bce":
        return losses.BCE(saturating=False, **kw)
    if name == "bce-saturating":
        return losses.BCE(saturating=True, **kw)
    if name == "wgan-gp":
        return losses.WassersteinGP(**kw)
    raise GanError(f"Unknown loss {name!r}; choose bce, bce-saturating or wgan-gp.")


RECIPES = {r.name: r for r in [
    Recipe("mlp", "001", models.MLPGenerator, models.MLPDiscriminator,
           lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999), batch_size=128,
           notes="post 001 used Adam 3e-4 with default betas for 100 epochs; in a 3000-step "
                 "budget that gives blurred, collapsed blobs, while 1e-3 with beta1=0.5 "
                 "gives digits of every class"),
    Recipe("mlp-bn", "000", models.BNMLPGenerator, models.BNMLPDiscriminator,
           lr_g=3e-4, lr_d=3e-4, betas=(0.9, 0.999), batch_size=128,
           notes="post 000: Adam 3e-4, batch 128"),
    Recipe("mlp-deep", "003", models.DeepMLPGenerator, models.DeepMLPDiscriminator,
           lr_g=2e-4, lr_d=2e-4, betas=(0.9, 0.999), batch_size=64,
           notes="post 003: Adam 2e-4, batch 64"),
    Recipe("lenet-deconv", "004", models.DeconvGenerator, models.LeNetDiscriminator,
           batch_size=32, steps=2000,
           notes="post 004: Adam 2e-4, betas (0.5, 0.999), batch 32"),
    Recipe("dcgan", "002/003", lambda: models.DCGANGenerator(z_dim=64, hidden=32),
           lambda: models.DCGANDiscriminator(hidden=32), batch_size=64, steps=1500,
           notes="post 002: z=64, Adam 2e-4, betas (0.5, 0.999); width h=32 instead of "
                 "the post's 128, which costs 16x the compute for no visible gain on MNIST"),
    Recipe("wgan-gp", "002/003", lambda: models.DCGANGenerator(z_dim=64, hidden=32),
           lambda: models.wgan_critic(hidden=32), loss="wgan-gp", batch_size=64,
           lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.9), n_critic=5, steps=1500,
           notes="Gulrajani et al.: Adam 1e-4, betas (0.5, 0.9), 5 critic steps per G step"),
    Recipe("cgan", "003", lambda: models.ConditionalGenerator(z_dim=64, hidden=32),
           lambda: models.ConditionalDiscriminator(hidden=32), batch_size=64, steps=1500,
           notes="post 003's suggestion: the DCGAN pair, both conditioned on the label"),
]}


def get(name: str) -> Recipe:
    if name not in RECIPES:
        raise GanError(f"Unknown model {name!r}; choose one of: {', '.join(RECIPES)}.")
    return RECIPES[name]
