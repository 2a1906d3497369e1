"""Every model of the series under one budget: the same seconds of training each, on one
thread, seed 0, each recipe with its own settings; judged at n = 2,000.

    python benchmarks/compare.py [--seconds 60] [--models ...] [--save compare-cpu]

Seconds, not steps: the models differ up to forty-fold in cost per step, and seconds are
what a learner pays. Each model's seconds become steps once (`common.train_for_seconds`
times its first steps), and the table prints them. One thread, so that a second of one
model buys the same work as a second of the next.
"""

import argparse
import sys

import torch
from common import format_table, hardware, save, train_for_seconds, trainer

from gan_helpers import data, metrics, recipes
from gan_helpers.models import n_params

# each model's source post and chapter
WHERE = {"mlp": ("001", "01"), "mlp-bn": ("000", "02"), "mlp-deep": ("003", "09"),
         "lenet-deconv": ("004", "03"), "dcgan": ("002/003", "04"), "wgan-gp": ("002/003", "05"),
         "cgan": ("003", "07"), "infogan": ("-", "08")}  # fmt: skip


def measure(name, seconds) -> dict:
    t = trainer(name, seed=0)
    train_for_seconds(t, seconds)
    r = metrics.evaluate(t, n=2000)
    print(metrics.describe(r, name), file=sys.stderr, flush=True)
    return {
        "model": name,
        "post": WHERE[name][0],
        "chapter": WHERE[name][1],
        "params": n_params(t.G, t.D),
        "steps": t.step,
        "images_seen": t.images_seen,
        "seconds": t.seconds,
        **{
            k: r[k]
            for k in ("cfid", "cfid_real", "kid", "precision", "recall", "classes", "entropy")
        },
    }


def table(rows) -> tuple[list, list]:
    header = [
        "model",
        "post",
        "chapter",
        "weights (G+D)",
        "steps",
        "images seen",
        "cFID",
        "precision",
        "recall",
        "classes",
    ]
    return header, [
        [
            r["model"],
            r["post"],
            r["chapter"],
            f"{r['params']:,}",
            f"{r['steps']:,}",
            f"{r['images_seen']:,}",
            f"{r['cfid']:.1f}",
            f"{r['precision']:.2f}",
            f"{r['recall']:.2f}",
            f"{r['classes']}/10",
        ]
        for r in rows
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="training seconds per model")
    p.add_argument(
        "--models",
        nargs="+",
        choices=list(recipes.RECIPES),
        default=[n for n in recipes.RECIPES if n != "infogan"],
    )
    p.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    images = data.load()
    rows = [measure(name, args.seconds) for name in args.models]
    print(f"{hardware()}; {args.seconds:g} s of training per model; {images.name}")
    print(format_table(*table(rows)))
    if args.save:
        save(args.save, {"seconds": args.seconds, "data": images.name, "rows": rows}, "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
