"""Each model of the series by name, with its own settings.

A recipe is a chapter's final, fixed model: the generator/discriminator pair, the game,
and the training settings, so that a name means the same thing in the chapters, on the
command line and in the benchmarks. A post's broken variant is built only in its chapter.
Where a setting departs from the source post, the chapter that uses it shows why. Below
them: the training tricks chapter 09 measures on the DCGAN, with the changes to a
discriminator that two of them make.
"""

from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from . import losses, models
from .env import GanError
from .losses import InstanceNoise


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str  # the post it follows
    chapter: str
    make_g: Callable[[], nn.Module]
    make_d: Callable[[], nn.Module]
    steps: int  # the chapter's full budget; the command line's default
    loss: Callable = losses.BCE
    batch_size: int = 128
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.5, 0.999)
    n_critic: int = 1
    noise: Optional[InstanceNoise] = None
    ema: Optional[float] = None

    def build(self):
        """A fresh (G, D) pair."""
        return self.make_g(), self.make_d()

    def trainer_settings(self) -> dict:
        """The Trainer keywords of this recipe."""
        return {
            "loss": self.loss(),
            "batch_size": self.batch_size,
            "lr_g": self.lr_g,
            "lr_d": self.lr_d,
            "betas": self.betas,
            "n_critic": self.n_critic,
            "noise": self.noise,
            "ema": self.ema,
        }


def _dcgan_g(cls=models.DCGANGenerator):
    return lambda: cls(hidden=32)


RECIPES = {
    r.name: r
    for r in [
        Recipe(
            "mlp",
            "001",
            "01",
            models.MLPGenerator,
            models.MLPDiscriminator,
            steps=3000,
            lr_g=1e-3,
            lr_d=1e-3,
        ),
        Recipe(
            "mlp-bn",
            "000",
            "02",
            models.BNMLPGenerator,
            models.BNMLPDiscriminator,
            steps=3000,
            lr_g=3e-4,
            lr_d=3e-4,
        ),
        Recipe(
            "mlp-deep",
            "003",
            "09",
            models.DeepMLPGenerator,
            models.DeepMLPDiscriminator,
            steps=1500,
            loss=losses.WassersteinGP,  # the BCE game collapses this pair (chapter 05)
            batch_size=64,
            lr_g=2e-4,
            lr_d=2e-4,
            betas=(0.5, 0.9),
            n_critic=5,
        ),
        Recipe(
            "lenet-deconv",
            "004",
            "03",
            models.DeconvGenerator,
            lambda: models.LeNetDiscriminator(norm=False),
            steps=400,
            loss=losses.WassersteinGP,
            batch_size=32,
            lr_g=1e-3,
            lr_d=1e-3,
            betas=(0.5, 0.9),
            n_critic=5,
        ),
        Recipe(
            "dcgan",
            "002/003",
            "04",
            _dcgan_g(),
            lambda: models.DCGANDiscriminator(hidden=32),
            steps=1000,
            batch_size=64,
            lr_g=5e-4,
            lr_d=5e-4,
        ),
        Recipe(
            "wgan-gp",
            "002/003",
            "05",
            _dcgan_g(),
            lambda: models.DCGANDiscriminator(hidden=32, norm=False),
            steps=250,
            loss=losses.WassersteinGP,
            batch_size=64,
            lr_g=6e-4,
            lr_d=6e-4,
            betas=(0.5, 0.9),
            n_critic=5,
        ),
        Recipe(
            "cgan",
            "003",
            "07",
            lambda: models.ConditionalGenerator(hidden=32),
            lambda: models.ConditionalDiscriminator(hidden=32),
            steps=1500,
            batch_size=64,
        ),
        Recipe(
            "infogan",
            "-",
            "08",
            _dcgan_g(models.InfoGenerator),
            lambda: models.InfoDiscriminator(hidden=32),
            steps=2000,
            loss=lambda: losses.InfoGAN(weight=5.0),
            batch_size=64,
            lr_g=5e-4,
            lr_d=5e-4,
        ),
    ]
}


def get(name: str) -> Recipe:
    if name not in RECIPES:
        raise GanError(f"Unknown model {name!r}; choose one of: {', '.join(RECIPES)}.")
    return RECIPES[name]


# --- the training tricks that chapter 09 and benchmarks/tricks.py measure on the DCGAN ---


@dataclass(frozen=True)
class Trick:
    """One change to the dcgan recipe. `settings(steps)` gives the Trainer settings it
    overrides for a run of that many steps; `change_d` changes the recipe's D."""

    name: str
    what: str
    settings: Callable[[int], dict] = lambda steps: {}
    change_d: Optional[Callable[[nn.Module], nn.Module]] = None


def with_spectral_norm(D: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al., 2018) on every conv and linear layer, in
    place: W is used as W / sigma(W), sigma its largest singular value, estimated by one
    power iteration per training pass. Only without BatchNorm does this bound D's slope:
    BatchNorm divides the rescaling straight back out."""
    for module in list(D.modules()):  # a list: the parametrisation adds modules
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(module)
    return D


def with_dropout(D: nn.Module, p: float = 0.3) -> nn.Module:
    """Dropout(p) after every LeakyReLU of D, in place; the weights keep their names."""
    for parent in list(D.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.LeakyReLU):
                setattr(parent, name, nn.Sequential(child, nn.Dropout(p)))
    return D


def _sn_discriminator(D):
    """The SN-GAN setting: the DCGAN discriminator without BatchNorm, which would divide
    spectral norm's rescaling straight back out, and with spectral norm on every layer."""
    return with_spectral_norm(models.DCGANDiscriminator(hidden=32, norm=False))


TRICKS = {
    t.name: t
    for t in [
        Trick("plain", "the dcgan recipe as it is"),
        Trick(
            "label smoothing",
            "one-sided: real target 0.9, fake target 0",
            lambda steps: {"loss": losses.BCE(smoothing=0.1)},
        ),
        Trick(
            "instance noise",
            "N(0, 0.1^2) on D's inputs, annealed to 0 over the run",
            lambda steps: {"noise": InstanceNoise(0.1, steps)},
        ),
        Trick(
            "TTUR",
            "D's learning rate 4 times G's",
            lambda steps: {"lr_d": 4 * RECIPES["dcgan"].lr_g},
        ),
        Trick(
            "dropout in D",
            "p = 0.3 after every LeakyReLU of D",
            change_d=lambda D: with_dropout(D, 0.3),
        ),
        Trick(
            "spectral norm",
            "D without BatchNorm, spectral norm on every layer",
            change_d=_sn_discriminator,
        ),
        Trick(
            "hinge + SN",
            "the hinge loss, with the spectral-norm D",
            lambda steps: {"loss": losses.Hinge()},
            change_d=_sn_discriminator,
        ),
        Trick(
            "EMA", "samples from an EMA of G's weights, decay 0.999", lambda steps: {"ema": 0.999}
        ),
        Trick(
            "R1",
            "gamma/2 * R1 on the real images, gamma 1",
            lambda steps: {"loss": losses.BCE(r1=1.0)},
        ),
    ]
}
