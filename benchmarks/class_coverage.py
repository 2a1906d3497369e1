"""Every model name of the command line, trained as `python -m gan_helpers train NAME` trains
it (its recipe, at its chapter's budget), judged by the coverage check most chapters end
with: at least 9 classes above 2%, a normalised class entropy of at least 0.9, and a recall
of at least 0.3.

    python benchmarks/class_coverage.py [--models ...] [--seeds 0 1 2] [--jobs 2] [--save coverage]

With --save, the runs replace their own rows of the results file and keep the others.

A conditional model draws the digits 0-9 in turn, so its coverage holds by construction;
chapter 07's own check (the digit asked for is the digit drawn) is what judges it.
"""

import argparse
import sys
from multiprocessing import get_context

import torch
from common import format_table, merge, save


def run_one(task) -> dict:
    name, seed = task
    torch.set_num_threads(1)
    from common import trainer as build

    from gan_helpers import metrics, recipes

    steps = recipes.STEPS[name]
    trainer = build(name, seed=seed)
    trainer.train(steps)
    r = metrics.evaluate(trainer, n=2000)
    keep = ("cfid", "precision", "recall", "classes", "entropy")
    return {"model": name, "seed": seed, "steps": steps, **{k: r[k] for k in keep}}


def table(rows) -> tuple[list, list]:
    header = ["model", "seed", "steps", "cFID", "recall", "classes", "entropy", "coverage"]
    return header, [
        [
            r["model"],
            r["seed"],
            r["steps"],
            f"{r['cfid']:.1f}",
            f"{r['recall']:.4f}",
            f"{r['classes']}/10",
            f"{r['entropy']:.2f}",
            "passed" if r["passed"] else "**failed**",
        ]
        for r in rows
    ]


def main(argv=None) -> int:
    from gan_helpers import recipes
    from gan_helpers.checks import FULL_COVERAGE

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models", nargs="+", choices=list(recipes.RECIPES), default=list(recipes.RECIPES)
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each")
    p.add_argument("--save", metavar="NAME")
    args = p.parse_args(argv)
    tasks = [(m, s) for m in args.models for s in args.seeds]
    with get_context("spawn").Pool(args.jobs) as pool:
        rows = pool.map(run_one, tasks)
    classes, entropy, recall = FULL_COVERAGE
    for r in rows:
        r["passed"] = r["classes"] >= classes and r["entropy"] >= entropy and r["recall"] >= recall
    print(format_table(*table(rows)))
    if args.save:
        needs = {"classes": classes, "entropy": entropy, "recall": recall}
        order = list(recipes.RECIPES)
        rows = merge(args.save, rows, key=lambda r: (order.index(r["model"]), r["seed"]))
        save(args.save, {"needs": needs, "rows": rows}, "cpu")
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
