"""The source posts' own training loops, rebuilt for the benchmarks.

Each loop runs the post's loop body forever (epoch after epoch) on the models it is
given and yields the number of real images of each step; `throughput.py` times them
against gan_helpers' loop, `time_to_quality.py` measures how soon they draw digits.
Variable names follow the posts.

The loops change only what they need to run here, each change named where it is made:
`.cuda()` becomes the chosen device, `Variable` is dropped, the labels match D's (B,)
output, post 004 drops its last short batch, and post 002 gets a 2-pixel pad and a plain
BCE D step.
"""

from typing import Iterator

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from gan_helpers import data


class PostMNIST(Dataset):
    """torchvision's MNIST as the posts read it: each image a PIL image made from its bytes
    and put through the transforms on every access (torchvision's `MNIST.__getitem__`)."""

    def __init__(self, transform):
        self.images, self.labels, _ = data.read("mnist")
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = Image.fromarray(self.images[i].numpy(), mode="L")
        return self.transform(image), int(self.labels[i])


def post_loader(batch_size, *per_image, drop_last=False) -> Iterator:
    """The posts' data path: MNIST, per-image transforms, a shuffling DataLoader in the main
    process (none of the posts sets num_workers), one pass per epoch."""
    dataset = PostMNIST(transforms.Compose(per_image))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=drop_last)
    while True:
        yield from loader


def with_sigmoid(D: nn.Module) -> nn.Module:
    """The posts end D with a Sigmoid and train it with BCELoss; gan_helpers' D returns
    logits of shape (B,), so this gives probabilities of shape (B,)."""
    return nn.Sequential(D, nn.Sigmoid())


def loop_001(G, D, device, batch_size):
    """Post 001: Normalize(0.5, 0.5); Adam 3e-4. The D step detaches a fake batch; the
    G step draws fresh noise and runs G again."""
    return _mlp_loop(G, D, device, batch_size, mean=0.5, detach=True)


def loop_000(G, D, device, batch_size):
    """Post 000: as post 001, but Normalize(0.1, 0.5) and no detach in the D step, so
    d_loss.backward() also runs back through G."""
    return _mlp_loop(G, D, device, batch_size, mean=0.1, detach=False)


def _mlp_loop(G, D, device, batch_size, mean, detach):
    """The loop body posts 000 and 001 share, line for line but for the two arguments."""
    dataloader = post_loader(
        batch_size, transforms.ToTensor(), transforms.Normalize((mean,), (0.5,))
    )
    D, criterion = with_sigmoid(D), nn.BCELoss()
    d_optimizer = torch.optim.Adam(D.parameters(), lr=0.0003)
    g_optimizer = torch.optim.Adam(G.parameters(), lr=0.0003)
    for img, _ in dataloader:
        num_img = img.size(0)
        real_img = img.view(num_img, -1).to(device)  # the post: Variable(img).cuda()
        real_label = torch.ones(num_img).to(device)
        fake_label = torch.zeros(num_img).to(device)
        real_out = D(real_img)
        d_loss_real = criterion(real_out, real_label)
        z = torch.randn(num_img, G.z_dim).to(device)
        fake_img = G(z).detach() if detach else G(z)
        fake_out = D(fake_img)
        d_loss_fake = criterion(fake_out, fake_label)
        d_loss = d_loss_real + d_loss_fake
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()

        z = torch.randn(num_img, G.z_dim).to(device)
        fake_img = G(z)
        output = D(fake_img)
        g_loss = criterion(output, real_label)
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()
        yield num_img


def loop_003(G, D, device, batch_size):
    """Post 003 (the MLP pair): Normalize(0.5, 0.5); Adam 2e-4. One backward per D loss
    term; the G step reuses the D step's fake batch, like gan_helpers. The post's labels
    are (B,) against a (B, 1) output, which BCELoss rejects; here D's output is (B,)."""
    trainloader = post_loader(
        batch_size, transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))
    )
    netD, netG, criterion = with_sigmoid(D), G, nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002)
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002)
    for real_images, _ in trainloader:
        netD.zero_grad()
        real_images = real_images.to(device)
        batch_size = real_images.size(0)
        labels = torch.full((batch_size,), 1.0, device=device)
        output = netD(real_images)
        lossD_real = criterion(output, labels)
        lossD_real.backward()
        noise = torch.randn(batch_size, netG.z_dim, device=device)
        fake_images = netG(noise)
        labels.fill_(0.0)
        output = netD(fake_images.detach())
        lossD_fake = criterion(output, labels)
        lossD_fake.backward()
        optimizerD.step()

        netG.zero_grad()
        labels.fill_(1.0)
        output = netD(fake_images)
        lossG = criterion(output, labels)
        lossG.backward()
        optimizerG.step()
        yield batch_size


