"""Sample quality as numbers: classifier-FID and mode coverage, judged by a small MNIST CNN.

The judge is `MnistClassifier`, a 3-layer CNN of 61k parameters whose weights ship in
`gan_helpers/weights/mnist_classifier.pt` (240 KB). Inception weights cannot be downloaded
offline, and a network trained on digits is the better judge of digits anyway. The shipped
weights were trained offline on a fixed 8,000 of the 10,000 MNIST test-split digits (seed 0)
and classify the other 2,000 with 98.6% accuracy. They were made by

    python -m gan_helpers.metrics train-classifier --out gan_helpers/weights/mnist_classifier.pt

in 36 s of CPU time (one thread; 2 minutes of wall time on a busy 2-core machine). Where
the 60,000-digit training split is present, the same command trains on it for the same
number of steps and reports the accuracy on the 10,000 test digits.

Classifier-FID (cFID) is the Fréchet distance between two Gaussians fitted to the
classifier's penultimate features (64 numbers per image) of real and generated digits:

    d^2 = |mu_r - mu_g|^2 + tr(S_r) + tr(S_g) - 2 tr((S_r^1/2 S_g S_r^1/2)^1/2).

0 means the same statistics; lower is better. The estimate is biased upwards by a finite
sample, so a number is only meaningful next to others at the same sample size n, and next
to the real-vs-real baseline: two disjoint sets of n real digits, the best a generator can
expect. `evaluate` always reports both, with n. On the offline split, real-vs-real gives
3.3 +- 0.9 at n = 2,000 and 12 +- 2.5 at n = 500 (8 random splits): gaps of that size
between two models are noise.

Mode coverage: the share of generated samples the classifier puts in each class, the number
of classes above 2%, and the entropy of those shares over log 10: 1 when all ten digits are
equally common, 0 when the generator draws a single digit (mode collapse).

A chapter ends with one call, which prints one line and returns the numbers:

    metrics.report(trainer, images, name="DCGAN")     # n = 2,000, or 500 in smoke mode

cFID is on the scale of these 64 features, not Inception's: compare it across this
series' models, never with published FIDs. Offline, the real digits are the test split the
GANs train on, 8,000 of which also trained the judge.
"""
import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets

from . import checkpoint, data
from .budget import budget
from .errors import GanError
from .models import crop_to_28
from .paths import data_root
from .train import Trainer, generate

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_classifier.pt"
FORMAT = "gan_helpers/mnist-classifier/1"
TRAIN_COMMAND = "python -m gan_helpers.metrics train-classifier --out {out}"
HELD_OUT = 2000          # test-split digits kept out of training when it is the only split
N_FULL, N_SMOKE = 2000, 500
MIN_SHARE = 0.02         # a class counts as covered above this share of the samples


class MnistClassifier(nn.Module):
    """Three 3x3 conv + max-pool stages, then 64 features, then 10 class logits."""
    feature_dim = 64

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (B, 32, 7, 7)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (B, 64, 3, 3)
            nn.Flatten(), nn.Linear(64 * 3 * 3, self.feature_dim), nn.ReLU(),  # (B, 64)
        )
        self.head = nn.Linear(self.feature_dim, 10)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


# --- the shipped judge ---------------------------------------------------------------

_loaded = {}


def load_classifier(path=None, device="cpu") -> MnistClassifier:
    """The trained classifier, in eval mode, loaded once per path and device."""
    path = Path(path) if path is not None else WEIGHTS
    key = (str(path), str(device))
    if key not in _loaded:
        model = MnistClassifier()
        try:
            model.load_state_dict(_read_weights(path)["state_dict"])
        except (RuntimeError, KeyError, TypeError):
            raise GanError(f"{path} does not hold MnistClassifier weights; train them again "
                           f"with `{TRAIN_COMMAND.format(out=path)}`.") from None
        _loaded[key] = model.eval().requires_grad_(False).to(device)
    return _loaded[key]


