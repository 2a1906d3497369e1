"""Sample quality on one budget: every model of the series, and the DCGAN's tricks.

  compare  every recipe (mlp, mlp-bn, mlp-deep, lenet-deconv, dcgan, wgan-gp, cgan) trained
           for the same number of seconds (--seconds, by --clock), then judged by
           gan_helpers.metrics: cFID beside the real-vs-real baseline at the same n, and the
           classes covered. Seconds, not steps: the models differ up to 40x in cost per
           step, and seconds are what a learner pays. Also writes the samples of every
           model on its fixed noise (seed 0) as one PNG, compare.png, in --out.
  tricks   the dcgan recipe plain, and with each trick of source post 003 alone (label
           smoothing, instance noise, TTUR, spectral norm in D, dropout in D), each for the
           same number of steps (--steps) with several seeds; reports the mean and spread
           of cFID and classes covered, and a verdict: "helped" where every seed beat every
           plain seed on cFID, "hurt" where every seed did worse, else "no clear effect".
           Steps, not seconds: the cost per step barely changes, and instance noise anneals
           over a known number of steps. Writes tricks.png (seed 0 of each) in --out.

    python benchmarks/quality.py compare [--seconds S] [--clock cpu|wall] [--models ...]
    python benchmarks/quality.py tricks [--steps N] [--seeds 0 1 2] [--tricks ...]
        common: [--threads T] [--n N] [--device cpu|auto] [--out DIR] [--markdown]
"""
import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from gan_helpers import compare, data, metrics, recipes
from gan_helpers.device import resolve_device
from gan_helpers.errors import GanError


def save_grids(named_images: dict, path: Path) -> None:
    """The grids in rows of four, in one PNG."""
    fig = compare.grid_figure(named_images)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def header_lines(args, device, images, what: str) -> list[str]:
    load = " ".join(f"{x:.2f}" for x in compare.load_average()) or "n/a"
    return [f"hardware: {compare.hardware(device)}",
            f"budget: {what}; metrics at n={args.n} samples; {compare.data_note(images)}",
            f"load average (1, 5, 15 min) at the end: {load}",
            f"command: python benchmarks/quality.py {' '.join(sys.argv[1:])}"]


def run_compare(args, images, device) -> list[str]:
    rows = []
    for name in args.models:
        print(f"training {name} for {args.seconds:g} {args.clock} seconds ...", file=sys.stderr,
              flush=True)
        rows.append(compare.compare_model(name, images, args.seconds, seed=0, clock=args.clock,
                                          n=args.n))
        print("  " + metrics.describe(rows[-1], name), file=sys.stderr, flush=True)
    save_grids({f"{r['model']} ({r['steps']} steps)": r["samples"] for r in rows},
               args.out / "compare.png")
    what = (f"{args.seconds:g} {args.clock} seconds of training per model, seed 0, each "
            f"recipe's own settings")
    return [*header_lines(args, device, images, what), "",
            compare.format_table(*compare.compare_table(rows), args.markdown), "",
            f"grids on each model's fixed noise (seed 0): {args.out / 'compare.png'}"]


def run_tricks(args, images, device) -> list[str]:
    rows = []
    for name in args.tricks:
        for seed in args.seeds:
            print(f"{name}, seed {seed}: {args.steps} steps ...", file=sys.stderr, flush=True)
            rows.append(compare.run_trick(compare.TRICKS[name], images, args.steps, seed=seed,
                                          n=args.n))
            r = rows[-1]
            print(f"  cFID {r['cfid']:.2f}, {r['classes_covered']}/10 classes, "
                  f"{r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU", file=sys.stderr, flush=True)
    first = args.seeds[0]
    save_grids({r["trick"]: r["samples"] for r in rows if r["seed"] == first},
               args.out / "tricks.png")
    summary = compare.summarise(rows)
    cpu = {n: sum(r["cpu_s"] for r in rows if r["trick"] == n) / len(args.seeds)
           for n in summary}
    baseline = rows[0].get("cfid_real_baseline")
    what = (f"dcgan recipe, {args.steps} steps (batch 64) per run, seeds "
            f"{', '.join(map(str, args.seeds))}")
    return [*header_lines(args, device, images, what),
            f"real-vs-real cFID baseline at n={args.n}: {baseline:.2f}", "",
            compare.format_table(*compare.tricks_table(summary), args.markdown), "",
            "CPU seconds per run (training and metrics, mean over seeds): "
            + ", ".join(f"{n} {s:.0f}" for n, s in cpu.items()),
            f"grids on the fixed noise of seed {first}: {args.out / 'tricks.png'}"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (default 1: steady on a shared CPU)")
    common.add_argument("--n", type=int, default=metrics.N_FULL,
                        help=f"samples for the metrics (default {metrics.N_FULL})")
    common.add_argument("--device", default="cpu", choices=["cpu", "auto", "cuda", "mps"])
    common.add_argument("--out", type=Path, default=Path("runs/quality"),
                        help="folder for the PNGs (default runs/quality)")
    common.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", parents=[common], help="every model, equal seconds")
    c.add_argument("--seconds", type=float, default=60.0,
                   help="training seconds per model (default 60)")
    c.add_argument("--clock", default="cpu", choices=list(compare.CLOCKS),
                   help="cpu (default): this process's CPU seconds, steady when other jobs "
                        "share the machine; wall: what you wait, and the one to use on a GPU")
    c.add_argument("--models", nargs="+", choices=list(recipes.RECIPES),
                   default=list(recipes.RECIPES))
    t = sub.add_parser("tricks", parents=[common], help="dcgan plus one trick, equal steps")
    t.add_argument("--steps", type=int, default=400, help="steps per run (default 400)")
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--tricks", nargs="+", choices=list(compare.TRICKS),
                   default=list(compare.TRICKS))
    args = p.parse_args(argv)
    for key in ("threads", "n", "seconds", "steps"):
        value = getattr(args, key, None)
        if value is not None and value <= 0:
            p.error(f"--{key} must be positive, not {value}")
    if args.command == "tricks" and "plain" not in args.tricks:
        p.error("--tricks must include plain: it is the reference")
    if args.command == "tricks" and len(args.seeds) < 2:
        p.error("--seeds needs at least two seeds to show a spread")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        if getattr(args, "clock", "wall") == "cpu" and device.type != "cpu":
            raise GanError("--clock cpu counts CPU seconds; use --clock wall on a GPU.")
        with contextlib.redirect_stdout(io.StringIO()):  # the offline note; said in the header
            images = data.load("mnist", device=device)
        if len(images) < 2 * args.n:
            raise GanError(f"--n {args.n} needs {2 * args.n} real images; pass a smaller --n.")
        start = time.perf_counter()
        lines = (run_compare if args.command == "compare" else run_tricks)(args, images, device)
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    lines.append(f"total wall time {time.perf_counter() - start:.0f} s")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
