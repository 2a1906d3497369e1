"""Time to quality: how many seconds of training until the samples reach a cFID threshold.

img/s says how fast a loop runs, not how soon it draws digits: a bigger batch or a wider
model can raise the first and delay the second. This benchmark trains each run from its
seed and, every `--eval-every` steps, scores the generator with
`gan_helpers.metrics.evaluate` (classifier-FID against real digits, n samples; eval time
is left off the training clocks). It reports the training seconds, wall and CPU, at the
first evaluation at or under each threshold, or "not reached in N s" where the run hit
the cap first. A time is therefore an upper bound, late by at most one eval interval.

Runs (`--runs`):
  dcgan, wgan-gp   the series' recipes through `Trainer` (any recipe name works), with
                   the speed options given (`--bf16`, `--channels-last`, `--compile`).
  post-002         post 002's own DCGAN loop (`post_loops.loop_002`: a DataLoader with
                   per-image transforms, Sigmoid + BCELoss) on the post's own model and
                   settings: width h=128, z=64, batch 128, Adam 2e-4, betas (0.5, 0.999).
Post 002's WGAN-GP loop calls names it never defines (`lambda_gp`, `use_gpu`, `autograd`),
so there is no post loop to time for WGAN-GP.

    python benchmarks/time_to_quality.py [--runs dcgan wgan-gp post-002]
        [--thresholds 300 150] [--cap S] [--n N] [--eval-every K] [--threads T]
        [--steps N]
        [--device auto|cpu|cuda] [--bf16] [--channels-last] [--compile] [--cudnn-benchmark]
        [--markdown] [--save NAME]
"""

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from common import (
    add_speed_arguments,
    format_table,
    hardware,
    load_average,
    save,
    speed_options,
    synchronize,
    trainer,
)
from post_loops import loop_002

from gan_helpers import data, metrics, models, recipes
from gan_helpers.env import GanError, resolve_device

SEED = 0
EVAL_EVERY = {"wgan-gp": 10, "post-002": 10}  # steps, else 50: about 5-10 s each on CPU


@dataclass
class Run:
    """One training run, stepped in chunks, with its own two clocks."""

    name: str
    label: str  # what the table says the run is
    step: Callable[[int], None]  # train k more steps
    generator: torch.nn.Module
    steps: int = 0
    wall: float = 0.0  # training seconds only: evaluations excluded
    cpu: float = 0.0
    curve: list = field(default_factory=list)  # (steps, wall, cpu, cfid)


def ours(name, device, speed) -> Run:
    t = trainer(name, data.load(device=device, size=recipes.SIZE[name]), SEED, speed, device=device)
    label = f"gan_helpers {name} (batch {t.batches.batch_size}, {', '.join(speed) or 'defaults'})"
    return Run(name, label, lambda k: t.train(k), t.generator)


def post_002(device) -> Run:
    """Post 002's DCGAN, as the post sized it, through its own loop."""
    torch.manual_seed(SEED)
    G = models.DCGANGenerator(z_dim=64, hidden=128).to(device)
    D = models.DCGANDiscriminator(hidden=128).to(device)
    steps = loop_002(G, D, device, batch_size=128)

    def step(k):
        for _ in range(k):
            next(steps)

    return Run("post-002", "post 002's own loop (batch 128, h=128, DataLoader, BCELoss)", step, G)


def race(run: Run, images, device, args) -> Run:
    """Train in chunks of `eval_every` steps until every threshold is met or the cap."""
    every = args.eval_every or EVAL_EVERY.get(run.name, 50)

    def done():
        if args.steps:  # a fixed budget, e.g. to compare options at equal steps
            return run.steps >= args.steps
        return bool(run.curve) and run.curve[-1][3] <= min(args.thresholds)

    while run.wall < args.cap and not done():
        synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        run.step(every)
        synchronize(device)
        run.wall += time.perf_counter() - wall
        run.cpu += time.process_time() - cpu
        run.steps += every
        cfid = metrics.evaluate(run.generator, n=args.n, seed=SEED)["cfid"]
        run.curve.append((run.steps, run.wall, run.cpu, cfid))
        print(
            f"  {run.name}: step {run.steps}, {run.wall:.0f} s wall, {run.cpu:.0f} s CPU, "
            f"cFID {cfid:.0f}",
            file=sys.stderr,
            flush=True,
        )
    return run


def reached(run: Run, threshold: float) -> str:
    for steps, wall, cpu, cfid in run.curve:
        if cfid <= threshold:
            return f"{wall:.0f} s ({cpu:.0f} CPU-s, {steps} steps)"
    return f"not reached in {run.wall:.0f} s"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--runs",
        nargs="+",
        choices=[*recipes.RECIPES, "post-002"],
        default=["dcgan", "wgan-gp", "post-002"],
    )
    p.add_argument(
        "--thresholds",
        nargs="+",
        type=float,
        default=[300.0, 150.0],
        help="cFID levels to reach (default 300 150)",
    )
    p.add_argument(
        "--cap",
        type=float,
        default=300.0,
        help="training seconds (wall) after which a run gives up (default 300)",
    )
    p.add_argument(
        "--n",
        type=int,
        default=500,
        help="samples per cFID evaluation (default 500; compare one n only)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        metavar="K",
        help="steps between evaluations (default: dcgan 50, others 10)",
    )
    p.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="train N steps (within the cap) instead of stopping at the thresholds",
    )
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_speed_arguments(p)
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    for key in ("cap", "n", "eval_every", "threads", "steps"):
        value = getattr(args, key)
        if value is not None and value <= 0:
            p.error(f"--{key.replace('_', '-')} must be positive, not {value}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    speed = speed_options(args)
    try:
        device = resolve_device(args.device)
        images = data.load("mnist", device=device)
        baseline = metrics.evaluate(images.x[: args.n], n=args.n)  # checks n and the weights
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    load_before = load_average()
    results = []
    for name in args.runs:
        print(f"training {name} ...", file=sys.stderr, flush=True)
        run = post_002(device) if name == "post-002" else ours(name, device, speed)
        results.append(race(run, images, device, args))

    loads = " ".join(f"{x:.2f}" for x in load_before), " ".join(f"{x:.2f}" for x in load_average())
    print(f"device: {hardware(device)}")
    print(f"data: {images.name}")
    print(
        f"quality: cFID (gan_helpers.metrics) at n={args.n} every K steps, eval time "
        f"excluded; real vs real at this n: {baseline['cfid_real']:.1f}; "
        f"cap {args.cap:g} s of training"
    )
    print(f"load average (1, 5, 15 min): {loads[0]} before, {loads[1]} after")
    print(f"command: python benchmarks/time_to_quality.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    header = ["run"] + [f"to cFID <= {t:g}" for t in args.thresholds] + ["best cFID"]
    rows = [
        [r.label] + [reached(r, t) for t in args.thresholds] + [f"{min(c[3] for c in r.curve):.0f}"]
        for r in results
    ]
    print(format_table(header, rows, markdown=args.markdown))
    if args.save:
        save(
            args.save,
            {
                "data": images.name,
                "n": args.n,
                "cfid_real": baseline["cfid_real"],
                "thresholds": args.thresholds,
                "cap": args.cap,
                "speed": list(speed),
                "runs": [
                    {
                        "name": r.name,
                        "label": r.label,
                        "curve": r.curve,
                        "reached": {str(t): reached(r, t) for t in args.thresholds},
                    }
                    for r in results
                ],
            },
            device,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
