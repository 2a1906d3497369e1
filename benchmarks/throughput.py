"""Training throughput: gan_helpers' loop against each source post's own loop.

For every model of the five source posts, the same generator and discriminator classes
(built from `gan_helpers.recipes`, with the same seed) are trained twice in one run, on
one device, with the post's batch size in both loops:

  ours       `Trainer(images=images, **recipe).train(steps)`: the images
             are one normalised tensor on the device, batches are drawn by permutation,
             D returns logits for BCE-with-logits, and the G step reuses the fake batch
             of the D step.
  post loop  the post's own loop, rebuilt in `post_loops.py`, one function per post:
             torchvision MNIST through a `DataLoader` with the post's per-image
             transforms, D wrapped as `nn.Sequential(D, nn.Sigmoid())` with `nn.BCELoss`,
             and the post's own step structure (detach or not, fresh noise for the G step
             or not, retain_graph).

Only the loop differs, so the ratio is what the loop costs or saves. Where a recipe
has left its post's game (mlp-deep and lenet-deconv train critics with a gradient
penalty), both loops use the post's D and the BCE game, one D step per G step. The models are
the course's own: the DCGAN has width 32 where post 002 used 128, and a wider model
spends more of each step in convolutions, which no loop saves, so its ratio would be
lower. img/s counts the real images D sees. Sample grids, prints and weight files are
left out of both loops.

Both loops get the same warm-up steps, then timed blocks of each alternate
(`--repeats`), so that load from other processes hits both alike; the table gives the
median of each. `--clock cpu` counts this process's CPU seconds instead of wall seconds:
with `--threads 1` it hardly moves when other jobs share the cores.

`--bf16`, `--channels-last`, `--compile` and `--cudnn-benchmark` turn on the Trainer's
speed options in our loop only (the post loops stay as the posts wrote them), and
`--ours-batch B` gives our loop another batch size than the post's; the table then shows
both batch sizes, since a bigger batch buys img/s but not necessarily digits sooner
(time_to_quality.py judges that).

    python benchmarks/throughput.py [--device auto|cpu|cuda] [--seconds S | --steps N]
        [--warmup N] [--repeats R] [--threads T] [--clock wall|cpu]
        [--bf16] [--channels-last] [--compile] [--cudnn-benchmark] [--ours-batch B]
        [--models mlp mlp-bn ...] [--markdown] [--save NAME]
"""

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

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
from post_loops import loop_000, loop_001, loop_002, loop_003, loop_004

from gan_helpers import data, losses, models, recipes
from gan_helpers.env import GanError, resolve_device

SEED = 0


# --- what is measured ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    model: str  # the gan_helpers recipe
    post: str  # the source post whose loop is rebuilt
    batch_size: int  # the post's batch size, used by both loops
    post_loop: Callable  # (G, D, device, batch_size) -> iterator of images per step
    target: float  # the ratio issue 7 asks for on the 2-core CPU
    post_d: Optional[Callable] = None  # the post's D, where the recipe has changed it


CASES = {
    c.model: c
    for c in [
        Case("mlp", "001", 128, loop_001, 5.0),
        Case("mlp-bn", "000", 128, loop_000, 5.0),
        Case("mlp-deep", "003", 64, loop_003, 5.0),
        Case("lenet-deconv", "004", 32, loop_004, 1.5, lambda: models.LeNetDiscriminator()),
        Case("dcgan", "002", 128, loop_002, 1.5),
    ]
}


def ours_runner(case: Case, device, batch_size, speed) -> Callable[[int], int]:
    """run(steps) -> images seen, through gan_helpers' Trainer with the `speed` options."""
    # Every post plays the BCE game with one D step per G step. Where a recipe trains a
    # critic instead (mlp-deep, lenet-deconv), our loop plays the post's game here, on the
    # post's D, so that only the loop differs.
    changes = dict(batch_size=batch_size, device=device, loss=losses.BCE(), n_critic=1)
    if case.post_d:
        changes["D"] = case.post_d()
    images = data.load(device=device, size=recipes.SIZE[case.model])
    t = trainer(case.model, images, seed=SEED, options=speed, **changes)

    def run(steps):
        t.train(steps)
        return steps * batch_size

    return run


def post_runner(case: Case, device) -> Callable[[int], int]:
    """run(steps) -> images seen, through the post's own loop, on the same model classes."""
    pair = recipes.get(case.model)(seed=SEED)
    G, D = pair["G"], case.post_d() if case.post_d else pair["D"]
    steps = case.post_loop(G.to(device), D.to(device), device, case.batch_size)
    return lambda n: sum(next(steps) for _ in range(n))


CLOCKS = {
    "wall": time.perf_counter,  # the seconds a learner waits
    "cpu": time.process_time,
}  # this process's CPU seconds: with --threads 1, barely
# moved by other processes sharing the cores


@dataclass(frozen=True)
class Stopwatch:
    device: torch.device
    clock: Callable[[], float]

    def time(self, run, steps) -> tuple[int, float]:
        """(images, seconds) for `steps` steps, with the device's queue drained on both ends."""
        synchronize(self.device)
        tick = self.clock()
        n_images = run(steps)
        synchronize(self.device)
        return n_images, self.clock() - tick


@dataclass
class Result:
    case: Case
    ours_batch: int  # our loop's batch size: the post's unless --ours-batch
    ours: float  # median images per second over the repeats
    post: float

    @property
    def ratio(self) -> float:
        return self.ours / self.post


