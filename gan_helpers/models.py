"""Every generator and discriminator of the series, each post's mistakes fixed.

The same conventions for every pair:
- a generator maps noise z (B, z_dim) to images (B, 1, S, S) in [-1, 1], S = 28, or 32 for
  the models that read digits padded to 32x32 (`data.load(size=32)`);
- a discriminator maps (B, 1, S, S) to *logits* (B,): the loss applies the sigmoid
  (chapter 00 shows why not `Sigmoid` + `BCELoss`);
- conditional models (`conditional = True`) also take the labels y (B,).
"""
import torch
from torch import nn

from .env import GanError

N_CLASSES = 10


def crop_to_28(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 32, 32) -> (B, 1, 28, 28): undo the 2-pixel padding of the 32x32 digits."""
    if x.dim() != 4 or x.shape[-2:] != (32, 32):
        return x
    return x[..., 2:30, 2:30]


def digits_in_turn(n: int, device="cpu") -> torch.Tensor:
    """(n,) labels 0, 1, ..., 9, 0, ...: every digit equally often, for a conditional G."""
    return torch.arange(n, device=device) % N_CLASSES


def is_conditional(model: nn.Module) -> bool:
    return getattr(model, "conditional", False)


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: weights N(0, 0.02^2), norm scales N(1, 0.02^2)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def with_spectral_norm(D: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al., 2018) on every conv and linear layer, in
    place: W is used as W / sigma(W), sigma its largest singular value, estimated by one
    power iteration per training pass. Only without BatchNorm does this bound D's slope:
    BatchNorm divides the rescaling of the layers that feed it straight back out."""
    for module in list(D.modules()):  # a list: the parametrisation adds modules
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(module)
    return D


def with_dropout(D: nn.Module, p: float = 0.3) -> nn.Module:
    """Dropout(p) after every LeakyReLU of D, in place; the weights keep their names."""
    for parent in list(D.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.LeakyReLU):
                setattr(parent, name, nn.Sequential(child, nn.Dropout(p)))
    return D


# --- Post 001: the plain MLP pair -----------------------------------------------------

class MLPGenerator(nn.Module):
    """Post 001: z=100 -> 256 -> 256 -> 784, ReLU, Tanh."""

    def __init__(self, z_dim=100, hidden=256):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(),     # (B, 256)
                                 nn.Linear(hidden, hidden), nn.ReLU(),    # (B, 256)
                                 nn.Linear(hidden, 784), nn.Tanh())       # (B, 784)

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)                            # (B, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """Post 001: 784 -> 256 -> 256 -> 1, LeakyReLU(0.2). Fix: a logit, no Sigmoid."""

    def __init__(self, hidden=256):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(),                                   # (B, 784)
                                 nn.Linear(784, hidden), nn.LeakyReLU(0.2),      # (B, 256)
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),   # (B, 256)
                                 nn.Linear(hidden, 1))                           # (B, 1)

    def forward(self, x):
        return self.net(x).squeeze(1)                                            # (B,)


# --- Post 000: the MLP pair with BatchNorm --------------------------------------------

class BNMLPGenerator(nn.Module):
    """Post 000: z=50 -> 128 -> 256 -> 512 -> 1024 -> 784, BatchNorm after every hidden
    layer but the first, LeakyReLU(0.2), Tanh."""

    def __init__(self, z_dim=50):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, 128), nn.LeakyReLU(0.2),                           # (B, 128)
            nn.Linear(128, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),        # (B, 256)
            nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),        # (B, 512)
            nn.Linear(512, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),      # (B, 1024)
            nn.Linear(1024, 784), nn.Tanh())                                    # (B, 784)

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)                                  # (B, 1, 28, 28)


