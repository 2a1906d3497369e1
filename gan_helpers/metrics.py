"""Sample quality as numbers, judged by a small MNIST classifier shipped with the course.

Inception weights cannot be downloaded offline, and a network trained on digits judges
digits better. Its 64 penultimate features give:
- cFID, the Fréchet distance between Gaussians fitted to the features of real and
  generated digits, |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r^1/2 S_g S_r^1/2)^1/2);
- KID, the squared MMD with the kernel (a.b/64 + 1)^3, unbiased at any sample size;
- precision and recall (Kynkäänniemi et al. 2019): the share of fakes inside the k-NN
  balls of the real features, and of reals inside those of the fakes;
- coverage: the classes above 2% of the samples, and the entropy of the class shares over
  log 10 (1: all digits equally common, 0: one digit only).
The real digits are held out from training: the generators never saw them. Beside them,
cFID against training digits and each sample's distance to its nearest training digit
show memorisation. A number means something only beside the real-vs-real baseline at the
same n: n training digits against the n held-out ones.
"""

import math
from pathlib import Path

import torch
from torch import nn

from . import data
from .env import GanError, budget
from .models import N_CLASSES, crop_to_28, digits_in_turn, generate, is_conditional

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_classifier.pt"
FORMAT = "gan_helpers/mnist-classifier/1"
MIN_SHARE = 0.02  # a class counts as covered above this share of the samples


class MnistClassifier(nn.Module):
    """Three 3x3 conv + max-pool stages, then 64 features, then 10 class logits."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 3, 3)
            nn.Flatten(), nn.Linear(64 * 3 * 3, 64), nn.ReLU(),           # (B, 64)
        )  # fmt: skip
        self.head = nn.Linear(64, N_CLASSES)

    def forward(self, x):
        return self.head(self.body(x))


_cache = {}


def load_classifier(path=WEIGHTS) -> MnistClassifier:
    """The trained judge, on the CPU in eval mode, loaded once."""
    key = ("classifier", str(path))
    if key not in _cache:
        with torch.random.fork_rng(devices=[]):  # judging a run mid-training must not change it
            net = MnistClassifier()  # its initial weights draw from the global generator
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not (isinstance(state, dict) and state.get("format") == FORMAT):
                raise ValueError(f"not {FORMAT}")
            net.load_state_dict(state["state_dict"])
        except Exception:
            raise GanError(
                f"The classifier's weights at {path} are missing, damaged or of another "
                f"network; train them again with `python tools/train_classifier.py --out {path}`."
            ) from None
        net.info = {k: v for k, v in state.items() if k != "state_dict"}
        _cache[key] = net.eval().requires_grad_(False)
    return _cache[key]


def _digits(images) -> torch.Tensor:
    """(N, 1, 28, 28) float32 on the CPU from Images, a tensor, or 32x32 model output."""
    x = images.x if isinstance(images, data.Images) else images
    if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != 1:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise GanError(f"The metrics judge MNIST digits of shape (N, 1, 28, 28); got {shape}.")
    x = crop_to_28(x)
    if x.shape[-2:] != (28, 28):
        raise GanError(f"The metrics judge 28x28 digits, not {tuple(x.shape[-2:])}.")
    return x.detach().float().cpu()


@torch.no_grad()
def features(images) -> torch.Tensor:
    """(N, 64) features in float64: the network runs in float32, but the sums after it
    (covariances, a matrix square root) need float64 for a small difference of traces."""
    net = load_classifier()
    return torch.cat([net.body(b) for b in _digits(images).split(1000)]).double()


@torch.no_grad()
def classify(images) -> torch.Tensor:
    """(N,) the digit the judge sees in each image."""
    net = load_classifier()
    return torch.cat([net(b).argmax(1) for b in _digits(images).split(1000)])


def fid(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to two (N, d) feature sets."""
    return frechet_distance(*moments(f1), *moments(f2))


