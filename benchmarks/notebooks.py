"""Run every chapter top to bottom in a fresh kernel, as a learner would, and record its
wall time and whether it passed (its final check raises if the chapter's claim fails).

    python benchmarks/notebooks.py [--smoke] [--only 01 04] [--keep DIR] [--save NAME]

Each chapter gets a fresh runs folder, so nothing resumes from an earlier run. `--keep`
writes the executed notebooks, with their outputs, to DIR.
"""

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from common import format_table, merge, save
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run(path: Path, smoke: bool, keep, timeout: int) -> dict:
    nb = nbformat.read(path, as_version=4)
    env = {"GAN_SMOKE": "1" if smoke else "", "GAN_RUNS_DIR": tempfile.mkdtemp(prefix="runs-")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except CellExecutionError as e:
        error = re.sub(r"\x1b\[[0-9;]*m", "", str(e).strip().splitlines()[-1])[:300]  # no colours
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    wall = time.perf_counter() - start
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(keep) / path.name)
    return {
        "notebook": path.stem,
        "wall_s": round(wall, 1),
        "passed": error is None,
        "error": error,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="smoke-mode budgets (GAN_SMOKE=1)")
    p.add_argument("--only", nargs="+", metavar="NN", help="chapter numbers, e.g. 01 04")
    p.add_argument("--keep", metavar="DIR", help="write the executed notebooks to DIR")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per cell (default 3600)")
    p.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.only:
        paths = [q for q in paths if q.name[:2] in args.only]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for path in paths:
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        rows.append(run(path, args.smoke, args.keep, args.timeout))
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        if args.save:  # after every chapter, so that a run stopped part way keeps what it did
            payload = {"mode": "smoke" if args.smoke else "full", "device": device, "rows": rows}
            if args.only:  # re-measured chapters replace their old rows
                payload["rows"] = merge(args.save, rows, key=lambda r: r["notebook"])
            save(args.save, payload, device)
    print(
        format_table(
            ["chapter", "wall s", "final check"],
            [
                [
                    r["notebook"],
                    f"{r['wall_s']:.0f}",
                    "passed" if r["passed"] else f"FAILED: {r['error']}",
                ]
                for r in rows
            ],
        )
    )
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