class BNMLPDiscriminator(nn.Module):
    """Post 000: 784 -> 512 -> 256 -> BN -> 1, LeakyReLU(0.2). Fixes: a logit, and no
    BatchNorm after the input layer, where it blinds D to what a batch of fakes shares
    (chapter 02 builds the post's version and shows it)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),                                                     # (B, 784)
            nn.Linear(784, 512), nn.LeakyReLU(0.2),                           # (B, 512)
            nn.Linear(512, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),      # (B, 256)
            nn.Linear(256, 1))                                                # (B, 1)

    def forward(self, x):
        return self.net(x).squeeze(1)                                         # (B,)


# --- Post 003: the deeper MLP pair ----------------------------------------------------

class DeepMLPGenerator(nn.Module):
    """Post 003: z=100 -> 256 -> 512 -> 1024 -> 784, ReLU, Tanh."""

    def __init__(self, z_dim=100):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, 256), nn.ReLU(),       # (B, 256)
                                 nn.Linear(256, 512), nn.ReLU(),         # (B, 512)
                                 nn.Linear(512, 1024), nn.ReLU(),        # (B, 1024)
                                 nn.Linear(1024, 784), nn.Tanh())        # (B, 784)

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)                           # (B, 1, 28, 28)


class DeepMLPDiscriminator(nn.Module):
    """Post 003: 784 -> 1024 -> 512 -> 256 -> 1, LeakyReLU(0.2). Fix: a logit."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(),                                  # (B, 784)
                                 nn.Linear(784, 1024), nn.LeakyReLU(0.2),       # (B, 1024)
                                 nn.Linear(1024, 512), nn.LeakyReLU(0.2),       # (B, 512)
                                 nn.Linear(512, 256), nn.LeakyReLU(0.2),        # (B, 256)
                                 nn.Linear(256, 1))                             # (B, 1)

    def forward(self, x):
        return self.net(x).squeeze(1)                                           # (B,)


# --- Post 004: LeNet-5 discriminator, stride-1 deconvolution generator, at 32x32 ------

class LeNetDiscriminator(nn.Module):
    """Post 004: LeNet-5 with BatchNorm and LeakyReLU, one output. Fix: a logit. Digits are
    padded from 28x28 to 32x32 with background, as LeNet-5 was fed; the post resized them.
    `norm=False` is LeNet-5 without the BatchNorm the post added: a critic for WGAN-GP."""

    def __init__(self, norm=True):
        super().__init__()
        bn = (lambda c: nn.BatchNorm2d(c)) if norm else (lambda c: nn.Identity())
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5), bn(6), nn.LeakyReLU(0.2),                 # (B, 6, 28, 28)
            nn.MaxPool2d(2),                                              # (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5), bn(16), nn.LeakyReLU(0.2),               # (B, 16, 10, 10)
            nn.MaxPool2d(2),                                              # (B, 16, 5, 5)
            nn.Flatten(),                                                 # (B, 400)
            nn.Linear(400, 120), nn.LeakyReLU(0.2),                       # (B, 120)
            nn.Linear(120, 84), nn.LeakyReLU(0.2),                        # (B, 84)
            nn.Linear(84, 1))                                             # (B, 1)

    def forward(self, x):
        return self.net(x).squeeze(1)                                     # (B,)


class DeconvGenerator(nn.Module):
    """Post 004: a 6x6 noise plane grown by seven stride-1 transposed convolutions: each
    5x5 layer adds 4 pixels (6 -> 10 -> ... -> 30), the last 3x3 adds 2 (-> 32). Fix: the
    noise is N(0, 1); the post drew it with the weight initialiser `kaiming_normal_`."""

    def __init__(self, z_dim=36):
        super().__init__()
        if z_dim != 36:
            raise ValueError("DeconvGenerator's noise is one 6x6 plane: z_dim must be 36.")
        self.z_dim = z_dim
        chans = [1, 128, 64, 32, 16, 8, 4]
        layers = []
        for c_in, c_out in zip(chans, chans[1:]):    # (B, 128, 10, 10) ... (B, 4, 30, 30)
            layers += [nn.ConvTranspose2d(c_in, c_out, 5), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(4, 1, 3), nn.Tanh()]                # (B, 1, 32, 32)
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z.view(-1, 1, 6, 6))


# --- Posts 002 / 003: DCGAN at 32x32 (and at 64x64, in colour, for chapter 10) ------------

