"""One training step of the series: the step chapter 01 writes by hand, written once.

Models and games plug in; nothing else happens here. The Trainer in train.py calls it in its
loop, with the run's bookkeeping around it.
"""

import torch

from .losses import instance_noise


def train_step(G, D, opt_g, opt_d, batches, loss, n_critic=1, sigma=0.0):
    """n_critic D steps, then one G step on the last D step's fakes.

    `batches.next()` gives real images and their labels (None unless the pair is
    conditional); `sigma` is the instance noise on D's inputs at this step. Returns the
    numbers of the step as tensors: reading them here would make the device wait.
    """
    for i in range(n_critic):
        real, y = batches.next()
        z = torch.randn(len(real), G.z_dim, device=real.device)
        with torch.set_grad_enabled(i == n_critic - 1):  # only the last fakes reach the G step
            fake = G(z) if y is None else G(z, y)
        # D step: real against fake; detach() keeps D's loss from reaching into G
        d_loss, stats = loss.d_loss(
            D, instance_noise(real, sigma), instance_noise(fake.detach(), sigma), z, y
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
    # G step: the same fakes, judged by the updated D, whose weights need no gradient here
    D.requires_grad_(False)
    g_loss = loss.g_loss(D, instance_noise(fake, sigma), z, y)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    D.requires_grad_(True)
    stats = {"loss_d": d_loss, "loss_g": g_loss, **stats}
    return {k: v.detach() for k, v in stats.items()}