def moments(f) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and unbiased covariance (d, d) of (N, d) features, in float64."""
    f = f.double()
    centred = f - f.mean(0)
    return f.mean(0), centred.T @ centred / (len(f) - 1)


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """Squared Fréchet distance between N(mu1, s1) and N(mu2, s2). The cross term uses
    tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), whose inside is symmetric positive
    semi-definite, so eigh gives it exactly, with no scipy."""
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64).reshape(-1) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64).reshape(len(mu1), -1) for s in (s1, s2))
    w, v = torch.linalg.eigh(s1)
    root1 = (v * w.clamp(min=0).sqrt()) @ v.T
    middle = root1 @ s2 @ root1
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    d = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * cross
    return max(d.item(), 0.0)  # rounding can leave -1e-12 where the answer is 0


def kid(f1, f2, scale=1.0, subsets=50, size=1000, seed=0) -> float:
    """Kernel Inception Distance on these features, divided by `scale`: the unbiased squared
    MMD with the cubic polynomial kernel, averaged over random subsets of at most `size`
    (Bińkowski et al. 2018). Near 0, on either side, for two sets from one distribution."""
    g, m = torch.Generator().manual_seed(seed), min(size, len(f1), len(f2))
    f1, f2 = f1 / scale, f2 / scale
    if m == len(f1) == len(f2):
        subsets = 1  # every subset would be the whole of both sets
    kernel = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3
    total = 0.0
    for _ in range(subsets):
        a = f1[torch.randperm(len(f1), generator=g)[:m]]
        b = f2[torch.randperm(len(f2), generator=g)[:m]]
        kaa, kbb = kernel(a, a), kernel(b, b)
        off = (kaa.sum() - kaa.trace() + kbb.sum() - kbb.trace()) / (m * (m - 1))
        total += (off - 2 * kernel(a, b).mean()).item()
    return total / subsets


def precision_recall(fake, real, k=3) -> tuple[float, float]:
    """(precision, recall) of fake against real features, with k-NN balls as manifolds."""

    def inside(points, centres):
        radii = torch.cdist(centres, centres).kthvalue(k + 1, dim=1).values  # self is 0
        return (torch.cdist(points, centres) <= radii).any(dim=1).double().mean().item()

    return inside(fake, real), inside(real, fake)


def coverage(labels: torch.Tensor) -> dict:
    """The class shares of judged labels, the classes above 2%, and the normalised entropy."""
    shares = torch.bincount(labels, minlength=N_CLASSES).double() / len(labels)
    p = shares[shares > 0]
    return {
        "histogram": [round(s, 4) for s in shares.tolist()],
        "classes": int((shares > MIN_SHARE).sum()),
        "entropy": (p * p.reciprocal().log()).sum().item() / math.log(N_CLASSES),
    }


def nearest(samples, pool, chunk=500) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's nearest image in `pool` by RMS pixel distance: (distances, indices)."""
    a, b = _digits(samples).flatten(1), _digits(pool).flatten(1)
    best = [torch.cdist(c, b).min(dim=1) for c in a.split(chunk)]
    dist = torch.cat([d.values for d in best]) / a.shape[1] ** 0.5
    return dist, torch.cat([d.indices for d in best])


def real_digits(split="train", root=None) -> data.Images:
    """The MNIST training or held-out digits, on the CPU, read once."""
    key = (split, str(root))
    if key not in _cache:
        _cache[key] = data.load("mnist", root, split=split)
    return _cache[key]


def default_n() -> int:
    """Samples per set: 2,000, or 500 in smoke mode. Compare only numbers of one n."""
    return budget(2000, 500)


def evaluate(source, n=None, seed=0) -> dict:
    """Every number above for `source`: a generator (drawn on fixed noise; a conditional one
    draws the digits 0-9 in turn), a Trainer (its `.generator`, the EMA copy if it has
    one) or a tensor of at least n samples."""
    n = default_n() if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 10:
        raise GanError(f"n must be a whole number of samples, at least 10, not {n!r}.")
    samples = _draw(source, n, seed)
    ref = _reference(n)
    f_fake, (nn_fake, _) = features(samples), nearest(samples, real_digits("train").x)
    return {
        "cfid": fid(f_fake, ref["held"]),
        "cfid_train": fid(f_fake, ref["train"]),
        "cfid_real": ref["cfid_real"],
        "kid": kid(f_fake, ref["held"], ref["scale"]),
        **dict(zip(("precision", "recall"), precision_recall(f_fake, ref["held"]))),
        **coverage(classify(samples)),
        "nn_train": nn_fake.mean().item(),
        "nn_real": ref["nn_real"],
        "n": n,
    }


def _reference(n: int) -> dict:
    """The real side of `evaluate` at n, computed once: n held-out digits, and n training
    digits chosen by a fixed permutation."""
    if ("reference", n) not in _cache:
        held, train = real_digits("held-out"), real_digits("train")
        if len(held) < n:
            raise GanError(
                f"There are {len(held)} held-out digits, fewer than n = {n}; pass a smaller n."
            )
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n]
        ref = {
            "held": features(held.x[:n]),
            "train": features(train.x[pick]),
            "scale": features(held.x).square().mean().sqrt().item(),
        }  # KID's unit
        ref["cfid_real"] = fid(ref["train"], ref["held"])
        ref["nn_real"] = nearest(held.x[:n], train.x)[0].mean().item()
        _cache[("reference", n)] = ref
    return _cache[("reference", n)]