class DCGANGenerator(nn.Module):
    """Post 002: transposed convs z -> 4h (4x4) -> 2h (8x8) -> h (16x16) -> 1 (32x32),
    BatchNorm + ReLU, Tanh. Fix: MNIST is padded to 32x32 (the post fed 28x28, which fails
    on shapes), so the post's layers stay as written; the judge crops samples back to 28x28.
    `size` 64 adds one doubling, z -> 8h (4x4) -> ... -> 64x64: the PyTorch DCGAN tutorial's
    generator at h = 64; `channels` 3 draws colour."""

    def __init__(self, z_dim=64, hidden=128, extra_inputs=0, channels=1, size=32):
        super().__init__()
        self.z_dim = z_dim
        c = hidden * size // 8                                  # 4h at 32x32, 8h at 64x64
        layers = [nn.ConvTranspose2d(z_dim + extra_inputs, c, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(c), nn.ReLU()]                 # (B, c, 4, 4)
        while c > hidden:                                       # each doubles the side, halves c
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c // 2), nn.ReLU()]       # ... (B, h, S/2, S/2)
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]  # (B, C, S, S)
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z):
        return self.net(z.view(len(z), -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Post 002: stride-2 convs 32 -> 16 -> 8 -> 4 with BatchNorm and LeakyReLU(0.2), then
    a 4x4 conv to one score. Fix: a logit. `norm=False` drops BatchNorm, which couples the
    samples of a batch: the critic of WGAN-GP and the discriminator of SN-GAN. `size` and
    `channels` mirror the generator's."""

    def __init__(self, hidden=128, norm=True, channels=1, size=32):
        super().__init__()

        def block(c_in, c_out):
            bn = [nn.BatchNorm2d(c_out)] if norm else []
            return [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm), *bn, nn.LeakyReLU(0.2)]

        layers, c = [nn.Conv2d(channels, hidden, 4, 2, 1), nn.LeakyReLU(0.2)], hidden  # S/2
        while c < hidden * size // 8:                           # each halves the side, doubles c
            layers += block(c, 2 * c)                           # ... (B, 4h, 4, 4) at 32x32
            c *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, 1, 4, 1, 0)                    # (B, 1, 1, 1)
        self.apply(dcgan_init)

    def forward(self, x):
        return self.head(self.features(x)).flatten()            # (B,)


# --- Post 003's suggestion: a conditional GAN ------------------------------------------

class ConditionalGenerator(DCGANGenerator):
    """The DCGAN generator, with a one-hot code of the label y appended to z."""
    conditional = True

    def __init__(self, z_dim=64, hidden=64):
        super().__init__(z_dim=z_dim, hidden=hidden, extra_inputs=N_CLASSES)

    def forward(self, z, y):
        onehot = nn.functional.one_hot(y, N_CLASSES).to(z.dtype)       # (B, 10)
        return super().forward(torch.cat([z, onehot], dim=1))          # (B, 1, 32, 32)


class ConditionalDiscriminator(DCGANDiscriminator):
    """A projection discriminator (Miyato & Koyama, 2018): the score of the features plus
    their dot product with a learned embedding of the label, D(x, y) = psi(phi(x)) +
    e_y . phi(x). The embedding starts on the head's scale, N(0, 0.02^2), so neither term
    dominates at the start."""
    conditional = True

    def __init__(self, hidden=64):
        super().__init__(hidden=hidden, norm=True)
        self.embed = nn.Embedding(N_CLASSES, 4 * hidden * 4 * 4)
        dcgan_init(self.embed)

    def forward(self, x, y):
        f = self.features(x)                                            # (B, 4h, 4, 4)
        projection = (f.flatten(1) * self.embed(y)).sum(1)              # (B,)
        return self.head(f).flatten() + projection                      # (B,)


# --- InfoGAN (Chen et al., 2016): codes the generator must make readable ----------------

