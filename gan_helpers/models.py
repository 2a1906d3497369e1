"""Every generator and discriminator of the series.

Conventions, the same for every pair:
- A generator takes a flat noise batch `z` of shape (B, z_dim) and returns images in
  [-1, 1] of shape (B, 1, S, S), S = `image_size` (28, or 32 for the models built for it).
- A discriminator takes (B, 1, S, S) and returns *logits* of shape (B,). The loss applies
  the sigmoid (`binary_cross_entropy_with_logits`), which is numerically stable; the posts
  end D with `Sigmoid` and use `BCELoss`, which saturates and can return log(0).
- Conditional models take the labels `y` (B,) as a second argument.
"""
import torch
from torch import nn

N_CLASSES = 10


def crop_to_28(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 32, 32) -> (B, 1, 28, 28): undo the 2-pixel padding of the 32x32 models."""
    if x.dim() != 4 or x.shape[-1] == 28:
        return x
    m = (x.shape[-1] - 28) // 2
    return x[..., m:m + 28, m:m + 28]


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# --- The theory chapter's toy pair, for 2-D points -----------------------------------------

class ToyGenerator(nn.Module):
    """z (B, z_dim) -> a point (B, 2). Small enough to train in seconds on a CPU."""
    image_size = None

    def __init__(self, z_dim=2, hidden=128):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.ReLU(),        # (B, 128)
            nn.Linear(hidden, hidden), nn.ReLU(),       # (B, 128)
            nn.Linear(hidden, 2),                       # (B, 2)
        )

    def forward(self, z):
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """A point (B, 2) -> a logit (B,)."""
    image_size = None

    def __init__(self, hidden=128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden), nn.LeakyReLU(0.2),     # (B, 128)
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),  # (B, 128)
            nn.Linear(hidden, 1),                          # (B, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(1)                      # (B,)


# --- Post 001: the plain MLP pair ---------------------------------------------------------

class MLPGenerator(nn.Module):
    """Post 001: z=100 -> 256 -> 256 -> 784, ReLU, Tanh."""
    image_size = 28

    def __init__(self, z_dim=100, hidden=256):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.ReLU(),        # (B, 256)
            nn.Linear(hidden, hidden), nn.ReLU(),       # (B, 256)
            nn.Linear(hidden, 784), nn.Tanh(),          # (B, 784)
        )

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)          # (B, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """Post 001: 784 -> 256 -> 256 -> 1, LeakyReLU(0.2). Fix: logits, no Sigmoid."""
    image_size = 28

    def __init__(self, hidden=256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),                                       # (B, 784)
            nn.Linear(784, hidden), nn.LeakyReLU(0.2),          # (B, 256)
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),       # (B, 256)
            nn.Linear(hidden, 1),                               # (B, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(1)                           # (B,)


# --- Post 000: the MLP pair with BatchNorm -----------------------------------------------

class BNMLPGenerator(nn.Module):
    """Post 000: z=50 -> 128 -> 256 -> 512 -> 1024 -> 784, BatchNorm after every hidden
    layer but the first, LeakyReLU(0.2), Tanh."""
    image_size = 28

    def __init__(self, z_dim=50):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, 128), nn.LeakyReLU(0.2),                            # (B, 128)
            nn.Linear(128, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),         # (B, 256)
            nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),         # (B, 512)
            nn.Linear(512, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),       # (B, 1024)
            nn.Linear(1024, 784), nn.Tanh(),                                     # (B, 784)
        )

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)          # (B, 1, 28, 28)


class BNMLPDiscriminator(nn.Module):
    """Post 000: 784 -> 512 -> BN -> 256 -> BN -> 1, LeakyReLU(0.2). Fix: logits."""
    image_size = 28

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),                                                     # (B, 784)
            nn.Linear(784, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),      # (B, 512)
            nn.Linear(512, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),      # (B, 256)
            nn.Linear(256, 1),                                                # (B, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(1)                   # (B,)


# --- Post 003: the deeper MLP pair -------------------------------------------------------

class DeepMLPGenerator(nn.Module):
    """Post 003: z=100 -> 256 -> 512 -> 1024 -> 784, ReLU, Tanh."""
    image_size = 28

    def __init__(self, z_dim=100):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, 256), nn.ReLU(),           # (B, 256)
            nn.Linear(256, 512), nn.ReLU(),             # (B, 512)
            nn.Linear(512, 1024), nn.ReLU(),            # (B, 1024)
            nn.Linear(1024, 784), nn.Tanh(),            # (B, 784)
        )

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)          # (B, 1, 28, 28)


class DeepMLPDiscriminator(nn.Module):
    """Post 003: 784 -> 1024 -> 512 -> 256 -> 1, LeakyReLU(0.2). Fix: logits."""
    image_size = 28

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),                                  # (B, 784)
            nn.Linear(784, 1024), nn.LeakyReLU(0.2),       # (B, 1024)
            nn.Linear(1024, 512), nn.LeakyReLU(0.2),       # (B, 512)
            nn.Linear(512, 256), nn.LeakyReLU(0.2),        # (B, 256)
            nn.Linear(256, 1),                             # (B, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(1)                      # (B,)


# --- Post 004: LeNet-5 discriminator, stride-1 deconvolution generator, at 32x32 ----------

class LeNetDiscriminator(nn.Module):
    """Post 004: LeNet-5 with BatchNorm and LeakyReLU, one output. Fix: logits.

    MNIST is padded from 28x28 to 32x32 with background (-1) pixels, which is how LeNet-5
    was fed originally; the post resized the digits instead, and left them in [0, 1] while
    its generator drew in [-1, 1], so D could tell real from fake by the background alone.
    """
    image_size = 32

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.LeakyReLU(0.2),     # (B, 6, 28, 28)
            nn.MaxPool2d(2),                                             # (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.LeakyReLU(0.2),  # (B, 16, 10, 10)
            nn.MaxPool2d(2),                                             # (B, 16, 5, 5)
            nn.Flatten(),                                                # (B, 400)
            nn.Linear(400, 120), nn.LeakyReLU(0.2),                      # (B, 120)
            nn.Linear(120, 84), nn.LeakyReLU(0.2),                       # (B, 84)
            nn.Linear(84, 1),                                            # (B, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(1)                                    # (B,)


class DeconvGenerator(nn.Module):
    """Post 004: noise (B, 1, 6, 6) grown by seven stride-1 transposed convolutions.

    Each 5x5 layer adds 4 pixels (6 -> 10 -> ... -> 30), the last 3x3 adds 2 (-> 32).
    Fix: the noise is a plain N(0, 1) draw of 36 numbers reshaped to 6x6; the post drew it
    with `kaiming_normal_` on an uninitialised tensor, a weight initialiser misused as noise.
    """
    image_size = 32

    def __init__(self, z_dim=36):
        super().__init__()
        if z_dim != 36:
            raise ValueError("DeconvGenerator's noise is one 6x6 plane: z_dim must be 36.")
        self.z_dim = z_dim
        chans = [1, 128, 64, 32, 16, 8, 4]
        layers = []
        for c_in, c_out in zip(chans, chans[1:]):  # (B, 128, 10, 10) ... (B, 4, 30, 30)
            layers += [nn.ConvTranspose2d(c_in, c_out, 5), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(4, 1, 3), nn.Tanh()]                # (B, 1, 32, 32)
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z.view(-1, 1, 6, 6))


# --- Posts 002 / 003: DCGAN at 32x32 ------------------------------------------------------

class DCGANGenerator(nn.Module):
    """Post 002: ConvT z -> 4h (4x4) -> 2h (8x8) -> h (16x16) -> 1 (32x32), BN + ReLU, Tanh.

    Fix: the post fed 28x28 MNIST to this 32x32 network, which fails on shapes. The series
    pads MNIST to 32x32 instead of changing the network: the padding is background, so no
    pixel of a digit changes, the post's power-of-two layers stay exactly as written, and
    samples are cropped back to 28x28 on the way out.
    """
    image_size = 32

    def __init__(self, z_dim=64, hidden=128, n_classes=0):
        super().__init__()
        self.z_dim = z_dim
        h = hidden
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim + n_classes, 4 * h, 4, 1, 0, bias=False),
            nn.BatchNorm2d(4 * h), nn.ReLU(),                                 # (B, 4h, 4, 4)
            nn.ConvTranspose2d(4 * h, 2 * h, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * h), nn.ReLU(),                                 # (B, 2h, 8, 8)
            nn.ConvTranspose2d(2 * h, h, 4, 2, 1, bias=False),
            nn.BatchNorm2d(h), nn.ReLU(),                                     # (B, h, 16, 16)
            nn.ConvTranspose2d(h, 1, 4, 2, 1, bias=False), nn.Tanh(),         # (B, 1, 32, 32)
        )
        self.apply(dcgan_init)

    def forward(self, z):
        return self.net(z.view(len(z), -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Post 002: conv stride 2, BN, LeakyReLU(0.2), then a 4x4 conv to one score.

    Fix: logits (no Sigmoid). With `norm=False` it is the WGAN-GP critic: no BatchNorm,
    because the gradient penalty is taken per sample and BatchNorm couples the samples
    of a batch; the post kept both BatchNorm and the Sigmoid in its critic.
    """
    image_size = 32

    def __init__(self, hidden=128, norm=True):
        super().__init__()
        h = hidden

        def block(c_in, c_out):
            bn = [nn.BatchNorm2d(c_out)] if norm else []
            return [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm), *bn, nn.LeakyReLU(0.2)]

        self.features = nn.Sequential(
            nn.Conv2d(1, h, 4, 2, 1), nn.LeakyReLU(0.2),    # (B, h, 16, 16)
            *block(h, 2 * h),                               # (B, 2h, 8, 8)
            *block(2 * h, 4 * h),                           # (B, 4h, 4, 4)
        )
        self.head = nn.Conv2d(4 * h, 1, 4, 1, 0)            # (B, 1, 1, 1)
        self.apply(dcgan_init)

    def forward(self, x):
        return self.head(self.features(x)).flatten()        # (B,)


