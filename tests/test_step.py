"""The one step: it is the step chapter 01 writes by hand, bit for bit, and its G step
spends nothing on D's weights."""

import torch
import torch.nn.functional as F

from gan_helpers import data, losses, models, recipes, toy
from gan_helpers.step import train_step
from gan_helpers.train import Trainer


def by_hand(G, D, opt_g, opt_d, real):
    """Chapter 01's step, written as the PyTorch DCGAN tutorial writes it."""
    z = torch.randn(len(real), G.z_dim)
    fake = G(z)
    ones, zeros = torch.ones(len(real)), torch.zeros(len(real))
    d_loss = F.binary_cross_entropy_with_logits(D(real), ones) + F.binary_cross_entropy_with_logits(
        D(fake.detach()), zeros
    )
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    D.requires_grad_(False)
    g_loss = F.binary_cross_entropy_with_logits(D(fake), ones)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    D.requires_grad_(True)


def _weights(t):
    return [
        *t.G.state_dict().values(),
        *t.D.state_dict().values(),
        *(s["exp_avg"] for opt in (t.opt_g, t.opt_d) for s in opt.state_dict()["state"].values()),
    ]


def test_the_package_step_is_the_hand_written_step_bit_for_bit(one_thread):
    for name, size in (("mlp", 28), ("dcgan", 32)):  # linear layers, and convs with BatchNorm
        images = data.load(size=size)
        package = Trainer(images=images, **recipes.get(name)(seed=0))
        package.train(5)
        hand = Trainer(images=images, **recipes.get(name)(seed=0))  # the same start
        for _ in range(5):
            real, _ = hand.batches.next()
            by_hand(hand.G, hand.D, hand.opt_g, hand.opt_d, real)
        assert all(torch.equal(a, b) for a, b in zip(_weights(package), _weights(hand))), name


def test_a_changed_hand_step_is_caught(one_thread):
    """The comparison can fail: the saturating G loss in the hand step gives other bits."""
    images = data.load()
    package = Trainer(images=images, **{**recipes.mlp(), "loss": losses.BCE(saturating=True)})
    package.train(2)
    hand = Trainer(images=images, **recipes.mlp())
    for _ in range(2):
        by_hand(hand.G, hand.D, hand.opt_g, hand.opt_d, hand.batches.next()[0])
    assert not all(torch.equal(a, b) for a, b in zip(_weights(package), _weights(hand)))


def test_the_g_step_computes_no_gradient_for_d(one_thread):
    torch.manual_seed(0)
    G, D = models.MLPGenerator(), models.MLPDiscriminator()
    opt_g, opt_d = (torch.optim.Adam(m.parameters()) for m in (G, D))
    images = data.Images(torch.rand(64, 1, 28, 28) * 2 - 1, torch.zeros(64).long(), "noise")
    batches = data.Batches(images, 32, torch.Generator().manual_seed(0), labels=False)
    grads = []
    opt_d.step = lambda: grads.append([p.grad.clone() for p in D.parameters()])  # D step's
    train_step(G, D, opt_g, opt_d, batches, losses.BCE())
    assert [torch.equal(a, p.grad) for a, p in zip(grads[0], D.parameters())] == [True] * 6
    assert all(p.requires_grad for p in D.parameters())
    assert all(p.grad is not None for p in G.parameters())


def test_n_critic_steps_d_that_many_times_per_g_step(one_thread):
    torch.manual_seed(0)
    G, D = toy.ToyGenerator(), toy.ToyDiscriminator()
    opt_g, opt_d = (torch.optim.Adam(m.parameters()) for m in (G, D))
    counts = {"d": 0, "g": 0}
    opt_d.register_step_post_hook(lambda *a: counts.__setitem__("d", counts["d"] + 1))
    opt_g.register_step_post_hook(lambda *a: counts.__setitem__("g", counts["g"] + 1))
    batches = data.Batches(toy.ring_of_gaussians(128), 16, torch.Generator(), labels=False)
    train_step(G, D, opt_g, opt_d, batches, losses.WassersteinGP(), n_critic=5)
    assert counts == {"d": 5, "g": 1} and batches.pos == 5 * 16


def test_only_the_last_critic_step_builds_a_generator_graph(one_thread):
    """With several critic steps, the fakes of all but the last never reach the G step."""
    torch.manual_seed(0)
    G, D = toy.ToyGenerator(), toy.ToyDiscriminator()
    opt_g, opt_d = (torch.optim.Adam(m.parameters()) for m in (G, D))
    graphs = []
    G.register_forward_hook(lambda m, i, out: graphs.append(out.requires_grad))
    batches = data.Batches(toy.ring_of_gaussians(128), 16, torch.Generator(), labels=False)
    train_step(G, D, opt_g, opt_d, batches, losses.WassersteinGP(), n_critic=4)
    assert graphs == [False, False, False, True]
