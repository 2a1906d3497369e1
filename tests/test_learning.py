"""The loop really learns: a toy GAN finds the modes, and the MLP GAN learns digits."""

import time

import torch

from gan_helpers import data, metrics, recipes, toy
from gan_helpers.train import Trainer


def test_toy_gan_covers_the_ring(one_thread):
    """The foundation issue asks for >= 6 of 8 modes within 30 s of CPU. The budget is a
    step count (about 10 s here when the machine is quiet), so the test never races a clock."""
    ring = toy.ring_of_gaussians(4096, seed=0)
    t = Trainer(
        toy.ToyGenerator(),
        toy.ToyDiscriminator(),
        ring,
        batch_size=256,
        lr_g=1e-3,
        lr_d=1e-3,
        seed=0,
    )
    untrained = toy.modes_covered(t.sample(2000))
    start = time.perf_counter()
    t.train(3000)
    covered = toy.modes_covered(t.sample(2000))
    print(f"modes covered: {untrained} -> {covered} in {time.perf_counter() - start:.1f} s")
    assert untrained <= 2
    assert covered >= 6


def test_mlp_gan_learns_digits(one_thread):
    images = data.load("mnist")
    t = Trainer(images=images, **recipes.mlp(seed=0))
    before, untrained = t.sample(z=t.fixed_z), metrics.evaluate(t)
    t.train(1500)  # at 1000, recall was 0.0055 on one CPU and 0.0 on another
    after, trained = t.sample(z=t.fixed_z), metrics.evaluate(t)
    assert trained["cfid"] < 0.5 * untrained["cfid"]
    assert trained["classes"] >= 5 and trained["recall"] > untrained["recall"]
    assert (after - before).abs().mean() > 0.2
    # the loop kept a full history, and D separates real from fake at least a little
    h = t.history
    assert h["step"] == list(range(1, 1501)) and t.images_seen == 1500 * 128 and t.seconds > 0
    assert sum(h["d_real"][-50:]) > sum(h["d_fake"][-50:])


def test_same_seed_same_samples():
    images = data.load("mnist")
    runs = []
    for _ in range(2):
        t = Trainer(images=images, **recipes.mlp(seed=3))
        t.train(5)
        runs.append(t.sample(z=t.fixed_z))
    assert torch.equal(*runs)
