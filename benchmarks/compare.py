"""Every model of the series under one budget: the same seconds of training each, on one
thread, seed 0, each recipe with its own settings; judged at n = 2,000.

    python benchmarks/compare.py [--seconds 60] [--models ...] [--save compare-cpu]

Seconds, not steps: the models differ up to forty-fold in cost per step, and seconds are
what a learner pays. One thread, so that a second of one model buys the same work as a
second of the next. Each recipe's instance noise anneals over its own horizon, as in its
chapter, however long the budget is.
"""

import argparse
import sys

import torch
from common import format_table, hardware, save

from gan_helpers import data, metrics, recipes
from gan_helpers.models import n_params
from gan_helpers.train import Trainer


def measure(name, images, seconds) -> dict:
    trainer = Trainer.from_recipe(name, images, seed=0)
    trainer.progress = False
    trainer.train(seconds=seconds)
    r = metrics.evaluate(trainer, n=2000)
    print(metrics.describe(r, name), file=sys.stderr, flush=True)
    return {
        "model": name,
        "post": recipes.get(name).source,
        "chapter": recipes.get(name).chapter,
        "params": n_params(trainer.G, trainer.D),
        "steps": trainer.step,
        "images_seen": trainer.history.images,
        "seconds": trainer.history.seconds,
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
    rows = []
    for name in args.models:
        rows.append(measure(name, images, args.seconds))
    print(f"{hardware()}; {args.seconds:g} s of training per model; {images.name}")
    print(format_table(*table(rows)))
    if args.save:
        save(args.save, {"seconds": args.seconds, "data": images.name, "rows": rows}, "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
