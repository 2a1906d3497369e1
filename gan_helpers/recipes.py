"""Each model of the series by name, with its own settings.

A recipe names the generator/discriminator pair, the loss, and the hyper-parameters the
source post used, corrected where the post was wrong. The command line and the notebooks
both build models from here, so a name means the same thing everywhere.
"""
from dataclasses import asdict, dataclass
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
    noise_sigma: float = 0.0        # instance noise on D's inputs at step 0, annealed to 0
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
           lr_g=3e-4, lr_d=3e-4, betas=(0.5, 0.999), batch_size=128,
           notes="post 000: Adam 3e-4 (default betas), batch 128; beta1=0.5 as in chapter 01 "
                 "(3000 steps: speckle over faint digits at 0.9, clearer digits at 0.5; 1e-3 "
                 "was worse than 3e-4 for this deeper pair)"),
    Recipe("mlp-deep", "003", models.DeepMLPGenerator, models.DeepMLPDiscriminator,
           lr_g=2e-4, lr_d=2e-4, betas=(0.9, 0.999), batch_size=64,
           notes="post 003: Adam 2e-4, batch 64"),
    Recipe("lenet-deconv", "004", models.DeconvGenerator, models.LeNetDiscriminator,
           batch_size=32, lr_g=1e-3, lr_d=1e-3, noise_sigma=0.1, steps=1200,
           notes="post 004: Adam 2e-4, betas (0.5, 0.999), batch 32. At 2e-4 this pair "
                 "collapsed to one blurred template within 1,600 steps. At 1e-3 it drew "
                 "varied digits at some seeds but one template at others, seed 0 among "
                 "them. Instance noise (sigma 0.1, annealed to 0) fixes that: seeds 0, 1 "
                 "and 2 drew 6, 8 and 8 of the 10 digits in 1,200 steps on one CPU "
                 "thread (cFID 445, 408 and 544 at n=2,000; 1,712 and 3 digits at seed 0 "
                 "without the noise)"),
    Recipe("dcgan", "002/003", lambda: models.DCGANGenerator(z_dim=64, hidden=32),
           lambda: models.DCGANDiscriminator(hidden=32), batch_size=64,
           lr_g=5e-4, lr_d=5e-4, steps=1500,
           notes="post 002: z=64, batch 128, Adam 2e-4, betas (0.5, 0.999), width h=128. "
                 "Here h=32 and batch 64, which learn the most per second of CPU: h=64 ran "
                 "at a third of h=32's steps/s and was behind it at equal time, and h=128 "
                 "costs about 16x h=32. Adam 5e-4 reached recognisable digits of every "
                 "class in ~550 steps, where 2e-4 needed more than 850"),
    Recipe("wgan-gp", "002/003", lambda: models.DCGANGenerator(z_dim=64, hidden=32),
           lambda: models.wgan_critic(hidden=32), loss="wgan-gp", batch_size=64,
           lr_g=6e-4, lr_d=6e-4, betas=(0.5, 0.9), n_critic=5, steps=600,
           notes="Gulrajani et al.: Adam 1e-4, betas (0, 0.9), 5 critic steps per G step, "
                 "lambda 10. With 1e-4 the DCGAN pair at h=32 still drew blobs after 240 "
                 "generator steps (160 s of one CPU core); 6e-4 with beta1 0.5 drew "
                 "recognisable digits of 9-10 classes by 200 steps"),
    Recipe("cgan", "003", lambda: models.ConditionalGenerator(z_dim=64, hidden=32),
           lambda: models.ConditionalDiscriminator(hidden=32), batch_size=64, steps=1500,
           notes="post 003's suggestion: the DCGAN pair, both conditioned on the label"),
]}


def get(name: str) -> Recipe:
    if name not in RECIPES:
        raise GanError(f"Unknown model {name!r}; choose one of: {', '.join(RECIPES)}.")
    return RECIPES[name]
