"""The training tricks of chapter 09, measured: each trick alone on the DCGAN recipe, on
equal steps, over several seeds, judged by cFID, precision and recall.

    python benchmarks/tricks.py [--steps 1000] [--seeds 0 1 2 3 4] [--jobs 2] [--tricks ...]

Each run trains the dcgan recipe with one trick from `TRICKS` below (seed s:
the same initial weights, data order and fixed noise for every trick but those that
replace D) and is judged by `metrics.evaluate` at n = 2,000. Runs are appended to
benchmarks/results/tricks-runs.jsonl as they finish, so an interrupted measurement goes on
where it stopped. The verdict pairs each trick with the plain run of the same seed: the
mean paired difference and its 95% t-interval over the seeds; "helped" or "hurt" only
where the interval excludes 0, else "no difference at this budget". The summary and a plot
go to gan_helpers/results/, where chapter 09 reads them (they ship with the package).
"""

import argparse
import json
import math
import statistics
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import torch
from common import RESULTS, format_table, save

from gan_helpers import data, losses, metrics, models, recipes
from gan_helpers.train import Diverged, Trainer

PACKAGE_RESULTS = Path(__file__).resolve().parent.parent / "gan_helpers" / "results"
RUNS = RESULTS / "tricks-runs.jsonl"
METRICS = ("cfid", "precision", "recall", "kid", "classes", "entropy")
BETTER = {"cfid": -1, "precision": 1, "recall": 1}  # the direction that is better
T95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}


def _no_batchnorm(recipe):
    """The recipe's D without BatchNorm, a fresh one: batch statistics mix the samples, so a
    penalty on each sample's gradient (R1) and spectral norm need a D without them."""
    return models.DCGANDiscriminator(hidden=32, norm=False)


LR = 5e-4  # the dcgan recipe's learning rate, both players
# name: (what it changes, {Trainer argument: value} given the recipe's arguments and steps)
TRICKS = {
    "plain": ("the dcgan recipe as it is", lambda r, steps: {}),
    "label smoothing": (
        "one-sided: real target 0.9, fake target 0",
        lambda r, steps: {"loss": losses.BCE(smoothing=0.1)},
    ),
    "instance noise": (
        "N(0, 0.1^2) on D's inputs, annealed to 0 over the run",
        lambda r, steps: {"noise": losses.InstanceNoise(0.1, steps)},
    ),
    "TTUR": ("G's learning rate a quarter of D's", lambda r, steps: {"lr_g": LR / 4}),
    "dropout in D": (
        "p = 0.3 after every LeakyReLU of D",
        lambda r, steps: {"D": models.with_dropout(r["D"], 0.3)},
    ),
    "no BatchNorm in D": (
        "D without BatchNorm, and nothing else: the control of the three below",
        lambda r, steps: {"D": _no_batchnorm(r)},
    ),
    "spectral norm": (
        "D without BatchNorm, spectral norm on every layer",
        lambda r, steps: {"D": models.with_spectral_norm(_no_batchnorm(r))},
    ),
    "SN, setting C": (
        "spectral norm at SN-GAN's DCGAN setting C: Adam 2e-4, betas (0.5, 0.999)",
        lambda r, steps: {
            "D": models.with_spectral_norm(_no_batchnorm(r)),
            "lr_g": 2e-4,
            "lr_d": 2e-4,
        },
    ),
    "hinge + SN": (
        "the hinge loss, with the spectral-norm D",
        lambda r, steps: {"D": models.with_spectral_norm(_no_batchnorm(r)), "loss": losses.Hinge()},
    ),
    "R1": (
        "gamma/2 * R1 on the real images, gamma 1, on D without BatchNorm",
        lambda r, steps: {"D": _no_batchnorm(r), "loss": losses.BCE(r1=1.0)},
    ),
    "EMA": ("samples from an EMA of G's weights, decay 0.999", lambda r, steps: {"ema": 0.999}),
}
CONTROL = {"spectral norm": "no BatchNorm in D", "SN, setting C": "no BatchNorm in D",
           "hinge + SN": "no BatchNorm in D", "R1": "no BatchNorm in D"}  # fmt: skip


def build(name, seed, steps, images):
    """The dcgan recipe at `seed` with trick `name`: the same G, data order and fixed noise
    as the plain run of that seed, and the same D where the trick keeps it."""
    recipe = recipes.dcgan(seed=seed)
    t = Trainer(images=images, **{**recipe, **TRICKS[name][1](recipe, steps)})
    t.progress = False
    return t


def run_one(task) -> dict:
    """Train the dcgan recipe with one trick at one seed, on one thread; judge it."""
    name, seed, steps = task
    torch.set_num_threads(1)
    trainer = build(name, seed, steps, data.load(size=32))
    start = time.process_time()
    try:
        trainer.train(steps)
        result = metrics.evaluate(trainer, n=2000)
    except Diverged:
        result = {
            "cfid": math.inf,
            "precision": 0.0,
            "recall": 0.0,
            "kid": math.inf,
            "classes": 0,
            "entropy": 0.0,
            "diverged": True,
        }
    return {
        "trick": name,
        "seed": seed,
        "steps": steps,
        "cpu_s": time.process_time() - start,
        **{k: result[k] for k in METRICS},
        "diverged": result.get("diverged", False),
    }