def _read_weights(path: Path) -> dict:
    retrain = f"train them with `{TRAIN_COMMAND.format(out=path)}`"
    if not path.is_file():
        raise GanError(f"There are no classifier weights at {path}; {retrain}.")
    try:  # weights_only: tensors and plain values only, so a crafted file cannot run code
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # damaged bytes fail inside torch in many ways; all mean the same
        raise GanError(f"{path} is truncated or corrupted, or not a PyTorch file; "
                       f"{retrain}.") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanError(f"{path} is not a file of classifier weights ({FORMAT}); {retrain}.")
    return state


def weights_info(path=None) -> dict:
    """What the weights file says about itself: accuracy, data and command, no tensors."""
    state = _read_weights(Path(path) if path is not None else WEIGHTS)
    return {k: v for k, v in state.items() if k != "state_dict"}


# --- features and the Fréchet distance -----------------------------------------------

def _as_digits(images) -> torch.Tensor:
    """(N, 1, 28, 28) images in [-1, 1] from Images, a tensor, or 32x32 model output."""
    x = images.x if isinstance(images, data.Images) else images
    if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != 1:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise GanError(f"The metrics judge MNIST digits of shape (N, 1, 28, 28); got {shape}.")
    x = crop_to_28(x)
    if x.shape[-2:] != (28, 28):
        raise GanError(f"The metrics judge 28x28 digits, not {tuple(x.shape[-2:])}.")
    return x.detach().float()


@torch.no_grad()
def features(images, classifier=None, batch_size=1000) -> torch.Tensor:
    """(N, 64) penultimate features in float64. The network runs in float32; every sum
    after it (means, covariances, the matrix square root) needs float64, where float32
    would lose most of the digits of a distance that is a small difference of large traces."""
    x = _as_digits(images)
    net = classifier if classifier is not None else load_classifier(device=x.device)
    return torch.cat([net.features(b) for b in x.split(batch_size)]).double()


def feature_statistics(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and unbiased covariance (d, d) of (N, d) features, in float64."""
    f = feats.double()
    centred = f - f.mean(0)
    return f.mean(0), centred.T @ centred / (len(f) - 1)


def _sqrt_psd(s: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a positive semi-definite matrix, by eigh."""
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2): the right side is the root of a symmetric
    PSD matrix, so a symmetric eigendecomposition gives it exactly, with no scipy.
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64).reshape(-1) for m in (mu1, mu2))
    d = len(mu1)
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64).reshape(d, d) for s in (sigma1, sigma2))
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    dist = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * cross
    return max(dist.item(), 0.0)  # rounding can leave -1e-12 where the answer is 0


def cfid(samples, real, classifier=None) -> float:
    """Classifier-FID between two sets of digits, each as it is given (no subsampling)."""
    return frechet_distance(*feature_statistics(features(samples, classifier)),
                            *feature_statistics(features(real, classifier)))


# --- mode coverage -------------------------------------------------------------------

def class_histogram(samples, classifier=None) -> torch.Tensor:
    """(10,) share of the samples the classifier assigns to each digit."""
    feats = features(samples, classifier)
    net = classifier if classifier is not None else load_classifier(device=feats.device)
    return _histogram(feats, net)


@torch.no_grad()
def _histogram(feats: torch.Tensor, net: MnistClassifier) -> torch.Tensor:
    predicted = net.head(feats.float()).argmax(1)
    return torch.bincount(predicted, minlength=10).double().cpu() / len(predicted)


def coverage(histogram: torch.Tensor) -> tuple[int, float]:
    """(classes above 2%, entropy / log 10) of a class histogram."""
    p = histogram[histogram > 0]
    entropy = (p * p.reciprocal().log()).sum().item() / math.log(10)
    return int((histogram > MIN_SHARE).sum()), entropy


# --- one call per chapter ------------------------------------------------------------

def default_n() -> int:
    """Samples per set: 2,000, or 500 in smoke mode. Compare only numbers of one n."""
    return budget(N_FULL, N_SMOKE)