def _draw(source, n: int, seed: int) -> torch.Tensor:
    source = getattr(source, "generator", source)  # a Trainer draws from its generator
    if not isinstance(source, nn.Module):
        samples = _digits(source)
        if len(samples) < n:
            raise GanError(
                f"evaluate needs n = {n} samples but got {len(samples)}; pass "
                f"more samples, a generator, or a smaller n."
            )
        return samples[:n]
    z = torch.randn(n, source.z_dim, generator=torch.Generator().manual_seed(seed))
    digits = digits_in_turn(n)  # generate() moves both to the generator's device
    return torch.cat(
        [
            _digits(generate(source, zb, yb if is_conditional(source) else None))
            for zb, yb in zip(z.split(500), digits.split(500))
        ]
    )


def describe(r: dict, name: str = "") -> str:
    """One line: the numbers of `evaluate`."""
    return (
        f"{name + ': ' if name else ''}cFID {r['cfid']:.1f} (real vs real "
        f"{r['cfid_real']:.1f}; vs training digits {r['cfid_train']:.1f}), KID "
        f"{r['kid']:.4f}, precision {r['precision']:.2f}, recall {r['recall']:.2f}, "
        f"{r['classes']}/10 classes, entropy {r['entropy']:.2f}, nearest training digit "
        f"{r['nn_train']:.3f} (held-out digits {r['nn_real']:.3f}), n={r['n']}"
    )


def report(source, name="", n=None, seed=0) -> dict:
    """`evaluate`, printed as one line with the share of each digit; returns the numbers."""
    r = evaluate(source, n=n, seed=seed)
    print(describe(r, name))
    print("    digits 0-9:", " ".join(f"{p:4.0%}" for p in r["histogram"]))
    return r


# --- colour images: FID and KID on Inception's features (chapter 10) -----------------------


def inception(weights=None) -> nn.Module:
    """torchvision's Inception v3 with its ImageNet weights, downloaded once (about 100 MB),
    giving the 2,048 numbers before its classifier; `weights`, a state_dict file for the
    same network without its auxiliary head, replaces the download. Its FIDs compare runs of
    this course with each other, not with published FIDs, which use TensorFlow's Inception."""
    key = ("inception", str(weights))
    if key not in _cache:
        from torchvision.models import Inception_V3_Weights, inception_v3

        try:
            with torch.random.fork_rng(devices=[]):  # as for the classifier
                if weights is None:
                    net = inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1)
                else:
                    net = inception_v3(weights=None, aux_logits=False, init_weights=False)
                    net.transform_input = True  # as with the ImageNet weights: normalised inputs
                    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except Exception as e:  # offline: URLError; a bad file: many kinds
            raise GanError(
                f"Inception v3's weights could not be had ({type(e).__name__}), so FID and KID on "
                f"colour images cannot be computed here; they are downloaded once, online."
            ) from None
        net.fc = nn.Identity()
        _cache[key] = net.eval().requires_grad_(False)
    return _cache[key]


@torch.no_grad()
def inception_features(images, weights=None, device="cpu", batch=100) -> torch.Tensor:
    """(N, 2048) float64 features of (N, C, H, W) images in [-1, 1] (or uint8), resized to
    299x299 and normalised as ImageNet's were; greyscale is repeated into three channels."""
    net = inception(weights).to(device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    out = []
    for x in images.split(batch):
        x = x.to(device)
        x = x.float() / 255 if x.dtype == torch.uint8 else (x.float() + 1) / 2
        x = nn.functional.interpolate(x.expand(-1, 3, -1, -1), (299, 299), mode="bilinear")
        out.append(net((x - mean) / std).double().cpu())
    return torch.cat(out)


def fid_kid(samples, real, weights=None, device="cpu") -> dict:
    """FID and KID between `samples` and `real` images on Inception's features, at the
    smaller of their two counts; KID is unbiased at any n, FID is not (chapter 10 shows it)."""
    n = min(len(samples), len(real))
    fake, ref = (inception_features(x[:n], weights, device) for x in (samples, real))
    return {"fid": fid(fake, ref), "kid": kid(fake, ref), "n": n}