class InfoGenerator(nn.Module):
    """The InfoGAN paper's MNIST generator at a quarter of its widths (fc 256, not 1024):
    FC -> FC 7x7xc2 -> upconv c1 (14x14) -> upconv 1 (28x28), BatchNorm + ReLU, Tanh. z ~
    N(0, I) as for every generator: the argmax of its first n_cat numbers is a uniform
    categorical code, fed one-hot; the next n_cont are continuous codes; the rest is noise.
    The one-hot is scaled by `code_scale`, by default the expected length of the other
    z_dim - n_cat numbers (8 for 64), so that the code weighs as much in G's first layer as
    all of them together; at 1 it is one input among 65, and the noise picks the digit."""

    def __init__(self, z_dim=74, n_cat=10, n_cont=2, fc=256, c2=64, c1=32, code_scale=None):
        super().__init__()
        self.z_dim, self.n_cat, self.n_cont, self.c2 = z_dim, n_cat, n_cont, c2
        scale = (z_dim - n_cat) ** 0.5 if code_scale is None else code_scale
        self.register_buffer("code_scale", torch.tensor(float(scale)))  # saved with the weights
        self.fc = nn.Sequential(
            nn.Linear(z_dim, fc, bias=False), nn.BatchNorm1d(fc), nn.ReLU(),          # (B, fc)
            nn.Linear(fc, c2 * 49, bias=False), nn.BatchNorm1d(c2 * 49), nn.ReLU())    # (B, c2*49)
        self.conv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c1), nn.ReLU(),                                         # (B, c1, 14, 14)
            nn.ConvTranspose2d(c1, 1, 4, 2, 1), nn.Tanh())                          # (B, 1, 28, 28)
        self.apply(dcgan_init)

    def forward(self, z):
        cat = nn.functional.one_hot(z[:, :self.n_cat].argmax(1), self.n_cat).to(z.dtype)
        h = self.fc(torch.cat([cat * self.code_scale, z[:, self.n_cat:]], dim=1))     # (B, c2*49)
        return self.conv(h.view(len(z), self.c2, 7, 7))

    def with_code(self, z, code: int):
        """z with the categorical code set to `code` (its first n_cat numbers one-hot)."""
        z = z.clone()
        z[:, :self.n_cat] = nn.functional.one_hot(torch.tensor(code), self.n_cat).to(z)
        return z


class InfoDiscriminator(nn.Module):
    """The paper's MNIST discriminator at the same widths: conv c1 -> conv c2 + BN -> FC fc +
    BN, LeakyReLU(0.1); D's logit and Q's guess of the codes (an FC q + BN head: category
    logits, then the continuous codes) share those features."""

    def __init__(self, n_cat=10, n_cont=2, c1=32, c2=64, fc=256, q=128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 4, 2, 1), nn.LeakyReLU(0.1),                          # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c2), nn.LeakyReLU(0.1),                                   # (B, c2, 7, 7)
            nn.Flatten(),
            nn.Linear(c2 * 49, fc, bias=False), nn.BatchNorm1d(fc), nn.LeakyReLU(0.1))  # (B, fc)
        self.head = nn.Linear(fc, 1)                                                   # (B, 1)
        self.q = nn.Sequential(
            nn.Linear(fc, q, bias=False), nn.BatchNorm1d(q), nn.LeakyReLU(0.1),
            nn.Linear(q, n_cat + n_cont))                                              # (B, 12)
        self.apply(dcgan_init)

    def forward(self, x):
        f = self.features(x)                                                           # (B, fc)
        return self.head(f).flatten(), self.q(f)                                     # (B,), (B, 12)


# --- Drawing from a generator ----------------------------------------------------------

def check_labels(labels, n: int) -> torch.Tensor:
    """`labels` as a (n,) tensor of digits 0-9, or one sentence saying what is wrong."""
    labels = torch.as_tensor(labels)
    if labels.shape != (n,) or labels.dtype.is_floating_point or not (
            0 <= labels.min() and labels.max() < N_CLASSES):
        raise GanError(f"labels must be {n} digits from 0 to 9, one per sample; "
                       f"got {labels.tolist()}.")
    return labels.long()


@torch.no_grad()
def generate(G, z, labels=None):
    """G(z) in eval mode, on G's device: BatchNorm uses its running statistics, so a sample
    does not depend on the others in its batch. A conditional G needs `labels`, one digit
    per row of z. z drawn on the CPU (a seeded generator's, the same on every machine) is
    moved to G's device."""
    if is_conditional(G) != (labels is not None):
        raise GanError("This generator is conditional, so it needs labels=, one digit from 0 "
                       "to 9 per row of z." if is_conditional(G) else
                       "This generator is not conditional, so it takes no labels; train a "
                       "conditional model (cgan) to choose the digit.")
    weight = next(G.parameters(), None)
    z = z if weight is None else z.to(weight.device)
    was_training = G.training
    G.eval()
    try:
        out = G(z) if labels is None else G(z, check_labels(labels, len(z)).to(z.device))
    finally:
        G.train(was_training)
    return out


def n_params(*modules) -> int:
    """The number of weights of one or more networks."""
    return sum(p.numel() for m in modules for p in m.parameters())
