"""What every benchmark shares: the machine it ran on, its speed flags, its tables, and the
results file it writes for tools/readme.py."""

import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from gan_helpers import data, recipes, speed
from gan_helpers.train import Trainer

# where results files go: benchmarks/results, or $GAN_RESULTS_DIR (the GPU run's $OUT)
RESULTS = Path(os.environ.get("GAN_RESULTS_DIR") or Path(__file__).resolve().parent / "results")


def hardware(device=None) -> str:
    """One line: the processor or GPU, torch's thread count, the torch version, the device."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        name = f"GPU {torch.cuda.get_device_name(device)}"
    else:
        name = platform.processor() or "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                name = next(
                    (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                    name,
                )
        except OSError:
            pass
        name = f"CPU {name} ({os.cpu_count()} cores)"
    return (
        f"{name}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}, "
        f"device {device.type}"
    )


def load_average() -> list:
    """The 1, 5 and 15 minute load averages, or [] where the OS has none."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def trainer(name, images=None, seed=0, options=(), **changes) -> Trainer:
    """The Trainer of command-line model `name` on its data (or `images`), with `changes` to
    its recipe's arguments and the speed `options`; no progress bar."""
    images = images if images is not None else data.load(size=recipes.SIZE[name])
    t = Trainer(images=images, **{**recipes.get(name)(seed=seed), **changes})
    speed.apply(t, options)
    t.progress = False
    return t


def train_for_seconds(t: Trainer, seconds: float, probe=20) -> int:
    """Train `t` for about `seconds` of training: time `probe` steps (after one step of
    warm-up), derive the step count from them, and train to it. Returns that count; the
    budget is then steps, which a busy machine cannot change."""
    t.train(1)
    start = time.perf_counter()
    t.train(probe)
    steps = max(t.step, round(seconds / ((time.perf_counter() - start) / probe)))
    t.train(until=steps)
    return steps


def add_speed_arguments(p) -> None:
    """--bf16, --compile, --channels-last, --cudnn-benchmark: the speed options."""
    for option in speed.OPTIONS:
        p.add_argument(
            "--" + option.replace("_", "-"),
            action="store_true",
            help=f"our loop with the {option} speed option",
        )


def speed_options(args) -> tuple:
    return tuple(o for o in speed.OPTIONS if getattr(args, o))


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def format_table(header, rows, markdown=True) -> str:
    """A Markdown table, or plain aligned columns."""
    rows = [[str(c) for c in row] for row in rows]
    if markdown:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in [header, *rows])


def _from_root(script: str) -> str:
    """The script's path from the repository root, wherever it was started from."""
    path = Path(script).resolve()
    root = Path(__file__).resolve().parent.parent
    return str(path.relative_to(root)) if path.is_relative_to(root) else script


def command() -> str:
    """The command line that is running, as run from the repository's root."""
    return shlex.join(["python", _from_root(sys.argv[0]), *sys.argv[1:]])


def merge(name: str, rows: list, key) -> list:
    """`rows` with the rows of results file `name` that they do not re-measure (by `key`),
    each kept row marked with the command and machine that measured it."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return rows
    old = json.loads(path.read_text())
    again = {key(r) for r in rows}
    mark = {"by": old["command"], "on": old["hardware"]}  # a row kept before keeps its own
    kept = [r if "by" in r else {**mark, **r} for r in old["rows"] if key(r) not in again]
    return sorted(kept + rows, key=key)


def save(name: str, payload: dict, device, folder=RESULTS) -> Path:
    """Write a results file, with what it was measured on and the command that made it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {
        "command": command(),
        "hardware": hardware(device),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_after": load_average(),
        **payload,
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path
