"""Models and training tricks side by side on one budget: chapter 08 and
benchmarks/quality.py both build their tables from here.

Two kinds of budget, for two questions:
- models against each other (`compare_model`): equal *seconds* of training. The models
  differ up to 40x in cost per step, so equal steps would favour the slow ones; seconds
  are what a learner pays.
- one model with and without a trick (`run_trick`): equal *steps*. The cost per step is
  nearly the same, and instance noise anneals over a known number of steps.
"""
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from . import metrics, models, recipes
from .errors import GanError
from .losses import BCE
from .train import Diverged, Trainer

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def n_params(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def hardware(device=None) -> str:
    """One line: the processor, torch's thread count, the torch version and the device."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        name = f"GPU {torch.cuda.get_device_name(device)}"
    else:
        name = platform.processor() or "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                name = next((line.split(":", 1)[1].strip() for line in f
                             if line.startswith("model name")), name)
        except OSError:
            pass
        name = f"CPU {name} ({os.cpu_count()} cores)"
    return (f"{name}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}, "
            f"device {device.type}")


def load_average() -> tuple:
    """The 1, 5 and 15 minute load averages, or () where the OS has none (Windows)."""
    return os.getloadavg() if hasattr(os, "getloadavg") else ()


def data_note(images) -> str:
    """What the models trained on, for a report's header."""
    return ("trained on the 10k MNIST test split offline" if "test" in images.name
            else f"trained on {images.name}")


# --- models against each other, on equal seconds ------------------------------------------

def train_for(trainer: Trainer, seconds: float, clock: str = "wall") -> dict:
    """Train until `seconds` of `clock` have passed; returns the wall and CPU seconds spent.

    'wall' is what you wait; 'cpu' counts this process's CPU seconds, which hardly move when
    other jobs share the machine (with one torch thread). Training goes in chunks of about
    a second, so it overshoots by at most one chunk. Not for instance noise, whose
    annealing needs the end step up front: use `trainer.train(steps)` for that.
    """
    if clock not in CLOCKS:
        raise GanError(f"Unknown clock {clock!r}; choose wall or cpu.")
    now = CLOCKS[clock]
    wall, cpu, start = time.perf_counter(), time.process_time(), now()
    chunk = 1
    while now() - start < seconds:
        tick = now()
        trainer.train(chunk)
        rate = chunk / max(now() - tick, 1e-6)                     # steps per second
        chunk = max(1, int(rate * min(1.0, seconds - now() + start)))
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def compare_model(name: str, images, seconds: float, *, seed: int = 0, clock: str = "wall",
                  n: Optional[int] = None) -> dict:
    """Train recipe `name` for `seconds`, then measure it: one row of the comparison.

    The row holds the parameter count (G + D), steps, real images seen, img/s by `clock`,
    wall and CPU seconds, the metrics (cFID, its real-vs-real baseline, classes covered,
    entropy, n) and `samples`, the generator's output on its fixed noise (seed `seed`).
    """
    trainer = Trainer.from_recipe(name, images, seed=seed, progress=False)
    spent = train_for(trainer, seconds, clock)
    row = {"model": name, "post": recipes.get(name).source,
           "params": n_params(trainer.G, trainer.D), "steps": trainer.step,
           "images_seen": trainer.history.images,
           "img_per_s": trainer.history.images / spent[f"{clock}_s"], "clock": clock,
           **spent, **metrics.evaluate(trainer, images, n=n)}
    row["samples"] = trainer.sample(z=trainer.fixed_z).cpu()
    return row


def compare_table(rows) -> tuple[list[str], list[list[str]]]:
    """(header, rows of text) for `compare_model` rows."""
    clock = rows[0]["clock"] if rows else "wall"
    header = ["model", "post", "params (G+D)", f"img/s ({clock})", "steps", "images seen",
              "cFID", "real vs real", "classes", "wall s", "CPU s"]
    body = [[r["model"], r["post"], f"{r['params']:,}", f"{r['img_per_s']:,.0f}",
             f"{r['steps']:,}", f"{r['images_seen']:,}", f"{r['cfid']:.2f}",
             f"{r['cfid_real_baseline']:.2f}", f"{r['classes_covered']}/10",
             f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}"] for r in rows]
    return header, body


# --- one trick at a time, on the DCGAN, on equal steps --------------------------------------

@dataclass(frozen=True)
class Trick:
    """One change to the DCGAN recipe: a loss, Trainer settings, or a change to D."""
    name: str
    what: str                                       # the setting, in words
    loss: Optional[object] = None                   # None: the recipe's loss
    trainer: dict = field(default_factory=dict)     # Trainer keywords that override the recipe
    change_d: Optional[Callable] = None             # D -> D


TRICKS = {t.name: t for t in [
    Trick("plain", "the dcgan recipe as it is (Adam 5e-4 for G and D, batch 64)"),
    Trick("label smoothing", "one-sided: real target 0.9, fake target 0",
          loss=BCE(smoothing=0.1)),
    Trick("instance noise", "N(0, 0.1^2) added to every D input, annealed linearly to 0",
          trainer={"noise_sigma": 0.1}),
    Trick("TTUR", "D learns 4x faster: lr_d 2e-3, lr_g 5e-4 as in the recipe",
          trainer={"lr_d": 2e-3}),
    Trick("spectral norm in D", "on every conv layer of D (one power iteration per pass)",
          change_d=models.with_spectral_norm),
    Trick("dropout in D", "p = 0.3 after every LeakyReLU of D",
          change_d=lambda D: models.with_dropout(D, 0.3)),
]}


def trick_trainer(trick: Trick, images, seed: int = 0) -> Trainer:
    """The dcgan recipe's Trainer with one trick applied; the same models as the plain run
    for the same seed."""
    overrides = dict(trick.trainer, **({"loss": trick.loss} if trick.loss is not None else {}))
    return Trainer.from_recipe("dcgan", images, seed=seed, change_d=trick.change_d,
                               progress=False, **overrides)


def run_trick(trick: Trick, images, steps: int, *, seed: int = 0,
              n: Optional[int] = None) -> dict:
    """Train the DCGAN with `trick` for `steps` steps and measure it. A run that diverges
    is kept as a row with cFID inf and 0 classes, not dropped: it counts against the trick."""
    trainer = trick_trainer(trick, images, seed)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        trainer.train(steps)
        result = metrics.evaluate(trainer, images, n=n)
    except Diverged:
        result = {"cfid": math.inf, "classes_covered": 0, "diverged": True}
    return {"trick": trick.name, "seed": seed, "steps": steps,
            "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
            "samples": trainer.sample(z=trainer.fixed_z).cpu(), **result}


def summarise(rows) -> dict:
    """{trick: {cfid_mean, cfid_std, cfid_min, cfid_max, classes_mean, classes_min,
    classes_max, seeds}} over the seeds of each trick."""
    out = {}
    for name in dict.fromkeys(r["trick"] for r in rows):
        cfid = [r["cfid"] for r in rows if r["trick"] == name]
        classes = [r["classes_covered"] for r in rows if r["trick"] == name]
        out[name] = {"cfid_mean": statistics.fmean(cfid),
                     "cfid_std": _std(cfid),
                     "cfid_min": min(cfid), "cfid_max": max(cfid),
                     "classes_mean": statistics.fmean(classes), "classes_min": min(classes),
                     "classes_max": max(classes), "seeds": len(cfid)}
    return out


def _std(values) -> float:
    """The sample standard deviation; inf where a run diverged (statistics.stdev raises)."""
    if any(math.isinf(v) for v in values):
        return math.inf
    return statistics.stdev(values) if len(values) > 1 else 0.0


def verdict(trick: dict, plain: dict) -> str:
    """'helped' if every seed of the trick beat every seed of the plain run on cFID,
    'hurt' if every seed did worse, else 'no clear effect' (the ranges overlap)."""
    if trick["cfid_max"] < plain["cfid_min"]:
        return "helped"
    if trick["cfid_min"] > plain["cfid_max"]:
        return "hurt"
    return "no clear effect"


def tricks_table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows of text) for `summarise`'s output; the plain run is the reference."""
    plain = summary["plain"]
    header = ["trick", "setting", "seeds", "cFID mean ± std", "cFID min-max",
              "classes mean (min-max)", "verdict (cFID vs plain)"]
    body = []
    for name, s in summary.items():
        body.append([name, TRICKS[name].what, str(s["seeds"]),
                     f"{s['cfid_mean']:.2f} ± {s['cfid_std']:.2f}",
                     f"{s['cfid_min']:.2f}-{s['cfid_max']:.2f}",
                     f"{s['classes_mean']:.1f} ({s['classes_min']}-{s['classes_max']})",
                     "reference" if name == "plain" else verdict(s, plain)])
    return header, body


def grid_figure(named_images: dict, ncols: int = 4, size: float = 3.0):
    """Sample grids in rows of `ncols`, titled by their names; returns the figure."""
    import matplotlib.pyplot as plt
    from . import viz
    nrows = -(-len(named_images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.3) * nrows),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, images) in zip(axes.flat, named_images.items()):
        viz.show_grid(images, title=name, ax=ax)
    fig.tight_layout()
    return fig


def format_table(header, rows, markdown: bool = True) -> str:
    """A Markdown table, or plain aligned columns."""
    if markdown:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths))
                     for row in [header, *rows])
