"""The command line: `python -m gan_helpers train ...` and `python -m gan_helpers sample ...`.

A mistake in the input gets one line on stderr, `error: <one sentence>`, and exit status 2,
never a traceback; argparse's own mistakes are reported the same way. Ctrl-C during
training saves the run and exits with status 130.
"""
import argparse
import math
import sys
from pathlib import Path

import torch

from . import checkpoint, data, recipes
from .device import resolve_device
from .errors import GanError
from .explore import load_generator
from .models import is_conditional
from .train import SPEED_OPTIONS, Trainer, generate
from .viz import grid_image

TRAIN_NOTES = """\
checkpoints and resuming:
  DIR/checkpoint.pt is saved every --checkpoint-every steps and when training ends, each
  save replacing the last one through a temporary file, so a crash mid-save cannot damage
  it. --keep-every K also keeps a copy, DIR/checkpoint-<step>.pt, every K steps.
  Ctrl-C stops between two steps and saves. After Ctrl-C, a crash or a kill, run the same
  command again with --resume. On a CPU the result equals an uninterrupted run's bit for
  bit, given the same thread count (e.g. OMP_NUM_THREADS=1); on a GPU it goes on correctly
  but not bit for bit. A loss that becomes NaN or Inf stops the run; the checkpoint keeps
  the last good step, from which --resume --lr SMALLER goes on.
  A new run needs an --out folder that is new or empty: nothing there is overwritten.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, whose mistakes get the one line every other error gets, not a usage block."""

    def error(self, message):
        self.exit(2, f"error: {message}; see `{self.prog} --help`.\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _positive_number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _parser():
    p = _Parser(prog="python -m gan_helpers",
                description="Train and sample the GANs of the series.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model of the series", epilog=TRAIN_NOTES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("model", help=f"one of: {', '.join(recipes.RECIPES)}")
    t.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="run folder: new or empty, or a run's folder with --resume")
    t.add_argument("--steps", type=_positive_int, help="training steps (default: per model)")
    t.add_argument("--batch-size", type=_positive_int, help="default: per model")
    t.add_argument("--lr", type=_positive_number,
                   help="learning rate of both G and D (default: per model)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    t.add_argument("--data-root", type=Path, help="default: $GAN_DATA_ROOT or data/")
    t.add_argument("--checkpoint-every", type=_positive_int, default=500, metavar="N",
                   help="save DIR/checkpoint.pt every N steps and at the end (default 500)")
    t.add_argument("--keep-every", type=_positive_int, metavar="K",
                   help="also keep DIR/checkpoint-<step>.pt every K steps (default: none)")
    t.add_argument("--resume", action="store_true",
                   help="go on from DIR/checkpoint.pt where the run stopped")
    speed = t.add_argument_group("speed options (off by default; see the README's Speed)")
    speed.add_argument("--bf16", action="store_true",
                       help="forward passes under bfloat16 autocast")
    speed.add_argument("--compile", action="store_true",
                       help="torch.compile the training step (compiling takes a while)")
    speed.add_argument("--channels-last", action="store_true",
                       help="conv models in channels_last memory format")
    speed.add_argument("--cudnn-benchmark", action="store_true",
                       help="let cuDNN pick its fastest convolutions (CUDA only)")
    s = sub.add_parser("sample", help="draw samples from a checkpoint")
    s.add_argument("checkpoint", type=Path)
    s.add_argument("--n", type=_positive_int, required=True)
    s.add_argument("--out", type=Path, required=True, help="a .pt file")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, help="the digit to draw (conditional models)")
    return p


def train(args) -> int:
    recipe = recipes.get(args.model)
    device = resolve_device(args.device)
    ckpt = args.out / "checkpoint.pt"
    _check_out(args.out, ckpt, args.model, args.resume)
    images = data.load(args.dataset, args.data_root, device)
    overrides = {k: v for k, v in (("batch_size", args.batch_size), ("lr_g", args.lr),
                                   ("lr_d", args.lr)) if v is not None}
    speed = {k: getattr(args, k) for k in SPEED_OPTIONS}
    trainer = Trainer.from_recipe(args.model, images, seed=args.seed, device=device,
                                  **overrides, **speed)
    if args.resume:
        changed = trainer.load(ckpt)
        if changed:
            print("note: going on with " + ", ".join(f"{k} {now} (was {saved})"
                                                     for k, (saved, now) in changed.items()))
    total = args.steps or recipe.steps
    options = ", ".join(k for k, on in speed.items() if on)
    print(f"{args.model} (post {recipe.source}) on {images.name}, {device}; "
          f"step {trainer.step} of {total}" + (f"; speed options: {options}" if options else ""),
          flush=True)
    if trainer.step >= total:
        raise GanError(f"{ckpt} is already at step {trainer.step}; ask for more --steps.")
    try:
        trainer.train(total - trainer.step, checkpoint_path=ckpt,
                      checkpoint_every=args.checkpoint_every, keep_every=args.keep_every)
    except KeyboardInterrupt:
        held = f"holds step {trainer.last_save[1]}" if trainer.last_save else "was not written"
        print(f"interrupted at step {trainer.step}: {ckpt} {held}; run the same command "
              f"with --resume to go on.", file=sys.stderr)
        return 130
    _save_grid(trainer.sample(z=trainer.fixed_z), args.out / "samples.png")
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
            raise GanError(f"{out} already holds a {model!r} run; pass --resume to go on "
                           f"with it, or choose another --out.")
        raise GanError(f"{out} holds a {held!r} run, not {model!r}; choose another --out, "
                       f"so that run stays as it is.")
    elif out.is_dir() and any(out.iterdir()):
        raise GanError(f"{out} is not empty; choose a new or empty folder for a new run, "
                       f"so that no file there is overwritten.")


def _save_grid(images, path):
    import matplotlib.image
    matplotlib.image.imsave(path, grid_image(images).numpy(), cmap="gray", vmin=0, vmax=1)


def sample(args) -> int:
    G = load_generator(args.checkpoint)    # a training checkpoint or an exported generator
    conditional = is_conditional(G)
    if args.label is not None and not conditional:
        raise GanError(f"--label needs a conditional model, and {type(G).__name__} is not "
                       f"one; train cgan or drop --label.")
    if args.label is not None and not 0 <= args.label <= 9:
        raise GanError(f"--label must be a digit from 0 to 9, not {args.label}.")
    torch.manual_seed(args.seed)
    z = torch.randn(args.n, G.z_dim)
    labels = None
    if conditional:
        labels = (torch.full((args.n,), args.label) if args.label is not None
                  else torch.arange(args.n) % 10)
    images = generate(G, z=z, labels=labels).contiguous()
    checkpoint.save_atomically(images, args.out)
    print(f"wrote {tuple(images.shape)} samples to {args.out}")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return (train if args.command == "train" else sample)(args)
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside the training loop, which handles its own
        print("interrupted; any checkpoint saved before is intact.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