def summarise(rows, tricks) -> dict:
    """Per trick: mean and std of each metric over the seeds, and the paired verdicts."""
    plain = {r["seed"]: r for r in rows if r["trick"] == "plain"}
    out = {}
    for name in tricks:
        mine = [r for r in rows if r["trick"] == name]
        s = {"seeds": len(mine), "cpu_s": statistics.fmean(r["cpu_s"] for r in mine)}
        for k in METRICS:
            values = [r[k] for r in mine]
            s[k] = {
                "mean": statistics.fmean(values),
                "values": values,
                "std": statistics.stdev(values)
                if len(values) > 1 and all(math.isfinite(v) for v in values)
                else math.nan,
            }
        if name != "plain":
            s["verdict"] = {
                k: verdict(
                    [r[k] - plain[r["seed"]][k] for r in mine if r["seed"] in plain], BETTER[k]
                )
                for k in BETTER
            }
        out[name] = s
    return out


def verdict(diffs, better) -> dict:
    """The mean paired difference, its 95% t-interval, and what it says."""
    if len(diffs) < 2 or not all(math.isfinite(d) for d in diffs):
        return {
            "mean": statistics.fmean(diffs) if diffs else math.nan,
            "half_width": math.nan,
            "says": "hurt" if any(math.isinf(d) for d in diffs) else "too few seeds",
        }
    mean = statistics.fmean(diffs)
    half = T95.get(len(diffs), 2.0) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    says = (
        ("helped" if mean * better > 0 else "hurt")
        if abs(mean) > half
        else "no difference at this budget"
    )
    return {"mean": mean, "half_width": half, "says": says}


def plot(summary, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.45 * len(names) + 1.5), sharey=True)
    for ax, k, title in zip(
        axes, ("cfid", "precision", "recall"), ("cFID (lower is better)", "precision", "recall")
    ):
        for i, name in enumerate(names):
            values = [v for v in summary[name][k]["values"] if math.isfinite(v)]
            ax.scatter(values, [i] * len(values), s=14, color="tab:blue", alpha=0.6)
            ax.scatter(
                [statistics.fmean(values)] if values else [], [i], s=60, marker="|", color="black"
            )
        ref = summary["plain"][k]["mean"]
        ax.axvline(ref, color="gray", ls=":", lw=1)
        ax.set(title=title, yticks=range(len(names)), yticklabels=names)
    axes[0].invert_yaxis()
    seeds = summary["plain"]["seeds"]
    fig.suptitle(
        f"each trick alone on the DCGAN recipe: one dot per seed ({seeds} seeds), "
        f"a bar at the mean; the dotted line is the plain recipe's mean"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def table(summary) -> tuple[list, list]:
    header = [
        "trick",
        "cFID mean ± std",
        "precision",
        "recall",
        "classes",
        "CPU s per run",
        "cFID vs plain (95% interval)",
        "verdict",
    ]
    rows = []
    for name, s in summary.items():
        v = s.get("verdict", {}).get("cfid")
        diff = "reference" if v is None else f"{v['mean']:+.1f} ± {v['half_width']:.1f}"
        rows.append(
            [
                name,
                f"{s['cfid']['mean']:.1f} ± {s['cfid']['std']:.1f}",
                f"{s['precision']['mean']:.2f}",
                f"{s['recall']['mean']:.2f}",
                f"{s['classes']['mean']:.1f}",
                f"{s['cpu_s']:.0f}",
                diff,
                "" if v is None else v["says"],
            ]
        )
    return header, rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000, help="training steps per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--tricks", nargs="+", choices=list(TRICKS), default=list(TRICKS))
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each")
    p.add_argument(
        "--out",
        type=Path,
        default=PACKAGE_RESULTS,
        help="where tricks.json and tricks.png go (default gan_helpers/results)",
    )
    args = p.parse_args(argv)
    tricks = ["plain"] + [t for t in args.tricks if t != "plain"]
    done = []
    if RUNS.exists():
        done = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    have = {(r["trick"], r["seed"], r["steps"]) for r in done}
    todo = [
        (t, s, args.steps) for s in args.seeds for t in tricks if (t, s, args.steps) not in have
    ]
    print(f"{len(todo)} runs to do, {len(have)} already in {RUNS}", file=sys.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with get_context("spawn").Pool(args.jobs) as pool:
        for row in pool.imap_unordered(run_one, todo):
            with open(RUNS, "a") as f:
                f.write(json.dumps(row) + "\n")
            done.append(row)
            print(
                f"  {row['trick']:>16} seed {row['seed']}: cFID {row['cfid']:.1f}, "
                f"precision {row['precision']:.2f}, recall {row['recall']:.2f}, "
                f"{row['cpu_s']:.0f} CPU s",
                file=sys.stderr,
                flush=True,
            )
    # the summary covers every trick measured at these steps and seeds, not only this
    # call's, so that re-measuring one trick does not drop the others from tricks.json
    rows = [r for r in done if r["steps"] == args.steps and r["seed"] in args.seeds]
    measured = [t for t in TRICKS if any(r["trick"] == t for r in rows)]
    summary = summarise(rows, measured)
    wall = time.perf_counter() - start
    print(format_table(*table(summary)))
    args.out.mkdir(parents=True, exist_ok=True)
    plot(summary, args.out / "tricks.png")
    save(
        "tricks",
        {
            "steps": args.steps,
            "seeds": args.seeds,
            "n": 2000,
            "wall_s_this_run": round(wall),
            "what": {t: TRICKS[t][0] for t in measured},
            "summary": summary,
            "rows": rows,
        },
        "cpu",
        folder=args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
