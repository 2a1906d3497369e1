"""The training tricks of chapter 09, measured: each trick alone on the DCGAN recipe, on
equal steps, over several seeds, judged by cFID, precision and recall.

    python benchmarks/tricks.py [--steps 1000] [--seeds 0 1 2 3 4] [--jobs 2] [--tricks ...]

Each run trains the dcgan recipe with one trick from `TRICKS` below (seed s:
the same initial weights, data order and fixed noise for every trick but those that
replace D) and is judged by `metrics.evaluate` at n = 2,000. Runs are appended to
benchmarks/results/tricks-runs.jsonl as they finish, so an interrupted measurement goes on
where it stopped. The verdict pairs each trick with the plain run of the same seed, and a
trick that also removes D's BatchNorm with its `CONTROL` as well (the same D without the
trick): the mean paired difference, its 95% t-interval over the seeds, and the two-sided
p-value of the paired t-test. Many comparisons at 95% exclude 0 about once in twenty by
chance alone, so the verdict ("helped", "hurt") is Holm's adjustment over every comparison
in the table; elsewhere it says "no difference shown". The summary and a plot go to
gan_helpers/results/, where chapter 09 reads them (they ship with the package).
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
ALPHA = 0.05  # the error rate of the whole table, after Holm's adjustment


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
    "no BatchNorm, setting C": (
        "D without BatchNorm at SN-GAN's setting C, no spectral norm: the control of the next",
        lambda r, steps: {"D": _no_batchnorm(r), "lr_g": 2e-4, "lr_d": 2e-4},
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
CONTROL = {"spectral norm": "no BatchNorm in D", "SN, setting C": "no BatchNorm, setting C",
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
    """Per trick: mean and std of each metric over the seeds, its paired comparisons with
    plain ("verdict") and with its control ("against_control"), and Holm's verdicts."""
    by = {name: {r["seed"]: r for r in rows if r["trick"] == name} for name in tricks}
    out = {}
    for name in tricks:
        mine = list(by[name].values())
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
        for key, reference in (("verdict", "plain"), ("against_control", CONTROL.get(name))):
            if name != "plain" and reference in by:
                s[key] = {"reference": reference} | {
                    k: paired(by[name], by[reference], k, BETTER[k]) for k in BETTER
                }
        out[name] = s
    family = [
        v[k] for s in out.values() for key in ("verdict", "against_control") if key in s
        for v in [s[key]] for k in BETTER if math.isfinite(v[k]["p"])
    ]  # fmt: skip
    for v, p in zip(family, holm([v["p"] for v in family])):
        v["p_holm"] = p
        v["says"] = v["direction"] if p < ALPHA else "no difference shown"
    return out


def paired(mine: dict, reference: dict, k: str, better: int) -> dict:
    """Metric k of the trick minus the reference's, seed by seed: the mean, its 95%
    t-interval, the paired t-test's two-sided p, and the direction of the mean."""
    diffs = [mine[seed][k] - reference[seed][k] for seed in mine if seed in reference]
    finite = len(diffs) > 1 and all(math.isfinite(d) for d in diffs)
    mean = statistics.fmean(diffs) if diffs else math.nan
    out = {"mean": mean, "half_width": math.nan, "p": math.nan, "p_holm": math.nan}
    if not finite:  # a diverged run, or too few seeds: no test, and it says so
        diverged = sum(math.isinf(d) for d in diffs)
        out["says"] = f"diverged on {diverged} seed(s)" if diverged else "too few seeds"
        out["direction"] = out["unadjusted"] = out["says"]
        return out
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    df = len(diffs) - 1
    out["half_width"] = t_quantile(0.05, df) * se
    out["p"] = t_two_sided_p(mean / se, df) if se > 0 else (0.0 if mean else 1.0)
    out["direction"] = "helped" if mean * better > 0 else "hurt"
    out["unadjusted"] = out["direction"] if out["p"] < 0.05 else "no difference shown"
    return out


