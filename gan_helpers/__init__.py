"""gan_helpers: the thin shared package of the GAN course.

The core, the machine a reader of the chapters opens:
data        MNIST / Fashion-MNIST as one tensor on the device, and its batches
models      every generator and discriminator of the series
losses      the games: BCE, hinge, Wasserstein + gradient penalty, R1, InfoGAN; instance noise
step        one training step: n_critic D steps, then the G step
train       the Trainer: the loop itself, the run's state, resuming, the EMA copy
checkpoint  atomic saves and safe loads, each failure one sentence; a trained generator

Around it, what two or more chapters use:
recipes     each command-line model as a plain function returning the Trainer's arguments
viz         sample grids, curves, GIFs, show_source
metrics     the judge: cFID, KID, precision and recall, coverage, memorisation
checks      the final checks most chapters end with
explore     latent walks, style measures, InfoGAN code purity, the slider explorer
toy         chapters 00 and 05's toy world: the ring, the toy pair, the playground
env         smoke mode and budgets, the device, the data and run folders, GanError

And the command line, which nothing else imports:
speed       its opt-in speed options (bf16, compile, channels_last, cudnn_benchmark)
__main__    python -m gan_helpers train | sample
"""

from .env import GanError, budget, run_dir, smoke_mode
from .models import generate
from .step import train_step
from .train import Trainer
from .viz import show_source

__all__ = [
    "GanError",
    "Trainer",
    "budget",
    "generate",
    "run_dir",
    "show_source",
    "smoke_mode",
    "train_step",
]