def evaluate(generator_or_samples, real_images, n=None, seed=0, classifier=None) -> dict:
    """cFID against n real digits, the real-vs-real baseline at the same n, and coverage.

    `generator_or_samples`: a Trainer, a generator (n samples are drawn from it on fixed
    noise, `seed`; a conditional one draws the digits 0-9 in turn), or a tensor of at least
    n samples. `real_images` (Images or a tensor) needs 2n digits: n for the reference, n
    disjoint others for the baseline, chosen by a fixed permutation, so every call with the
    same real data and n compares against the same reference.
    """
    n = default_n() if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise GanError(f"n must be a whole number of samples, at least 2, not {n!r}.")
    if isinstance(real_images, data.Images) and real_images.name.startswith("fashion"):
        raise GanError("The metrics judge digits with an MNIST classifier; they mean "
                       "nothing on Fashion-MNIST.")
    real = _as_digits(real_images)
    if len(real) < 2 * n:
        raise GanError(f"evaluate needs 2n = {2 * n} real images (a reference and a "
                       f"baseline set), but got {len(real)}; pass more, or a smaller n.")
    net = classifier if classifier is not None else load_classifier(device=real.device)
    samples = _draw(generator_or_samples, n, seed, real.device)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    reference = feature_statistics(features(real[order[:n]], net))
    baseline = feature_statistics(features(real[order[n:2 * n]], net))
    generated = features(samples, net)
    histogram = _histogram(generated, net)
    covered, entropy = coverage(histogram)
    return {"cfid": frechet_distance(*feature_statistics(generated), *reference),
            "cfid_real_baseline": frechet_distance(*baseline, *reference),
            "classes_covered": covered, "entropy": entropy,
            "histogram": [round(p, 4) for p in histogram.tolist()], "n": n}


def _draw(source, n: int, seed: int, device) -> torch.Tensor:
    """n samples from a Trainer, a generator or a tensor of samples."""
    if isinstance(source, Trainer):
        source = source.G
    if isinstance(source, nn.Module):
        z = torch.randn(n, source.z_dim, generator=torch.Generator().manual_seed(seed))
        z = z.to(next(source.parameters(), z).device)
        digits = torch.arange(n, device=z.device) % 10    # drawn in chunks: bounded memory
        conditional = getattr(source, "conditional", False)
        return torch.cat([_as_digits(generate(source, z=zb, labels=yb if conditional else None))
                          for zb, yb in zip(z.split(500), digits.split(500))]).to(device)
    samples = _as_digits(source)
    if len(samples) < n:
        raise GanError(f"evaluate needs n = {n} samples but got {len(samples)}; pass more "
                       f"samples, a generator, or a smaller n.")
    return samples[:n].to(device)


def describe(result: dict, name: str = "") -> str:
    """One line: cFID beside its baseline, coverage, entropy, n."""
    prefix = f"{name}: " if name else ""
    return (f"{prefix}cFID {result['cfid']:.2f} "
            f"(real vs real {result['cfid_real_baseline']:.2f}), "
            f"{result['classes_covered']}/10 classes above {MIN_SHARE:.0%}, "
            f"entropy {result['entropy']:.2f}, n={result['n']}")


def report(generator_or_samples, real_images, name="", n=None, seed=0) -> dict:
    """`evaluate`, printed as one line; returns the result, e.g. to compare chapters."""
    result = evaluate(generator_or_samples, real_images, n=n, seed=seed)
    print(describe(result, name))
    return result


# --- training the judge --------------------------------------------------------------

def classifier_data(root=None) -> tuple[data.Images, data.Images, str]:
    """(train, held-out, description). With the 60k training split present: it and the
    10k test split. Offline with only the test split: a fixed 8,000 of it and the other 2,000.
    """
    root = data_root(root)
    found = data.torchvision_dataset("mnist", root)
    if found.train:
        train, test = _images(found, "mnist train split"), _read_test_split(root)
        return (train, test, f"the {len(train):,}-digit MNIST training split; accuracy on "
                             f"the {len(test):,} test digits")
    everything = _images(found, "mnist test split")
    order = torch.randperm(len(everything), generator=torch.Generator().manual_seed(0))
    train_idx, held_idx = order[HELD_OUT:], order[:HELD_OUT]
    pick = lambda idx, what: data.Images(everything.x[idx], everything.y[idx], what)
    return (pick(train_idx, f"{len(train_idx):,} test-split digits"),
            pick(held_idx, f"{len(held_idx):,} held-out test-split digits"),
            f"a fixed {len(train_idx):,} of the {len(everything):,} MNIST test-split digits "
            f"(seed 0), offline; accuracy on the other {len(held_idx):,}")


