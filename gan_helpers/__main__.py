"""The command line: `python -m gan_helpers train ...` and `python -m gan_helpers sample ...`.

A mistake in the input is one line on stderr, `error: <one sentence>`, and exit status 2.
Ctrl-C or SIGTERM during training saves the run and exits with 130 or 143.
"""

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

import torch

from . import checkpoint, data, files, recipes, viz
from .env import GanError, Parser, resolve_device, run_command
from .models import digits_in_turn, generate, is_conditional
from .runtime import SPEED_OPTIONS, Interrupted
from .train import Trainer

TRAIN_NOTES = """\
checkpoints and resuming:
  DIR/checkpoint.pt is saved every --checkpoint-every steps and when training ends, each
  save replacing the last through a temporary file, so a crash or a full disk mid-save
  cannot damage it; --keep-every K also keeps DIR/checkpoint-<step>.pt. Ctrl-C or SIGTERM
  stops between two steps and saves. After that, a crash or a kill, run the same command
  again with --resume; on a finished run it says so and exits 0. On a CPU the result
  equals an uninterrupted run's bit for bit at the same thread count (OMP_NUM_THREADS).
  A NaN or Inf loss stops the run and the checkpoint keeps the last good step, from which
  --resume --lr SMALLER goes on. A new run needs an --out folder that is new or empty.
"""