def loop_004(G, D, device, batch_size):
    """Post 004: Resize((32, 32)) + ToTensor (pixels left in [0, 1]); Adam 2e-4, betas
    (0.5, 0.999). Noise from kaiming_normal_ on an uninitialised tensor; the fake batch
    is not detached; retain_graph on two backward passes; the G step runs G again.

    The label tensors have the fixed size Batch, so the post crashes on the last, short
    batch of an epoch: drop_last=True is the smallest fix. The post's deprecated
    `kaiming_normal` is `kaiming_normal_`, the same draw without the warning.
    """
    Batch = batch_size
    DataLoader_ = post_loader(
        Batch, transforms.Resize((32, 32)), transforms.ToTensor(), drop_last=True
    )
    Generater, Discriminater = G, with_sigmoid(D)
    Loss_Function = nn.BCELoss().to(device)
    real_label = torch.ones(Batch).to(device)  # the post: (Batch, 1), for a (B, 1) output
    fake_label = torch.zeros(Batch).to(device)
    G_optimizer = torch.optim.Adam(Generater.parameters(), lr=0.0002, betas=(0.5, 0.999))
    D_optimizer = torch.optim.Adam(Discriminater.parameters(), lr=0.0002, betas=(0.5, 0.999))
    for img, _img_label in DataLoader_:
        D_optimizer.zero_grad()
        img = img.to(device)
        RD_logit = Discriminater(img)
        RD_Loss = Loss_Function(RD_logit, real_label)
        RD_Loss.backward(retain_graph=True)
        G_input = torch.nn.init.kaiming_normal_(torch.Tensor(Batch, 1, 6, 6)).to(device)
        G_output = Generater(G_input)
        FD_logit = Discriminater(G_output)
        FD_Loss = Loss_Function(FD_logit, fake_label)
        FD_Loss.backward()
        D_optimizer.step()

        Generater.zero_grad()
        G_input = torch.nn.init.kaiming_normal_(torch.Tensor(Batch, 1, 6, 6)).to(device)
        G_output = Generater(G_input)
        G_logit = Discriminater(G_output)
        G_Loss = Loss_Function(G_logit, real_label)
        G_Loss.backward(retain_graph=True)
        G_optimizer.step()
        yield Batch


def loop_002(G, D, device, batch_size):
    """Post 002 (DCGAN): Normalize(0.5, 0.5); Adam 2e-4, betas (0.5, 0.999). The D step
    detaches a fake batch from fresh noise; the G step draws fresh noise and runs G again.

    Two fixes so that it runs at all: `Pad(2)` takes the 28x28 digits to the network's
    32x32 (the post fed 28x28, which fails on shapes), and the D loss is BCE on real and
    fake: the post's WGAN-GP D step calls `lambda_gp`, `use_gpu` and `autograd`, which it
    never defines. Its gradient penalty would add a double backward, so the post's loop
    with it would be slower than this one: the ratio below is on the low side.
    """
    dataloader = post_loader(
        batch_size, transforms.Pad(2), transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))
    )
    gen, disc, z_dim = G, with_sigmoid(D), G.z_dim
    criterion = nn.BCELoss().to(device)
    optimizer_gen = torch.optim.Adam(gen.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizer_disc = torch.optim.Adam(disc.parameters(), lr=0.0002, betas=(0.5, 0.999))
    for data_ in dataloader:
        inputs, _ = data_[0].to(device), data_[1].to(device)
        real_inputs = inputs
        # the post's noise stays on the CPU; .to(device) is the fix
        fake_images = gen(torch.randn(real_inputs.shape[0], z_dim, 1, 1).to(device)).detach()
        real_validity = disc(real_inputs)
        fake_validity = disc(fake_images)
        disc_loss = criterion(real_validity, torch.ones_like(real_validity)) + criterion(
            fake_validity, torch.zeros_like(fake_validity)
        )
        optimizer_disc.zero_grad()
        disc_loss.backward()
        optimizer_disc.step()

        gen_input = torch.randn(inputs.shape[0], z_dim, 1, 1).to(device)
        fake_images = gen(gen_input)
        fake_validity = disc(fake_images)
        g_loss = criterion(fake_validity, torch.ones_like(fake_validity))
        optimizer_gen.zero_grad()
        g_loss.backward()
        optimizer_gen.step()
        yield inputs.shape[0]