def wgan_critic(hidden=128) -> DCGANDiscriminator:
    """The WGAN-GP critic: the DCGAN discriminator without BatchNorm or Sigmoid."""
    return DCGANDiscriminator(hidden=hidden, norm=False)


# --- Post 003's suggestion: a conditional GAN --------------------------------------------

class ConditionalGenerator(DCGANGenerator):
    """A DCGAN generator that also sees the label: z is extended with a one-hot of y."""
    conditional = True

    def __init__(self, z_dim=64, hidden=64):
        super().__init__(z_dim=z_dim, hidden=hidden, n_classes=N_CLASSES)

    def forward(self, z, y):
        onehot = nn.functional.one_hot(y, N_CLASSES).to(z.dtype)       # (B, 10)
        return super().forward(torch.cat([z, onehot], dim=1))          # (B, 1, 32, 32)


class ConditionalDiscriminator(DCGANDiscriminator):
    """A projection discriminator (Miyato & Koyama, 2018): the score of the image features
    plus their dot product with a learned embedding of the label. It learns "is this a
    real 7?" rather than only "is this real?"."""
    conditional = True

    def __init__(self, hidden=64):
        super().__init__(hidden=hidden, norm=True)
        self.embed = nn.Embedding(N_CLASSES, 4 * hidden * 4 * 4)

    def forward(self, x, y):
        f = self.features(x)                                            # (B, 4h, 4, 4)
        projection = (f.flatten(1) * self.embed(y)).sum(1)              # (B,)
        return self.head(f).flatten() + projection                      # (B,)