def _read_test_split(root: Path) -> data.Images:
    try:
        test = datasets.MNIST(str(root), train=False, download=False)
    except Exception as e:
        raise GanError(f"The MNIST test split in {root / 'MNIST' / 'raw'} could not be read "
                       f"({e}); put its two IDX files there.") from None
    return _images(test, "mnist test split")


def _images(ds, name: str) -> data.Images:
    x = ds.data.float().unsqueeze(1) / 127.5 - 1.0   # [-1, 1], as data.load scales them
    return data.Images(x, ds.targets, name)


def _shift(x: torch.Tensor, gen: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Move each digit by up to `pixels` in x and y. MNIST digits are centred by their
    centre of mass; generated ones are not always, and the judge should not mind."""
    theta = torch.eye(2, 3).repeat(len(x), 1, 1)
    steps = torch.randint(-pixels, pixels + 1, (len(x), 2), generator=gen)
    theta[:, :, 2] = steps * (2.0 / x.shape[-1])       # one pixel in [-1, 1] coordinates
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


@torch.no_grad()
def accuracy(net: nn.Module, images: data.Images) -> float:
    predicted = torch.cat([net(b).argmax(1) for b in images.x.split(1000)])
    return (predicted == images.y).double().mean().item()


def train_classifier(train: data.Images, steps=1500, batch_size=64, lr=2e-3,
                     seed=0) -> MnistClassifier:
    """Adam with a cosine-decayed rate on shifted digits: 98.6% on held-out digits from
    8,000 training digits, in a step budget that does not grow with the data set."""
    torch.manual_seed(seed)
    net = MnistClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    batches = data.Batches(train, batch_size, gen)
    for step in range(1, steps + 1):
        x, y = batches.next()
        loss = F.cross_entropy(net(_shift(x, gen)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % 250 == 0:
            print(f"step {step}/{steps}: loss {loss.item():.3f}", flush=True)
    return net.eval()


def _train_command(args) -> int:
    # One thread: a network this small gains little from more, and shared cores make
    # threads wait on each other (17x slower per step with 2 threads on a busy 2-core box).
    torch.set_num_threads(1)
    if args.steps <= 0:
        raise GanError(f"--steps must be positive, not {args.steps}.")
    start = time.perf_counter()
    train, held_out, trained_on = classifier_data(args.data_root)
    print(f"training on {train.name}, {args.steps} steps", flush=True)
    net = train_classifier(train, steps=args.steps, seed=args.seed)
    acc = accuracy(net, held_out)
    command = TRAIN_COMMAND.format(out=args.out)
    if (args.steps, args.seed) != (1500, 0):
        command += f" --steps {args.steps} --seed {args.seed}"
    if args.data_root is not None:
        command += f" --data-root {args.data_root}"
    checkpoint.save_atomically({"format": FORMAT, "state_dict": net.state_dict(),
                                "held_out_accuracy": acc, "trained_on": trained_on,
                                "command": command, "steps": args.steps, "seed": args.seed},
                               args.out)
    print(f"held-out accuracy {acc:.2%} on {held_out.name}; wrote {args.out} "
          f"in {time.perf_counter() - start:.0f} s")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_helpers.metrics",
                                description="Train the MNIST classifier the metrics use.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train-classifier", help="train it and save its weights")
    t.add_argument("--out", type=Path, default=WEIGHTS, help=f"default: {WEIGHTS}")
    t.add_argument("--steps", type=int, default=1500)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-root", type=Path, help="default: $GAN_DATA_ROOT or data/")
    args = p.parse_args(argv)
    try:
        return _train_command(args)
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
