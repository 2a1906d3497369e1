"""Each model of the series by name: one plain function per chapter's final, fixed model,
returning the Trainer's keyword arguments, models included.

    trainer = Trainer(images=images, **recipes.dcgan(seed=0))
    changed = Trainer(images=images, **{**recipes.dcgan(), "lr_d": 2e-4})

A recipe seeds the models' initial weights with its `seed`, so a name means the same run in
the chapters, on the command line and in the benchmarks. A post's broken variant is built
only in its chapter, which shows why each setting departs from the post.
"""

import torch

from . import losses, models
from .env import GanError


def mlp(seed=0) -> dict:
    """Chapter 01, post 001's MLP pair; Adam 1e-3 with beta1 0.5 instead of the post's 3e-4
    with 0.9, which is too slow for this budget."""
    torch.manual_seed(seed)
    G, D = models.MLPGenerator(), models.MLPDiscriminator()
    return dict(
        G=G, D=D, loss=losses.BCE(), batch_size=128, lr_g=1e-3, lr_d=1e-3, seed=seed, name="mlp"
    )


def mlp_bn(seed=0) -> dict:
    """Chapter 02, post 000's BatchNorm pair without the BatchNorm after D's input layer."""
    torch.manual_seed(seed)
    G, D = models.BNMLPGenerator(), models.BNMLPDiscriminator()
    return dict(
        G=G, D=D, loss=losses.BCE(), batch_size=128, lr_g=3e-4, lr_d=3e-4, seed=seed, name="mlp-bn"
    )


def mlp_deep(seed=0) -> dict:
    """Post 003's deeper MLP pair as a WGAN-GP: the BCE game collapses it (chapter 05)."""
    torch.manual_seed(seed)
    G, D = models.DeepMLPGenerator(), models.DeepMLPDiscriminator()
    return dict(
        G=G,
        D=D,
        loss=losses.WassersteinGP(),
        batch_size=64,
        lr_g=2e-4,
        lr_d=2e-4,
        betas=(0.5, 0.9),
        n_critic=5,
        seed=seed,
        name="mlp-deep",
    )


def lenet_deconv(seed=0) -> dict:
    """Post 004's pair at 32x32 (chapter 03) with chapter 05's game: the deconvolution
    generator against LeNet-5 without the BatchNorm the post added, as a WGAN-GP critic.
    Chapter 03 trains the post's pair with BCE and instance noise, which covers only some
    digits; chapter 05 shows this critic drawing them all."""
    torch.manual_seed(seed)
    G, D = models.DeconvGenerator(), models.LeNetDiscriminator(norm=False)
    return dict(
        G=G,
        D=D,
        loss=losses.WassersteinGP(),
        batch_size=32,
        lr_g=1e-3,
        lr_d=1e-3,
        betas=(0.5, 0.9),
        n_critic=5,
        seed=seed,
        name="lenet-deconv",
    )


def dcgan(seed=0) -> dict:
    """Chapter 04, posts 002 and 003's DCGAN at 32x32, width 32 for a CPU's budget."""
    torch.manual_seed(seed)
    G, D = models.DCGANGenerator(hidden=32), models.DCGANDiscriminator(hidden=32)
    return dict(
        G=G, D=D, loss=losses.BCE(), batch_size=64, lr_g=5e-4, lr_d=5e-4, seed=seed, name="dcgan"
    )


def wgan_gp(seed=0) -> dict:
    """Chapter 05, the DCGAN pair as WGAN-GP done right: a critic without BatchNorm, five
    critic steps per generator step, Adam (0.5, 0.9)."""
    torch.manual_seed(seed)
    G, D = models.DCGANGenerator(hidden=32), models.DCGANDiscriminator(hidden=32, norm=False)
    return dict(
        G=G,
        D=D,
        loss=losses.WassersteinGP(),
        batch_size=64,
        lr_g=6e-4,
        lr_d=6e-4,
        betas=(0.5, 0.9),
        n_critic=5,
        seed=seed,
        name="wgan-gp",
    )


def cgan(seed=0) -> dict:
    """Chapter 07, the DCGAN recipe told the digit: a one-hot label into G, a projection D;
    every other setting is the dcgan recipe's, so that the label is the one change."""
    torch.manual_seed(seed)
    G, D = models.ConditionalGenerator(hidden=32), models.ConditionalDiscriminator(hidden=32)
    return dict(
        G=G, D=D, loss=losses.BCE(), batch_size=64, lr_g=5e-4, lr_d=5e-4, seed=seed, name="cgan"
    )


def infogan(seed=0, code_scale=None) -> dict:
    """Chapter 08, InfoGAN on the paper's MNIST pair at a quarter of its widths, 28x28: the
    information term weighted 1 (a tenth for the continuous codes), G faster than D, as in
    the paper, and the categorical code fed as loud as the noise (`code_scale`, see
    models.InfoGenerator; benchmarks/infogan.py measures it against 1)."""
    torch.manual_seed(seed)
    G, D = models.InfoGenerator(code_scale=code_scale), models.InfoDiscriminator()
    return dict(
        G=G, D=D, loss=losses.InfoGAN(weight=1.0), batch_size=64, lr_g=2e-3, lr_d=4e-4,
        seed=seed, name="infogan",
    )  # fmt: skip


def dcgan64(seed=0, size=64, channels=3, hidden=64) -> dict:
    """Chapter 10, the PyTorch DCGAN tutorial's pair for colour images (ngf = ndf = 64,
    z = 100, Adam 2e-4 with betas (0.5, 0.999), batch 128), with the course's fixes: D
    returns a logit, and samples are drawn in evaluation mode. `size` 32 or 64 (a CPU's
    chapter uses 32, and half the width), `channels` 3, or 1 for greyscale pictures."""
    torch.manual_seed(seed)
    G = models.DCGANGenerator(z_dim=100, hidden=hidden, channels=channels, size=size)
    D = models.DCGANDiscriminator(hidden=hidden, channels=channels, size=size)
    return dict(
        G=G, D=D, loss=losses.BCE(), batch_size=128, lr_g=2e-4, lr_d=2e-4, seed=seed, name="dcgan64"
    )


RECIPES = {
    "mlp": mlp,
    "mlp-bn": mlp_bn,
    "mlp-deep": mlp_deep,
    "lenet-deconv": lenet_deconv,
    "dcgan": dcgan,
    "wgan-gp": wgan_gp,
    "cgan": cgan,
    "infogan": infogan,
    "dcgan64": dcgan64,
}
# each name's full budget (its chapter's, and the command line's default --steps), and the
# side its images have: the 32x32 models read digits padded with background
STEPS = {
    "mlp": 3000,
    "mlp-bn": 3000,
    "mlp-deep": 1500,
    "lenet-deconv": 500,
    "dcgan": 1000,
    "wgan-gp": 225,
    "cgan": 1000,
    "infogan": 3000,
    "dcgan64": 8000,  # the tutorial's 5 epochs of CelebA at batch 128, about 7,900 steps
}
SIZE = {name: 32 for name in RECIPES} | {"mlp": 28, "mlp-bn": 28, "mlp-deep": 28, "infogan": 28}
SIZE["dcgan64"] = 64
SIZED = ("dcgan64",)  # the recipes that take `size` and `channels`: any data, any size


def get(name: str):
    """The recipe function of a command-line name, such as "mlp-bn"."""
    if name not in RECIPES:
        raise GanError(f"Unknown model {name!r}; choose one of: {', '.join(RECIPES)}.")
    return RECIPES[name]
