"""Exact resume on a device: a run saved and resumed halfway against the same run straight
through, compared tensor by tensor, and beside it the same run straight through twice. On a
CPU all are equal bit for bit (tests/test_resume.py proves it); on a GPU the second pair says
how far the device's own kernels let two identical runs drift, so that the first is read
against it. `--deterministic` asks for reproducible kernels.

    python benchmarks/resume_check.py [--device cuda] [--steps 40] [--deterministic] [--save NAME]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch
from common import format_table, save, trainer

from gan_helpers import data, recipes
from gan_helpers.env import resolve_device


def compare(a: dict, b: dict) -> dict:
    """Over every tensor of G, D and both optimisers: how many differ, and by how much."""
    pairs = [(a[k], b[k]) for k in ("G", "D")] + [
        (a[k]["state"], b[k]["state"]) for k in ("opt_g", "opt_d")
    ]
    tensors = []
    for x, y in pairs:
        for key in x:
            xs, ys = (
                (x[key], y[key])
                if torch.is_tensor(x[key])
                else (list(x[key].values()), list(y[key].values()))
            )
            tensors += list(zip(xs, ys)) if isinstance(xs, list) else [(xs, ys)]
    tensors = [(x, y) for x, y in tensors if torch.is_tensor(x) and x.is_floating_point()]
    worst = max(((x - y).abs().max() / x.abs().max().clamp_min(1e-12)).item() for x, y in tensors)
    return {
        "tensors": len(tensors),
        "equal": sum(torch.equal(x, y) for x, y in tensors),
        "worst_relative_difference": worst,
    }


def run(name, device, steps, folder) -> dict:
    images = data.load(device=device, size=recipes.SIZE[name])
    whole = trainer(name, images, seed=0, device=device)
    whole.train(steps)
    again = trainer(name, images, seed=0, device=device)  # the same run, straight through again
    again.train(steps)
    first = trainer(name, images, seed=0, device=device)
    first.train(steps // 2, checkpoint=folder / f"{name}.pt")
    second = trainer(name, images, seed=0, device=device)
    second.train(until=steps, checkpoint=folder / f"{name}.pt")  # resumes from the file
    history = whole.history["loss_d"] == second.history["loss_d"]
    return {
        "model": name,
        "steps": steps,
        "history_equal": history,
        **compare(whole.state_dict(), second.state_dict()),
        "straight_twice": compare(whole.state_dict(), again.state_dict()),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--models", nargs="+", default=["mlp", "dcgan", "wgan-gp"])
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="torch.use_deterministic_algorithms: cuDNN's and cuBLAS's reproducible kernels",
    )
    p.add_argument("--save", metavar="NAME")
    args = p.parse_args(argv)
    if args.deterministic:  # cuBLAS needs its workspace fixed before CUDA starts
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        rows = [run(m, device, args.steps, Path(folder)) for m in args.models]
    print(
        format_table(
            [
                "model",
                "steps",
                "tensors bit for bit",
                "worst relative difference",
                "loss history equal",
                "straight twice: bit for bit",
                "worst",
            ],
            [
                [
                    r["model"],
                    r["steps"],
                    f"{r['equal']}/{r['tensors']}",
                    f"{r['worst_relative_difference']:.2e}",
                    r["history_equal"],
                    f"{r['straight_twice']['equal']}/{r['straight_twice']['tensors']}",
                    f"{r['straight_twice']['worst_relative_difference']:.2e}",
                ]
                for r in rows
            ],
        )
    )
    if args.save:
        save(
            args.save,
            {"device": device.type, "deterministic": args.deterministic, "rows": rows},
            device,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
