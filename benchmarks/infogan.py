"""InfoGAN's codes, measured over seeds: how well the categorical code matches the digit
classes, and what the two continuous codes move, against the plain DCGAN's best single
coordinates of z.

    python benchmarks/infogan.py [--seeds 0 1 2 3 4] [--jobs 2] [--save infogan]

Purity is the share of samples whose digit, judged by the metrics' classifier, is the one
their categorical code stands for under the best one-to-one matching of codes to digits
(10% for a code that means nothing). The walk measures are chapter 06's: the mean change
of slant and ink, and the share of digits whose class changes, as one input moves from
-2.5 to +2.5.
"""

import argparse
import sys
from multiprocessing import get_context

import torch
from common import format_table, save


def run_one(task) -> dict:
    seed, steps = task
    torch.set_num_threads(1)
    from common import trainer as build

    from gan_helpers import explore, metrics

    trainer = build("infogan", seed=seed)
    trainer.train(steps)
    G = trainer.generator.eval()
    purity, matching = explore.code_purity(G, n=100)
    r = metrics.evaluate(trainer, n=2000)
    effects = explore.walk_effects(G, [10, 11], n=64)
    return {
        "seed": seed,
        "steps": steps,
        "purity": purity,
        "matching": matching,
        "cfid": r["cfid"],
        "classes": r["classes"],
        "recall": r["recall"],
        "codes": {str(d): e for d, e in effects.items()},
        "seconds": trainer.seconds,
    }


def dcgan_best_coordinates() -> dict:
    """The shipped DCGAN's coordinates that move slant and ink most, as chapter 06 finds them."""
    from gan_helpers import explore
    from gan_helpers.checkpoint import load_generator

    G = load_generator("dcgan")
    effects = explore.walk_effects(G, range(G.z_dim), n=64)
    out = {}
    for m in ("slant", "ink"):
        d = max(effects, key=lambda k: effects[k][m])
        out[m] = {"dim": d, **effects[d]}
    return out


def main(argv=None) -> int:
    from gan_helpers import recipes

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=recipes.get("infogan").steps)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--save", metavar="NAME")
    args = p.parse_args(argv)
    with get_context("spawn").Pool(args.jobs) as pool:
        rows = sorted(
            pool.map(run_one, [(s, args.steps) for s in args.seeds]), key=lambda r: r["seed"]
        )
    torch.set_num_threads(1)
    best = dcgan_best_coordinates()
    print(
        format_table(
            [
                "seed",
                "purity",
                "cFID",
                "classes",
                "c1 slant / ink / identity",
                "c2 slant / ink / identity",
            ],
            [
                [
                    r["seed"],
                    f"{r['purity']:.0%}",
                    f"{r['cfid']:.1f}",
                    r["classes"],
                    *(
                        f"{e['slant']:.2f} / {e['ink']:.3f} / {e['identity']:.0%}"
                        for e in r["codes"].values()
                    ),
                ]
                for r in rows
            ],
        )
    )
    for m, e in best.items():
        print(
            f"shipped DCGAN, the coordinate that moves {m} most: z[{e['dim']}], slant "
            f"{e['slant']:.2f}, ink {e['ink']:.3f}, identity {e['identity']:.0%}"
        )
    if args.save:
        save(args.save, {"steps": args.steps, "rows": rows, "dcgan_best": best}, "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
