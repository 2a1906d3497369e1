"""Regenerate the README's measured blocks from the results files that wrote them.

    python tools/readme.py            # rewrite README.md in place
    python tools/readme.py --check    # exit 1 if README.md is not what the files say

Each block sits between `<!-- results:NAME -->` and `<!-- /results:NAME -->`. A figure in
those blocks comes from one results file, written by the benchmark that measured it, and
names the command that did; a block whose file does not exist yet says so.
"""

import importlib
import json
import re
import sys
from pathlib import Path

from gan_helpers.__main__ import Parser, run_command

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
PACKAGE = ROOT / "gan_helpers" / "results"


def _benchmark(name: str):
    """A benchmark script as a module, for the table it prints: one table, written once."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module(name)


def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _table(header, rows) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in lines)


def _source(r) -> str:
    return (
        f"*Measured by `{r['command'].replace('python ', 'python ', 1)}` on {r['hardware']}, "
        f"{r['date'][:10]}.*"
    )


def compare(r) -> str:
    header, rows = _benchmark("compare").table(r["rows"])
    real = r["rows"][0]["cfid_real"]
    return (
        f"{_source(r)} {r['seconds']:g} s of training per model, one thread, seed 0; "
        f"{r['data']}; n = 2,000 (real vs real: cFID {real:.1f}).\n\n" + _table(header, rows)
    )


def tricks(r) -> str:
    header, rows = _benchmark("tricks").table(r["summary"], r["what"])
    return (
        f"{_source(r)} The dcgan recipe, {r['steps']} steps per run, seeds "
        f"{', '.join(map(str, r['seeds']))}; n = {r['n']}. Each trick is paired with the plain "
        f"run of the same seed, and a trick that removes D's BatchNorm also with its control, "
        f"the same D without the trick: the mean difference ± its 95% interval, and Holm's "
        f"adjusted p over all {r['comparisons']} comparisons (cFID, precision and recall). A "
        f"verdict needs an adjusted p below {r['alpha']}; at 95% unadjusted, about one "
        f"comparison in twenty would exclude 0 by chance alone.\n\n"
        + _table(header, rows)
        + "\n\n![Each trick, one dot per seed](gan_helpers/results/tricks.png)"
    )


def throughput(r) -> str:
    rows = [
        [
            x["model"],
            x["post"],
            f"{x['batch_ours']}/{x['batch_post']}",
            f"{x['ours']:,.0f}",
            f"{x['post_loop']:,.0f}",
            f"{x['ratio']:.2f}x",
        ]
        for x in r["rows"]
    ]
    speed = ", ".join(r["speed"]) or "none"
    return f"{_source(r)} Clock: {r['clock']}; our loop's speed options: {speed}.\n\n" + _table(
        [
            "model",
            "post",
            "batch ours/post",
            f"{r['unit']} ours",
            f"{r['unit']} post loop",
            "ratio",
        ],
        rows,
    )


def time_to_quality(r) -> str:
    rows = [[x["label"], *x["reached"].values()] for x in r["runs"]]
    return (
        f"{_source(r)} cFID at n = {r['n']} (real vs real {r['cfid_real']:.1f}), "
        f"evaluation time excluded, cap {r['cap']:g} s.\n\n"
        + _table(["run", *[f"to cFID ≤ {t:g}" for t in r["thresholds"]]], rows)
    )


def _kept(rows) -> tuple:
    """For rows kept from earlier runs (marked "by" and "on"): a function that gives a row's
    footnote mark, and the footnotes."""
    earlier = sorted({(x["by"], x.get("on")) for x in rows if "by" in x}, key=str)
    mark = lambda x: f" [{earlier.index((x['by'], x.get('on'))) + 1}]" if "by" in x else ""
    notes = "".join(
        f"\n\n[{i}] kept from an earlier run{f' on {on}' if on else ''}: `{by}`."
        for i, (by, on) in enumerate(earlier, 1)
    )
    return mark, notes


def notebooks(r) -> str:
    mark, notes = _kept(r["rows"])
    rows = [
        [
            x["notebook"] + mark(x),
            f"{x['wall_s']:.0f}",
            "passed" if x["passed"] else f"failed: {x['error']}",
        ]
        for x in r["rows"]
    ]
    return (
        f"{_source(r)} Every chapter top to bottom in a fresh kernel, {r['mode']} mode, "
        f"device {r['device']}.\n\n" + _table(["chapter", "wall s", "final check"], rows) + notes
    )


def resume(r) -> str:
    pair = lambda c: [f"{c['equal']}/{c['tensors']}", f"{c['worst_relative_difference']:.2g}"]
    rows = [[x["model"], x["steps"], *pair(x), *pair(x["straight_twice"])] for x in r["rows"]]
    kernels = "Reproducible kernels only" if r.get("deterministic") else "PyTorch's default kernels"
    return f"{_source(r)} {kernels}.\n\n" + _table(
        [
            "model",
            "steps",
            "resumed vs straight: tensors equal",
            "worst relative difference",
            "straight twice: tensors equal",
            "worst relative difference",
        ],
        rows,
    )


def ci(r) -> str:
    rows = [[x["part"], f"{x['seconds']:.0f}", x.get("disk", "")] for x in r["parts"]]
    head = (
        f"*Measured by `.ci/run` from a clean clone of {r['commit']} on {r['machine']}, "
        f"{r['date'][:10]}.*\n\n"
    )
    return head + _table(["part of .ci/run", "seconds", "disk"], rows)


def infogan(r) -> str:
    header, rows = _benchmark("infogan").table(r["rows"])
    walk = lambda x: f"{x['slant']:.2f} / {x['ink']:.3f} / {x['identity']:.0%}"
    best = r["dcgan"]
    return (
        f"{_source(r)} {r['steps']} steps per seed. Purity: the share of samples whose "
        f"digit, judged by the classifier, matches their categorical code under the best "
        f"one-to-one matching (chance: 10%). Each continuous code walked from -2.5 to +2.5: "
        f"the mean change of slant and of ink, and the share of digits whose class changed.\n\n"
        + _table(header, rows)
        + "\n\nThe shipped DCGAN's best single coordinates, for comparison: "
        f"z[{best['slant']['dim']}] for slant ({walk(best['slant'])}), "
        f"z[{best['ink']['dim']}] for ink ({walk(best['ink'])}).\n\n" + infogan_sweep()
    )


def infogan_sweep() -> str:
    """The search behind the recipe, from benchmarks/results/infogan-sweep.jsonl."""
    path = RESULTS / "infogan-sweep.jsonl"
    if not path.is_file():
        return ""
    runs, sources = {}, {}  # a later row replaces an earlier one of the same run and step
    for line in path.read_text().splitlines():
        x = json.loads(line)
        if x["config"].startswith("recipe") and "hardware" in x:
            source = f"`{x['command']}` on {x['hardware']}, {x['date'][:10]}"
            sources[x["config"], x["seed"]] = source
        runs.setdefault(x["config"], {}).setdefault(x["seed"], {})[x["step"]] = x["purity"]
    by_source = {}
    for (config, seed), source in sorted(sources.items()):
        by_source.setdefault(source, []).append(f"{config} {seed}")
    recipe_source = "; ".join(f"{', '.join(s)}: {source}" for source, s in by_source.items())
    cell = lambda d, step: f"{d[step]:.0%}" if step in d else "-"
    first = lambda d: next((f"{s}" for s in sorted(d) if d[s] >= 0.85), f"not by {max(d)}")
    steps = (500, 1000, 2000, 3000, 4000, 5000, 7500, 10000)
    rows = [
        [config, seed, *(cell(d, s) for s in steps), first(d)]
        for config, seeds in runs.items()
        for seed, d in sorted(seeds.items())
    ]
    return (
        "The search behind the recipe (`python benchmarks/infogan_sweep.py CONFIG`), purity "
        "against steps: `cur-*` is "
        "the earlier pair (the DCGAN pair at width 32 with a Q head) on weight {1, 5} x rates "
        "{equal 5e-4, G 1e-3 and D 2e-4}; `pap-*` the paper's pair at a quarter (w256) or an "
        "eighth (w128) of its widths, G 2e-3 and D 4e-4 unless named. These rows were measured "
        "by the script's first form, on the package before its rebuild (the same step and "
        "loss), and all feed the categorical code at scale 1. `recipe` is the shipped recipe, "
        "trained on past its budget, and `recipe-scale1` the same with the code at scale 1, "
        "the recipe before. Its rows were measured as `recipe` before the scale existed, and "
        "before judging a run stopped shifting its random stream, so `recipe-scale1` now draws "
        f"other runs of the same recipe ({recipe_source}).\n\n"
        + _table(["config", "seed", *(f"{s} steps" for s in steps), "first at 85%"], rows)
    )


def coverage(r) -> str:
    header, rows = _benchmark("class_coverage").table(r["rows"])
    mark, notes = _kept(r["rows"])
    rows = [[row[0] + mark(x), *row[1:]] for row, x in zip(rows, r["rows"])]
    return (
        f"{_source(r)} n = 2,000; a conditional model draws the digits 0-9 in turn, so its "
        "coverage holds by construction (chapter 07 checks the digit drawn).\n\n"
        + _table(header, rows)
        + notes
    )


def toy_fps(r) -> str:
    lines = [
        f"{loss}: {x['frames_per_s']:.0f} frames/s while training ({x['steps_per_frame']} "
        f"steps a frame), {x['drawing_only_per_s']:.0f} frames/s drawing alone"
        for loss, x in r["rows"].items()
    ]
    return f"{_source(r)}\n\n" + "\n".join(f"- {line}" for line in lines)


BLOCKS = {  # name: (results file, renderer, the command that makes the file)
    "compare": (
        RESULTS / "compare-cpu.json",
        compare,
        "python benchmarks/compare.py --save compare-cpu",
    ),
    "tricks": (PACKAGE / "tricks.json", tricks, "python benchmarks/tricks.py"),
    "throughput": (
        RESULTS / "throughput-cpu.json",
        throughput,
        "python benchmarks/throughput.py --threads 1 --clock cpu --save throughput-cpu",
    ),
    "throughput-fast": (
        RESULTS / "throughput-cpu-bf16.json",
        throughput,
        "python benchmarks/throughput.py --threads 1 --clock cpu --bf16 "
        "--channels-last --save throughput-cpu-bf16",
    ),
    "time-to-quality": (
        RESULTS / "time-to-quality-cpu.json",
        time_to_quality,
        "python benchmarks/time_to_quality.py --threads 1 --save time-to-quality-cpu",
    ),
    "notebooks-cpu": (
        RESULTS / "notebooks-cpu.json",
        notebooks,
        "python benchmarks/notebooks.py --save notebooks-cpu",
    ),
    "notebooks-gpu": (RESULTS / "notebooks-cuda.json", notebooks, "bash benchmarks/gpu_run.sh"),
    "notebooks-gpu-smoke": (
        RESULTS / "notebooks-cuda-smoke.json",
        notebooks,
        "python benchmarks/notebooks.py --smoke --save notebooks-cuda-smoke",
    ),
    "throughput-gpu": (RESULTS / "throughput-cuda.json", throughput, "bash benchmarks/gpu_run.sh"),
    "time-to-quality-gpu": (
        RESULTS / "time-to-quality-cuda.json",
        time_to_quality,
        "bash benchmarks/gpu_run.sh",
    ),
    "resume-gpu": (RESULTS / "resume-cuda.json", resume, "bash benchmarks/gpu_run.sh"),
    "resume-gpu-deterministic": (
        RESULTS / "resume-cuda-deterministic.json",
        resume,
        "python benchmarks/resume_check.py --device cuda --deterministic "
        "--save resume-cuda-deterministic",
    ),
    "infogan": (RESULTS / "infogan.json", infogan, "python benchmarks/infogan.py --save infogan"),
    "coverage": (
        RESULTS / "coverage.json",
        coverage,
        "python benchmarks/class_coverage.py --save coverage",
    ),
    "ci": (RESULTS / "ci.json", ci, "bash .ci/run"),
    "toy-fps": (RESULTS / "toy-fps.json", toy_fps, "python benchmarks/toy_fps.py --save toy-fps"),
}


def render(text: str) -> str:
    def block(m):
        name = m.group(1)
        path, make, command = BLOCKS[name]
        r = _load(path)
        body = make(r) if r else f"*Not measured yet: `{command}` writes it.*"
        return f"<!-- results:{name} -->\n{body}\n<!-- /results:{name} -->"

    return re.sub(r"<!-- results:([\w-]+) -->.*?<!-- /results:\1 -->", block, text, flags=re.S)


def main(args) -> int:
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md differs from the results files; run python tools/readme.py")
            return 1
        return 0
    README.write_text(new)
    print(f"README.md: {len(re.findall(r'<!-- results:', new))} blocks from the results files")
    return 0


if __name__ == "__main__":
    p = Parser(prog="python tools/readme.py", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true")
    sys.exit(run_command(main, p.parse_args()))
