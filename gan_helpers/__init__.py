"""gan_helpers: the thin shared module of the GAN series.

    data        MNIST / Fashion-MNIST as one normalised tensor on the device
    models      every generator and discriminator of the series
    losses      BCE (minimax and non-saturating), Wasserstein + gradient penalty
    recipes     each model by name, with its own settings
    train       the one training loop, history, snapshots, checkpoints
    checkpoint  atomic saves, safe loads
    viz         sample grids, curves, show_source
    budget      full-mode and smoke-mode budgets
"""
from .budget import budget, smoke_mode
from .errors import GanError
from .train import Trainer, generate
from .viz import show_source

__all__ = ["GanError", "Trainer", "budget", "generate", "show_source", "smoke_mode"]