def is_conditional(model: nn.Module) -> bool:
    return getattr(model, "conditional", False)


# --- Post 003's tricks for the discriminator (chapter 08 measures them) ------------------

def with_spectral_norm(D: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectral normalisation (Miyato et al., 2018) on every conv and linear layer of D, in
    place; returns D.

    Each weight W is used as W / sigma(W), sigma the largest singular value of W viewed as
    a matrix (out_channels, in_channels * k * k). sigma is estimated by power iteration,
    `n_power_iterations` per forward pass in training mode, so the estimate sharpens as
    training goes. Every layer is then 1-Lipschitz in that matrix view, which bounds how
    sharply D's score can change and so how large G's gradients can get.
    """
    for module in list(D.modules()):     # a list: the parametrisation adds modules
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(module, n_power_iterations=n_power_iterations)
    return D


def with_dropout(D: nn.Module, p: float = 0.3) -> nn.Module:
    """Dropout with probability p after every LeakyReLU (and ReLU) of D, in place; returns D.

    Each activation becomes Sequential(activation, Dropout(p)), so the layers with weights
    keep their names and a D's state_dict still loads. Dropout acts in training mode only.
    """
    for parent in list(D.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.LeakyReLU, nn.ReLU)):
                setattr(parent, name, nn.Sequential(child, nn.Dropout(p)))
    return D
