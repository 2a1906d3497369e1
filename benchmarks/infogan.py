"""InfoGAN's codes, measured over seeds: how soon and how well the categorical code becomes
the digit, for the `infogan` recipe, for the same recipe with its categorical code fed at
scale 1 (the recipe before, whose code settles on some seeds for a mix of look-alike
digits), and with the information term weighted 5 (the first recipe's weight), and what the
two continuous codes move, against the shipped DCGAN's best single coordinates of z.

    python benchmarks/infogan.py [--seeds 0 1 2] [--arms recipe] [--steps 3000] [--save infogan]

Purity is the share of samples whose digit, judged by the course's classifier, is the one
their categorical code stands for under the best one-to-one matching of codes to digits
(10% for a code that means nothing), at n = 100 per code, every `--every` steps. The walk
measures are chapter 06's: the mean change of slant and ink, and the share of digits whose
class changes, as one input moves from -2.5 to +2.5. The summary also ships with the package
(gan_helpers/results/infogan.json), where chapter 08 reads the curves. Each run is appended
to benchmarks/results/infogan-runs.jsonl as it ends, so that runs made by several calls (one
seed each, in parallel) and interrupted measurements add up; `--save` summarises every run
in it at these steps and seeds.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from common import RESULTS, format_table, save, trainer

from gan_helpers import explore, losses, metrics, recipes
from gan_helpers.checkpoint import load_generator

PACKAGE_RESULTS = Path(__file__).resolve().parent.parent / "gan_helpers" / "results"
# each arm's changes to the recipe at a seed; "code at scale 1" is the recipe before the code
# was scaled, with the same initial weights
ARMS = {
    "recipe": lambda seed: {},
    "code at scale 1": lambda seed: {"G": recipes.infogan(seed, code_scale=1.0)["G"]},
    "weight 5": lambda seed: {"loss": losses.InfoGAN(weight=5.0)},
}
RUNS = RESULTS / "infogan-runs.jsonl"


def curve(arm, seed, steps, every) -> dict:
    """Train one arm at one seed on one thread, with its purity every `every` steps."""
    torch.set_num_threads(1)
    t = trainer("infogan", seed=seed, **ARMS[arm](seed))
    start, points = time.process_time(), []
    while t.step < steps:
        t.train(min(every, steps - t.step))
        points.append([t.step, explore.code_purity(t.generator, n=100)[0]])
        print(f"  {arm} seed {seed} step {t.step}: purity {points[-1][1]:.2f}", file=sys.stderr)
    G = t.generator.eval()
    r = metrics.evaluate(G, n=2000)
    effects = explore.walk_effects(G, [G.n_cat, G.n_cat + 1], n=64)
    return {
        "arm": arm, "seed": seed, "steps": steps, "cpu_s": time.process_time() - start,
        "purity": points, "final_purity": points[-1][1], "matching": explore.code_purity(G)[1],
        **{k: r[k] for k in ("cfid", "recall", "classes", "entropy")},
        "codes": {f"c{i + 1}": effects[d] for i, d in enumerate(effects)},
    }  # fmt: skip


def dcgan_best_coordinates() -> dict:
    """The shipped DCGAN's coordinates that move slant and ink most, as chapter 06 finds them."""
    G = load_generator("dcgan")
    effects = explore.walk_effects(G, range(G.z_dim), n=64)
    best = {m: max(effects, key=lambda d: effects[d][m]) for m in ("slant", "ink")}
    return {m: {"dim": d, **effects[d]} for m, d in best.items()}


def table(rows) -> tuple[list, list]:
    header = ["arm", "seed", "steps", "purity", "cFID", "recall", "classes"]
    header += [f"c{i} slant / ink / class changed" for i in (1, 2)]
    walk = lambda e: f"{e['slant']:.2f} / {e['ink']:.3f} / {e['identity']:.0%}"
    return header, [
        [r["arm"], r["seed"], r["steps"], f"{r['final_purity']:.0%}", f"{r['cfid']:.1f}",
         f"{r['recall']:.2f}", f"{r['classes']}/10", walk(r["codes"]["c1"]), walk(r["codes"]["c2"])]
        for r in rows
    ]  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=recipes.STEPS["infogan"])
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--save", metavar="NAME")
    args = p.parse_args(argv)
    done = [json.loads(line) for line in RUNS.read_text().splitlines()] if RUNS.exists() else []
    have = {(r["arm"], r["seed"], r["steps"]) for r in done}
    for arm in args.arms:
        for seed in args.seeds:
            if (arm, seed, args.steps) not in have:
                done.append(curve(arm, seed, args.steps, args.every))
                with open(RUNS, "a") as f:
                    f.write(json.dumps(done[-1]) + "\n")
    rows = [r for r in done if r["steps"] == args.steps and r["seed"] in args.seeds]
    rows.sort(key=lambda r: (list(ARMS).index(r["arm"]), r["seed"]))
    print(format_table(*table(rows)))
    if args.save:
        payload = {"steps": args.steps, "seeds": args.seeds, "rows": rows}
        path = save(args.save, payload | {"dcgan": dcgan_best_coordinates()}, "cpu")
        PACKAGE_RESULTS.mkdir(exist_ok=True)
        (PACKAGE_RESULTS / "infogan.json").write_text(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
