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
    rows = []
    for name, s in r["summary"].items():
        v = s.get("verdict", {})
        cell = lambda k, v=v: (
            "reference"
            if k not in v
            else f"{v[k]['mean']:+.{1 if k == 'cfid' else 2}f} ± "
            f"{v[k]['half_width']:.{1 if k == 'cfid' else 2}f}: {v[k]['says']}"
        )
        rows.append(
            [
                name,
                r["what"][name],
                f"{s['cfid']['mean']:.1f} ± {s['cfid']['std']:.1f}",
                f"{s['precision']['mean']:.2f}",
                f"{s['recall']['mean']:.2f}",
                f"{s['cpu_s']:.0f}",
                cell("cfid"),
                cell("precision"),
                cell("recall"),
            ]
        )
    return (
        f"{_source(r)} The dcgan recipe, {r['steps']} steps per run, seeds "
        f"{', '.join(map(str, r['seeds']))}; n = {r['n']}. Verdicts pair each trick with "
        f"the plain run of the same seed: the mean difference ± its 95% interval.\n\n"
        + _table(
            [
                "trick",
                "what",
                "cFID",
                "precision",
                "recall",
                "CPU s per run",
                "cFID vs plain",
                "precision vs plain",
                "recall vs plain",
            ],
            rows,
        )
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


def notebooks(r) -> str:
    earlier = sorted({x["by"] for x in r["rows"] if "by" in x})
    rows = [
        [
            x["notebook"] + (f" [{earlier.index(x['by']) + 1}]" if "by" in x else ""),
            f"{x['wall_s']:.0f}",
            "passed" if x["passed"] else f"failed: {x['error']}",
        ]
        for x in r["rows"]
    ]
    note = "".join(f"\n\n[{i}] kept from an earlier run: `{c}`." for i, c in enumerate(earlier, 1))
    return (
        f"{_source(r)} Every chapter top to bottom in a fresh kernel, {r['mode']} mode, "
        f"device {r['device']}.\n\n" + _table(["chapter", "wall s", "final check"], rows) + note
    )


def ci(r) -> str:
    rows = [[x["part"], f"{x['seconds']:.0f}", x.get("disk", "")] for x in r["parts"]]
    return f"*Measured by `.ci/run` from a clean clone, {r['date'][:10]}.*\n\n" + _table(
        ["part of .ci/run", "seconds", "disk"], rows
    )


def infogan(r) -> str:
    def walk(x):
        return f"{x['slant']:.2f} / {x['ink']:.3f} / {x['identity']:.0%}"

    rows = [
        [
            x["seed"],
            f"{x['purity']:.0%}",
            f"{x['cfid']:.1f}",
            f"{x['classes']}/10",
            walk(x["codes"]["10"]),
            walk(x["codes"]["11"]),
        ]
        for x in r["rows"]
    ]
    best = r["dcgan_best"]
    return (
        f"{_source(r)} {r['steps']} steps per seed. Purity: the share of samples whose "
        f"digit, judged by the classifier, matches their categorical code under the best "
        f"one-to-one matching (chance: 10%). Each continuous code walked from -2.5 to +2.5: "
        f"the mean change of slant and of ink, and the share of digits whose class changed."
        f"\n\n"
        + _table(
            [
                "seed",
                "code purity",
                "cFID",
                "classes",
                "c1 slant / ink / class changed",
                "c2 slant / ink / class changed",
            ],
            rows,
        )
        + "\n\nThe shipped DCGAN's best single coordinates, for comparison: "
        f"z[{best['slant']['dim']}] for slant ({walk(best['slant'])}), "
        f"z[{best['ink']['dim']}] for ink ({walk(best['ink'])})."
    )


def coverage(r) -> str:
    header, rows = _benchmark("class_coverage").table(r["rows"])
    return (
        f"{_source(r)} n = 2,000; a conditional model draws the digits 0-9 in turn, so its "
        "coverage holds by construction (chapter 07 checks the digit drawn).\n\n"
        + _table(header, rows)
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
    "throughput-gpu": (RESULTS / "throughput-cuda.json", throughput, "bash benchmarks/gpu_run.sh"),
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
