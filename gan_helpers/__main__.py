"""The command line: `python -m gan_helpers train ...` and `python -m gan_helpers sample ...`.

A mistake in the input gets one sentence on stderr and exit status 2, never a traceback.
"""
import argparse
import signal
import sys
from pathlib import Path

import torch

from . import checkpoint, data, recipes
from .device import resolve_device
from .errors import GanError
from .train import Trainer, generate
from .viz import grid_image


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _parser():
    p = argparse.ArgumentParser(prog="python -m gan_helpers",
                                description="Train and sample the GANs of the series.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model of the series")
    t.add_argument("model", help=f"one of: {', '.join(recipes.RECIPES)}")
    t.add_argument("--out", required=True, type=Path, help="run folder")
    t.add_argument("--steps", type=_positive_int, help="training steps (default: per model)")
    t.add_argument("--batch-size", type=_positive_int, help="default: per model")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    t.add_argument("--data-root", type=Path, help="default: $GAN_DATA_ROOT or data/")
    t.add_argument("--checkpoint-every", type=_positive_int, default=500)
    t.add_argument("--resume", action="store_true", help="go on from DIR/checkpoint.pt")
    s = sub.add_parser("sample", help="draw samples from a checkpoint")
    s.add_argument("checkpoint", type=Path)
    s.add_argument("--n", type=_positive_int, required=True)
    s.add_argument("--out", type=Path, required=True, help="a .pt file")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, help="the digit to draw (conditional models)")
    return p


def train(args) -> None:
    recipe = recipes.get(args.model)
    device = resolve_device(args.device)
    ckpt = args.out / "checkpoint.pt"
    if ckpt.exists() and not args.resume:
        raise GanError(f"{args.out} already holds a run; pass --resume to go on with it, "
                       f"or choose another --out.")
    if args.resume and not ckpt.exists():
        raise GanError(f"There is no {ckpt} to resume; drop --resume to start a new run.")
    images = data.load(args.dataset, args.data_root, device)
    overrides = {} if args.batch_size is None else {"batch_size": args.batch_size}
    trainer = Trainer.from_recipe(args.model, images, seed=args.seed, device=device,
                                  **overrides)
    if args.resume:
        trainer.load(ckpt)
    total = args.steps or recipe.steps
    print(f"{args.model} (post {recipe.source}) on {images.name}, {device}; "
          f"step {trainer.step} of {total}", flush=True)
    if trainer.step >= total:
        raise GanError(f"{ckpt} is already at step {trainer.step}; ask for more --steps.")

    def request_stop(signum, frame):
        trainer.stop_requested = True
    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        trainer.train(total - trainer.step, checkpoint_path=ckpt,
                      checkpoint_every=args.checkpoint_every)
    finally:
        signal.signal(signal.SIGINT, previous)
    trainer.save(ckpt)
    if trainer.stop_requested:
        print(f"interrupted: saved step {trainer.step} to {ckpt}; "
              f"run the same command with --resume to go on", file=sys.stderr)
        sys.exit(130)
    _save_grid(trainer.sample(z=trainer.fixed_z), args.out / "samples.png")
    h = trainer.history
    print(f"done: {trainer.step} steps in {h.seconds:.1f} s ({h.img_per_s:.0f} img/s)")


def _save_grid(images, path):
    import matplotlib.image
    matplotlib.image.imsave(path, grid_image(images).numpy(), cmap="gray", vmin=0, vmax=1)


def sample(args) -> None:
    state = checkpoint.load(args.checkpoint)
    recipe = recipes.get(state.get("model"))
    G, _ = recipe.build()
    try:
        G.load_state_dict(state["G"])
    except (RuntimeError, KeyError) as e:
        raise GanError(f"{args.checkpoint} does not fit the {recipe.name!r} generator; "
                       f"it may come from another version of gan_helpers.") from None
    conditional = state.get("conditional", False)
    if args.label is not None and not conditional:
        raise GanError(f"--label needs a conditional model, and {recipe.name!r} is not one; "
                       f"train cgan or drop --label.")
    if args.label is not None and not 0 <= args.label <= 9:
        raise GanError(f"--label must be a digit from 0 to 9, not {args.label}.")
    torch.manual_seed(args.seed)
    z = torch.randn(args.n, G.z_dim)
    labels = None
    if conditional:
        labels = (torch.full((args.n,), args.label) if args.label is not None
                  else torch.arange(args.n) % 10)
    images = generate(G, z=z, labels=labels).contiguous()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(images, args.out)
    print(f"wrote {tuple(images.shape)} samples to {args.out}")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        (train if args.command == "train" else sample)(args)
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