def measure(case: Case, images, watch: Stopwatch, args) -> Result:
    """Equal warm-up for both loops, then `repeats` timed blocks of each, alternating."""
    ours_batch = args.ours_batch or case.batch_size
    runs = {
        "ours": ours_runner(case, watch.device, ours_batch, speed_options(args)),
        "post": post_runner(case, watch.device),
    }
    steps = {}
    for name, run in runs.items():
        run(args.warmup)  # first calls: allocations, the DataLoader's first iterator
        if args.steps:
            steps[name] = args.steps
        else:  # size the blocks to about args.seconds, from a probe as long as the warm-up
            _, probe = watch.time(run, args.warmup)
            steps[name] = max(1, round(args.seconds * args.warmup / probe))
    rates = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            n_images, seconds = watch.time(run, steps[name])
            rates[name].append(n_images / seconds)
    return Result(
        case, ours_batch, statistics.median(rates["ours"]), statistics.median(rates["post"])
    )


# --- the report ---------------------------------------------------------------------------


def describe_load(before: tuple, after: tuple, load_robust: bool) -> list[str]:
    """The load during the run, and a warning where other jobs may have skewed it."""
    if not before:
        return []
    before_, after_ = (" ".join(f"{x:.2f}" for x in load) for load in (before, after))
    lines = [f"load average (1, 5, 15 min): {before_} before, {after_} after"]
    if max(before[0], after[0]) > (os.cpu_count() or 1) and not load_robust:
        lines.append(
            "warning: more runnable jobs than cores. Threads that wait on each other "
            "then stall, so multi-threaded steps slow down far more than the "
            "single-threaded DataLoader: rerun on an idle machine, or compare with "
            "--threads 1 --clock cpu."
        )
    return lines


def table_rows(results, device, unit) -> tuple[list[str], list[list[str]]]:
    """Targets are issue 7's, for the CPU; a CPU run marks the GPU figures not measured."""
    on_cpu = device.type == "cpu"
    header = [
        "model",
        "post",
        "batch ours/post",
        f"{unit} ours",
        f"{unit} post loop",
        "ratio",
        "target",
        "met?",
    ] + (["GPU"] if on_cpu else [])
    rows = []
    for r in results:
        c = r.case
        target, met = (
            (f"{c.target:.1f}x", "yes" if r.ratio >= c.target else "no")
            if on_cpu
            else ("n/a (CPU)", "n/a")
        )
        batch = f"{r.ours_batch}/{c.batch_size}"
        rows.append(
            [
                c.model,
                c.post,
                batch,
                f"{r.ours:,.0f}",
                f"{r.post:,.0f}",
                f"{r.ratio:.2f}x",
                target,
                met,
            ]
            + (["not measured"] if on_cpu else [])
        )
    return header, rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--seconds", type=float, default=3.0, help="length of each timed block (default 3)"
    )
    budget.add_argument("--steps", type=int, help="steps in each timed block, instead")
    p.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="untimed steps before timing, the same for both loops (default 10)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed blocks per loop, alternating ours and post; the median is reported (default 3)",
    )
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument(
        "--clock",
        default="wall",
        choices=list(CLOCKS),
        help="wall: time.perf_counter (default); cpu: time.process_time, this "
        "process's CPU seconds, for a CPU shared with other jobs (use it "
        "with --threads 1: idle threads spinning would count too)",
    )
    add_speed_arguments(p)
    p.add_argument(
        "--ours-batch",
        type=int,
        metavar="B",
        help="our loop's batch size (default: the post's, as in its loop)",
    )
    p.add_argument("--models", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    for key in ("seconds", "steps", "warmup", "repeats", "threads", "ours_batch"):
        value = getattr(args, key)
        if value is not None and value <= 0:
            p.error(f"--{key} must be positive, not {value}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        if args.clock == "cpu" and device.type != "cpu":
            raise GanError("--clock cpu counts CPU seconds; use it with --device cpu.")
        images = data.load("mnist", device=device)
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    watch = Stopwatch(device, CLOCKS[args.clock])
    load_before = load_average()
    results = []
    for model in args.models:
        case = CASES[model]
        print(
            f"measuring {model} (post {case.post}, batch {case.batch_size}) ...",
            file=sys.stderr,
            flush=True,
        )
        results.append(measure(case, images, watch, args))

    unit = "img/s" if args.clock == "wall" else "img/CPU-s"
    budget = f"{args.steps} steps" if args.steps else f"about {args.seconds:g} {args.clock} s"
    print(f"device: {hardware(device)}")
    print(f"data: {images.name}")
    print(
        f"timing: {args.warmup} warm-up steps, then {args.repeats} timed blocks of {budget} "
        f"per loop, alternating; median {unit}, {args.clock} clock"
    )
    speed = speed_options(args)
    print(f"our loop's speed options: {', '.join(speed) or 'none (the defaults)'}")
    load_robust = args.clock == "cpu" and torch.get_num_threads() == 1
    for line in describe_load(load_before, load_average(), load_robust):
        print(line)
    print(f"command: python benchmarks/throughput.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print(format_table(*table_rows(results, device, unit), markdown=args.markdown))
    if args.save:
        save(
            args.save,
            {
                "data": images.name,
                "clock": args.clock,
                "unit": unit,
                "speed": list(speed),
                "rows": [
                    {
                        "model": r.case.model,
                        "post": r.case.post,
                        "batch_ours": r.ours_batch,
                        "batch_post": r.case.batch_size,
                        "ours": r.ours,
                        "post_loop": r.post,
                        "ratio": r.ratio,
                    }
                    for r in results
                ],
            },
            device,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
