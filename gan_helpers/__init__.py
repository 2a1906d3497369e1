"""gan_helpers: the thin shared package of the GAN course.

The core, what a reader of the chapters opens:
data        MNIST / Fashion-MNIST as one tensor on the device, and its batches
models      every generator and discriminator of the series
losses      the games: BCE, hinge, Wasserstein + gradient penalty, R1, InfoGAN; instance noise
step        one training step: n_critic D steps, then the G step
train       the Trainer around it: models, optimisers, data order, history, snapshots,
            checkpoints, the EMA copy
checkpoint  what a checkpoint holds, and a trained generator from a file
viz         sample grids, curves, GIFs, show_source
metrics     the judge: cFID, KID, precision and recall, coverage, memorisation
explore     latent walks, style measures, InfoGAN code purity, the slider explorer

What runs the core, which a reader of the step never needs to open:
runtime     the loop, Ctrl-C and SIGTERM, the divergence guard, progress, speed options
files       the data files, atomic saves and safe loads, each failure one sentence
env         smoke mode and budgets, the device, the data and run folders, GanError

And the rest:
toy         chapter 00's toy world: the ring, the toy pair, modes covered, the playground
checks      each chapter's final checks
recipes     each model by name, with its settings; chapter 09's tricks
__main__    the command line: python -m gan_helpers train | sample
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
