"""Train the MNIST classifier that gan_helpers.metrics judges samples with.

    python tools/train_classifier.py --out gan_helpers/weights/mnist_classifier.pt

It trains on the same training digits as the GANs (the 60k training split, or offline a
fixed 8,000 of the 10k test split) and reports its accuracy on the held-out digits the
metrics compare against. One thread: a network this small gains nothing from more.
"""

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_helpers import checkpoint, data
from gan_helpers.__main__ import Parser, run_command
from gan_helpers.metrics import FORMAT, WEIGHTS, MnistClassifier


def shift(x, gen, pixels=2):
    """Move each digit by up to `pixels` in x and y: MNIST digits are centred by their
    centre of mass, generated ones not always, and the judge should not mind."""
    theta = torch.eye(2, 3).repeat(len(x), 1, 1)
    theta[:, :, 2] = torch.randint(-pixels, pixels + 1, (len(x), 2), generator=gen) * (2 / 28)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def train(images, steps=1500, batch_size=64, lr=2e-3, seed=0) -> MnistClassifier:
    """Adam with a cosine-decayed rate on shifted digits."""
    torch.manual_seed(seed)
    net = MnistClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    batches = data.Batches(images, batch_size, gen)
    for step in range(1, steps + 1):
        x, y = batches.next()
        loss = F.cross_entropy(net(shift(x, gen)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % 250 == 0:
            print(f"step {step}/{steps}: loss {loss.item():.3f}", flush=True)
    return net.eval()


@torch.no_grad()
def accuracy(net, images) -> float:
    predicted = torch.cat([net(b).argmax(1) for b in images.x.split(1000)])
    return (predicted == images.y).double().mean().item()


def main(args) -> int:
    torch.set_num_threads(1)
    start = time.perf_counter()
    train_set = data.load("mnist", args.data_root)
    held_out = data.load("mnist", args.data_root, split="held-out")
    print(f"training on {train_set.name}, {args.steps} steps", flush=True)
    net = train(train_set, steps=args.steps, seed=args.seed)
    acc = accuracy(net, held_out)
    command = " ".join(["python tools/train_classifier.py", *sys.argv[1:]])
    checkpoint.save(  # atomic; the classifier's own format mark replaces the checkpoints'
        {
            "format": FORMAT,
            "state_dict": net.state_dict(),
            "held_out_accuracy": acc,
            "trained_on": train_set.name,
            "held_out": held_out.name,
            "command": command,
            "steps": args.steps,
            "seed": args.seed,
        },
        args.out,
    )
    print(
        f"held-out accuracy {acc:.2%} on {held_out.name}; wrote {args.out} in "
        f"{time.perf_counter() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    p = Parser(prog="python tools/train_classifier.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=WEIGHTS)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", type=Path, help="default: $GAN_DATA_ROOT or data/")
    sys.exit(run_command(main, p.parse_args()))