def holm(p: list) -> list:
    """Holm's step-down adjustment: the i-th smallest of m p-values is multiplied by
    m - i + 1 (i from 1), and the adjusted values are made non-decreasing in that order.
    Rejecting where the adjusted p < alpha keeps the chance of any false verdict in the
    whole table below alpha."""
    order = sorted(range(len(p)), key=p.__getitem__)
    adjusted, running = [math.nan] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom: I_x(df/2, 1/2) at
    x = df / (df + t^2), the regularised incomplete beta function."""
    return _betainc(df / 2, 0.5, df / (df + t * t))


def t_quantile(alpha: float, df: int) -> float:
    """The t with P(|T| >= t) = alpha (2.776 for alpha 0.05 and df 4), by bisection."""
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > alpha else (lo, mid)
    return (lo + hi) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """I_x(a, b), by its continued fraction (modified Lentz), on the side where it
    converges fast."""
    if x <= 0.0 or x >= 1.0:
        return max(0.0, min(1.0, x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(log_front + a * math.log(x) + b * math.log(1 - x)) / a
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)  # > 0 on this side
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        terms = (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        )
        for term in terms:
            d = 1 + term * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + term / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return front * h


def plot(summary, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.45 * len(names) + 1.8), sharey=True)
    for ax, k, title in zip(
        axes, ("cfid", "precision", "recall"), ("cFID (lower is better)", "precision", "recall")
    ):
        for i, name in enumerate(names):
            values = [v for v in summary[name][k]["values"] if math.isfinite(v)]
            ax.scatter(values, [i] * len(values), s=14, color="tab:blue", alpha=0.6)
            ax.scatter(
                [statistics.fmean(values)] if values else [], [i], s=60, marker="|", color="black"
            )
            control = summary[name].get("against_control", {}).get("reference")
            if control:  # where the trick's own control sits
                ax.scatter([summary[control][k]["mean"]], [i], s=40, marker="x", color="tab:red")
        ref = summary["plain"][k]["mean"]
        ax.axvline(ref, color="gray", ls=":", lw=1)
        ax.set(title=title, yticks=range(len(names)), yticklabels=names)
    axes[0].set_xscale("log")  # a failed arm sits ten times further out than the rest
    axes[0].invert_yaxis()
    seeds = summary["plain"]["seeds"]
    fig.suptitle(
        f"each trick alone on the DCGAN recipe: one dot per seed ({seeds} seeds), a bar at the "
        f"mean; the dotted line is the plain recipe's mean,\na red x the mean of the trick's "
        f"control (the same D without BatchNorm, without the trick)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def describe(v: dict) -> str:
    """The verdicts of one comparison, short: the Holm-adjusted ones, then any that only the
    unadjusted 95% level shows."""
    names = {"cfid": "cFID", "precision": "precision", "recall": "recall"}
    said = [f"{names[k]} {v[k]['says']}" for k in BETTER if v[k]["says"] != "no difference shown"]
    loose = [
        f"{names[k]} {v[k]['unadjusted']}"
        for k in BETTER
        if v[k]["says"] == "no difference shown" and v[k]["unadjusted"] != v[k]["says"]
    ]
    text = ", ".join(said) or "no difference shown"
    return text + (f" (at 95% unadjusted only: {', '.join(loose)})" if loose else "")


def table(summary, what=None) -> tuple[list, list]:
    """One row per trick: its means, then its comparisons with plain and with its control
    (the cFID difference and 95% interval, Holm's p, and every metric's verdict)."""
    header = ["trick", *(["what"] if what else []), "cFID mean ± std", "precision", "recall",
              "classes", "CPU s per run", "cFID vs plain (95%), Holm p", "verdict vs plain",
              "cFID vs its control (95%), Holm p", "verdict vs its control"]  # fmt: skip
    rows = []
    for name, s in summary.items():
        cells = []
        for key in ("verdict", "against_control"):
            v = s.get(key)
            if v is None:
                cells += ["reference" if name == "plain" and key == "verdict" else "", ""]
                continue
            c = v["cfid"]
            control = "" if key == "verdict" else f"{v['reference']}: "
            cells += [
                f"{control}{c['mean']:+.1f} ± {c['half_width']:.1f}, p {c['p_holm']:.2g}",
                describe(v),
            ]
        rows.append(
            [
                name,
                *([what[name]] if what else []),
                f"{s['cfid']['mean']:.1f} ± {s['cfid']['std']:.1f}",
                f"{s['precision']['mean']:.2f}",
                f"{s['recall']['mean']:.2f}",
                f"{s['classes']['mean']:.1f}",
                f"{s['cpu_s']:.0f}",
                *cells,
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
            "alpha": ALPHA,
            "comparisons": sum(
                math.isfinite(v[k]["p"])
                for s in summary.values()
                for v in (s.get("verdict"), s.get("against_control"))
                if v
                for k in BETTER
            ),  # fmt: skip
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