def _count(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _rate(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def parser() -> Parser:
    p = Parser(prog="python -m gan_helpers", description="Train and sample the GANs of the series.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="train a model of the series",
        epilog=TRAIN_NOTES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("model", help=f"one of: {', '.join(recipes.RECIPES)}")
    t.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="run folder: new or empty, or a run's folder with --resume",
    )
    t.add_argument("--steps", type=_count, help="training steps (default: the chapter's)")
    t.add_argument("--batch-size", type=_count, help="default: per model")
    t.add_argument("--lr", type=_rate, help="learning rate of G and D (default: per model)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    t.add_argument("--data-root", type=Path, help="default: $GAN_DATA_ROOT or data/")
    t.add_argument(
        "--checkpoint-every",
        type=_count,
        default=500,
        metavar="N",
        help="save DIR/checkpoint.pt every N steps and at the end (default 500)",
    )
    t.add_argument(
        "--keep-every",
        type=_count,
        metavar="K",
        help="also keep DIR/checkpoint-<step>.pt every K steps",
    )
    t.add_argument("--resume", action="store_true", help="go on from DIR/checkpoint.pt")
    speed = t.add_argument_group("speed options (off by default; see the README's Speed)")
    for option in SPEED_OPTIONS:
        speed.add_argument("--" + option.replace("_", "-"), action="store_true")
    s = sub.add_parser("sample", help="draw samples from a checkpoint or shipped generator")
    s.add_argument("checkpoint", help="a checkpoint.pt, or a shipped name such as dcgan")
    s.add_argument("--n", type=_count, required=True)
    s.add_argument("--out", type=Path, required=True, help="a .pt file")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, help="the digit to draw (conditional models)")
    s.add_argument("--code", type=int, help="the categorical code to draw (infogan)")
    return p


def train(args) -> int:
    recipe = recipes.get(args.model)
    device = resolve_device(args.device)
    ckpt = args.out / "checkpoint.pt"
    _check_out(args.out, ckpt, args.model, args.resume)
    images = data.load(args.dataset, args.data_root, device)
    total = args.steps or recipe.steps
    overrides = {
        k: v
        for k, v in (("batch_size", args.batch_size), ("lr_g", args.lr), ("lr_d", args.lr))
        if v is not None
    }
    if recipe.noise is not None:  # the noise anneals over this run's steps
        overrides["noise"] = replace(recipe.noise, steps=total)
    speed = [k for k in SPEED_OPTIONS if getattr(args, k)]
    trainer = Trainer.from_recipe(
        args.model, images, seed=args.seed, device=device, speed=speed, **overrides
    )
    if args.resume:
        changed = trainer.load(ckpt)
        if changed:
            print(
                "note: going on with "
                + ", ".join(f"{k} {now} (was {saved})" for k, (saved, now) in changed.items())
            )
    print(
        f"{args.model} (post {recipe.source}, chapter {recipe.chapter}) on {images.name}, "
        f"{device}; step {trainer.step} of {total}"
        + (f"; speed options: {', '.join(speed)}" if speed else ""),
        flush=True,
    )
    if trainer.step >= total:
        print(f"{ckpt} already holds all {total} steps: nothing left to do.")
        return 0
    try:
        trainer.train(
            until=total,
            checkpoint=ckpt,
            checkpoint_every=args.checkpoint_every,
            keep_every=args.keep_every,
        )
    except Interrupted as e:
        held = f"holds step {trainer.last_save[1]}" if trainer.last_save else "was not written"
        print(
            f"interrupted by {e.signal.name} at step {trainer.step}: {ckpt} {held}; run the "
            f"same command with --resume to go on.",
            file=sys.stderr,
        )
        return 128 + e.signal
    except files.DiskFull as e:
        then = "free some space, then run the same command with --resume"
        raise GanError(e.sentence(then)) from None
    viz.grid_pixels(trainer.sample(z=trainer.fixed_z), scale=2).save(args.out / "samples.png")
    h = trainer.history
    print(f"done: {trainer.step} steps in {h.seconds:.1f} s ({h.img_per_s:.0f} img/s)")
    return 0


def _check_out(out: Path, ckpt: Path, model: str, resume: bool) -> None:
    """Refuse an --out folder where training would overwrite what is there."""
    if out.exists() and not out.is_dir():
        raise GanError(f"--out {out} is a file; give a folder for the run.")
    checkpoint.remove_unfinished(ckpt)  # what a kill mid-save left: never a checkpoint
    if resume:
        if not ckpt.is_file():
            raise GanError(f"There is no {ckpt} to resume; drop --resume to start a new run.")
        checkpoint.load(ckpt, model=model)  # another model's run, or a damaged file
    elif ckpt.is_file():
        held = checkpoint.load(ckpt).get("model")
        if held == model:
            raise GanError(
                f"{out} already holds a {model!r} run; pass --resume to go on with "
                f"it, or choose another --out."
            )
        raise GanError(
            f"{out} holds a {held!r} run, not {model!r}; choose another --out, so "
            f"that run stays as it is."
        )
    elif out.is_dir() and any(out.iterdir()):
        raise GanError(
            f"{out} is not empty; choose a new or empty folder for a new run, so "
            f"that no file there is overwritten."
        )


def sample(args) -> int:
    G = checkpoint.load_generator(args.checkpoint)
    if args.label is not None and not is_conditional(G):
        raise GanError(
            f"--label needs a conditional model, and {type(G).__name__} is not one; "
            f"train cgan or drop --label."
        )
    n_cat = getattr(G, "n_cat", 0)
    if args.code is not None and not 0 <= args.code < max(n_cat, 1):
        raise GanError(
            f"--code needs an InfoGAN model and a code from 0 to {n_cat - 1}, not "
            f"{args.code}; train infogan, or drop --code."
            if n_cat
            else f"--code needs an InfoGAN model, and {type(G).__name__} is not one; "
            f"train infogan or drop --code."
        )
    torch.manual_seed(args.seed)
    z = torch.randn(args.n, G.z_dim)
    if args.code is not None:
        z = G.with_code(z, args.code)
    labels = None
    if is_conditional(G):
        labels = (
            torch.full((args.n,), args.label) if args.label is not None else digits_in_turn(args.n)
        )
    images = generate(G, z, labels).contiguous()
    files.write(args.out, images)
    print(f"wrote {tuple(images.shape)} samples to {args.out}")
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return run_command(train if args.command == "train" else sample, args)
    except KeyboardInterrupt:  # outside the training loop, which handles its own
        print("interrupted; any checkpoint saved before is intact.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
