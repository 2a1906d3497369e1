"""gan_helpers: the thin shared package of the GAN course.

data        MNIST / Fashion-MNIST as one tensor on the device, batches, the toy ring
models      every generator and discriminator of the series
losses      the games: BCE, hinge, Wasserstein + gradient penalty, R1, InfoGAN; instance noise
step        one training step: n_critic D steps, then the G step
train       the Trainer around it: optimisers, data order, history, snapshots,
            checkpoints, EMA, Ctrl-C and SIGTERM, the divergence guard, speed options
checkpoint  atomic saves, safe loads, a trained generator from a file
viz         sample grids, curves, animations, show_source
metrics     the judge: cFID, KID, precision and recall, coverage, memorisation
checks      each chapter's final checks
explore     latent paths, style measures, the slider explorer, the steerable toy
recipes     each model by name, with its settings
env         smoke mode and budgets, the device, the data and run folders, GanError
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
