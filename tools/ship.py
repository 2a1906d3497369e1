"""Make a shipped generator again: train it with the course's own command line, then write
its generator alone, with its provenance, to gan_helpers/weights/MODEL_generator.pt.

    OMP_NUM_THREADS=1 python tools/ship.py dcgan      # also cgan, infogan

CPU results repeat bit for bit at the same thread count and torch version, hence the
thread count in the command. The run folder (runs/ship-MODEL) is kept, and an interrupted
run goes on from its last checkpoint.
"""

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from gan_helpers import checkpoint, recipes
from gan_helpers.__main__ import Parser, run_command
from gan_helpers.__main__ import main as cli
from gan_helpers.env import GanError, repo_root

SHIPPED = ("dcgan", "cgan", "infogan")


def ship(args) -> int:
    out = args.out or repo_root() / "runs" / f"ship-{args.model}"
    steps = recipes.STEPS[args.model]
    argv = ["train", args.model, "--out", str(out), "--steps", str(steps), "--seed", "0"]
    if (out / "checkpoint.pt").exists():
        argv.append("--resume")  # an interrupted run goes on; resuming repeats bit for bit
    if cli(argv) != 0:
        raise GanError("Training failed (see the message above), so nothing was shipped.")
    state = checkpoint.load(out / "checkpoint.pt", model=args.model)
    threads = os.environ.get("OMP_NUM_THREADS")
    G = recipes.get(args.model)()["G"]
    provenance = {
        "command": (f"OMP_NUM_THREADS={threads} " if threads else "")
        + f"python tools/ship.py {args.model}",
        "trains": "python -m gan_helpers " + " ".join(argv),
        "data": state["settings"]["data"],
        "steps": state["step"],
        "images_seen": state["images_seen"],
        "train_seconds": round(state["seconds"], 1),
        "settings": state["settings"],
        "architecture": f"{type(G).__name__}, {sum(p.numel() for p in G.parameters()):,} "
        f"parameters",
        "torch": str(torch.__version__),
        "date": datetime.now(timezone.utc).date().isoformat(),
    }
    weights = state["G_ema"] if state["G_ema"] is not None else state["G"]
    path = checkpoint.WEIGHTS / f"{args.model}_generator.pt"
    checkpoint.save({"model": args.model, "G": weights, "provenance": provenance}, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {provenance}")
    return 0


if __name__ == "__main__":
    p = Parser(prog="python tools/ship.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=SHIPPED)
    p.add_argument("--out", type=Path, help="the run folder (default runs/ship-MODEL)")
    sys.exit(run_command(ship, p.parse_args()))
