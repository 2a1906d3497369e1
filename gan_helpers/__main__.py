"""The command line: `python -m gan_helpers train ...` and `python -m gan_helpers sample ...`.

A mistake in the input is one line on stderr, `error: <one sentence>`, and exit status 2.
Ctrl-C or SIGTERM during training saves the run and exits with 130 or 143.
"""

import argparse
import math
import os
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torchvision.utils import save_image

from . import checkpoint, data, recipes, speed, viz
from .env import GanError, resolve_device
from .models import digits_in_turn, generate, is_conditional
from .train import Interrupted, Trainer

TRAIN_NOTES = """\
checkpoints and resuming:
  DIR/checkpoint.pt is saved every --checkpoint-every steps and when training ends, each
  save replacing the last through a temporary file, so a crash or a full disk mid-save
  cannot damage it; --keep-every K also keeps DIR/checkpoint-<step>.pt. Ctrl-C or SIGTERM
  stops between two steps and saves. After that, a crash or a kill, run the same command
  again with --resume; on a finished run it says so and exits 0. On a CPU the result
  equals an uninterrupted run's bit for bit at the same thread count (OMP_NUM_THREADS).
  A NaN or Inf loss stops the run and the checkpoint keeps the last good step, from which
  --resume --lr SMALLER goes on. A new run needs an --out folder that is new or empty, and
  one folder takes one run at a time.
"""
PICTURES = (".png", ".jpg", ".jpeg")
MAX_GRID = 4096  # samples in one picture


class Parser(argparse.ArgumentParser):
    """argparse whose mistakes get the one line every other error gets, not a usage block."""

    def error(self, message):
        self.exit(2, f"error: {message}; see `{self.prog} --help`.\n")


def run_command(handler, args) -> int:
    """Run a command line's handler: a GanError is one line on stderr and exit status 2."""
    try:
        return handler(args)
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


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
    notes = dict(epilog=TRAIN_NOTES, formatter_class=argparse.RawDescriptionHelpFormatter)
    t = sub.add_parser("train", help="train a model of the series", **notes)
    t.add_argument("model", help=f"one of: {', '.join(recipes.RECIPES)}")
    # fmt: off
    t.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="run folder: new or empty, or a run's folder with --resume")
    t.add_argument("--steps", type=_count, help="training steps (default: the chapter's)")
    t.add_argument("--batch-size", type=_count, help="default: per model")
    t.add_argument("--lr", type=_rate, help="learning rate of G and D (default: per model)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--dataset", default="mnist",
                   help="mnist, fashion-mnist, cifar10 or folder:PATH")
    t.add_argument("--size", type=_count, help="image side for dcgan64: 32 or 64 (default 64)")
    t.add_argument("--data-root", type=Path, help="default: $GAN_DATA_ROOT or data/")
    t.add_argument("--checkpoint-every", type=_count, default=500, metavar="N",
                   help="save DIR/checkpoint.pt every N steps and at the end (default 500)")
    t.add_argument("--keep-every", type=_count, metavar="K",
                   help="also keep DIR/checkpoint-<step>.pt every K steps")
    t.add_argument("--resume", action="store_true", help="go on from DIR/checkpoint.pt")
    fast = t.add_argument_group("speed options (off by default; see the README's Speed)")
    for option in speed.OPTIONS:
        fast.add_argument("--" + option.replace("_", "-"), action="store_true")
    s = sub.add_parser("sample", help="draw samples from a checkpoint or shipped generator")
    s.add_argument("checkpoint", help="a checkpoint.pt, or a shipped name such as dcgan")
    s.add_argument("--n", type=_count, required=True)
    s.add_argument("--out", type=Path, required=True,
                   help="FILE.pt (the tensor) or FILE.png / FILE.jpg (a grid)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, help="the digit to draw (conditional models)")
    s.add_argument("--code", type=int, help="the categorical code to draw (infogan)")
    # fmt: on
    return p


def train(args) -> int:
    recipe, device = recipes.get(args.model), resolve_device(args.device)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:  # started by torchrun: one process per rank
        device = _join_processes(device)
    ckpt = args.out / "checkpoint.pt"
    _check_out(args.out, ckpt, args.model, args.resume)
    size = args.size or recipes.SIZE[args.model]
    if args.model not in recipes.SIZED and size != recipes.SIZE[args.model]:
        raise GanError(
            f"{args.model} draws {recipes.SIZE[args.model]}x{recipes.SIZE[args.model]} images; "
            f"drop --size, or train dcgan64, which takes any size."
        )
    if args.model in recipes.SIZED and size not in (16, 32, 64, 128):
        raise GanError(f"--size must be 16, 32, 64 or 128 for {args.model}, not {size}.")
    images = data.load(args.dataset, args.data_root, device, size=size)
    channels = images.x.shape[1]
    shape = {"size": size, "channels": channels} if args.model in recipes.SIZED else {}
    if not shape and channels != 1:
        raise GanError(
            f"{args.model} draws greyscale digits and {args.dataset} is in colour; train "
            f"dcgan64 on it."
        )
    total = args.steps or recipes.STEPS[args.model]
    settings = {**recipe(seed=args.seed, **shape), "images": images, "device": device}
    for key, value in (("batch_size", args.batch_size), ("lr_g", args.lr), ("lr_d", args.lr)):
        settings[key] = settings[key] if value is None else value
    trainer = Trainer(**settings)
    options = [k for k in speed.OPTIONS if getattr(args, k)]
    speed.apply(trainer, options)
    say = print if trainer.rank == 0 else lambda *a, **k: None  # one process speaks for all
    with _lock(args.out) if trainer.rank == 0 else nullcontext():
        if trainer.rank == 0:
            _check_out(args.out, ckpt, args.model, args.resume)  # a run that started meanwhile
        if args.resume:
            changed = trainer.resume(ckpt, accept_changes=True)
            if changed:
                notes = (f"{k} {now} (was {was})" for k, (was, now) in changed.items())
                say("note: going on with " + ", ".join(notes))
        processes = f" x {trainer.world} processes" if trainer.world > 1 else ""
        say(
            f"{args.model} on {images.name}, {device}{processes}; step {trainer.step} of {total}"
            + (f"; speed options: {', '.join(options)}" if options else ""),
            flush=True,
        )
        if trainer.step >= total:
            say(f"{ckpt} already holds all {total} steps: nothing left to do.")
            return 0
        try:
            trainer.train(
                until=total,
                checkpoint=ckpt,
                checkpoint_every=args.checkpoint_every,
                keep_every=args.keep_every,
            )
        except Interrupted as e:
            held = f"holds step {trainer.saved[1]}" if trainer.saved else "was not written"
            say(
                f"interrupted by {e.signal.name} at step {trainer.step}: {ckpt} {held}; run the "
                f"same command with --resume to go on.",
                file=sys.stderr,
            )
            return 128 + e.signal
    if trainer.rank > 0:
        return 0
    viz.grid_pixels(trainer.sample(z=trainer.fixed_z), scale=2).save(args.out / "samples.png")
    print(
        f"done: {trainer.step} steps in {trainer.seconds:.1f} s "
        f"({trainer.images_seen / max(trainer.seconds, 1e-9):.0f} img/s)"
    )
    return 0


def _join_processes(device) -> torch.device:
    """Join the processes torchrun started (NCCL between GPUs, gloo between CPU processes);
    each takes its own GPU. Left when the process ends."""
    import atexit

    import torch.distributed as dist

    cuda = device.type == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo")
    atexit.register(dist.destroy_process_group)
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device


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
                f"{out} already holds a {model!r} run; pass --resume to go on with it, or "
                f"choose another --out."
            )
        raise GanError(
            f"{out} holds a {held!r} run, not {model!r}; choose another --out, so that run "
            f"stays as it is."
        )
    elif out.is_dir() and any(p.name != ".lock" for p in out.iterdir()):
        raise GanError(
            f"{out} is not empty; choose a new or empty folder for a new run, so that no file "
            f"there is overwritten."
        )


@contextmanager
def _lock(out: Path):
    """One training run per folder: DIR/.lock holds the pid of the run that trains there,
    and a lock whose process is gone (a killed run) is taken over."""
    out.mkdir(parents=True, exist_ok=True)
    lock = out / ".lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        owner = lock.read_text().strip()
        if owner.isdigit() and _alive(int(owner)):
            raise GanError(
                f"Another training run (process {owner}) is using {out}; wait for it to "
                f"finish, or choose another --out."
            ) from None
        lock.unlink(missing_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sample(args) -> int:
    suffix = args.out.suffix.lower()
    if suffix not in (".pt", *PICTURES):
        raise GanError(
            f"--out {args.out} must end in .pt (the samples as a tensor) or .png or .jpg (a "
            f"picture of them)."
        )
    if suffix in PICTURES and args.n > MAX_GRID:
        raise GanError(
            f"A picture holds at most {MAX_GRID:,} samples, not {args.n:,}; ask for fewer with "
            f"--n, or write them to a .pt file."
        )
    G = checkpoint.load_generator(args.checkpoint)
    if args.label is not None and not is_conditional(G):
        raise GanError(
            f"--label needs a conditional model, and {type(G).__name__} is not one; train "
            f"cgan or drop --label."
        )
    n_cat = getattr(G, "n_cat", 0)
    if args.code is not None and not 0 <= args.code < max(n_cat, 1):
        raise GanError(
            f"--code needs an InfoGAN model and a code from 0 to {n_cat - 1}, not {args.code}; "
            f"train infogan, or drop --code."
            if n_cat
            else f"--code needs an InfoGAN model, and {type(G).__name__} is not one; train "
            f"infogan or drop --code."
        )
    noise = torch.Generator().manual_seed(args.seed)
    images = None
    for start in range(0, args.n, 1024):  # in chunks: a large --n never builds one huge batch
        z = torch.randn(min(1024, args.n - start), G.z_dim, generator=noise)
        z = z if args.code is None else G.with_code(z, args.code)
        labels = None
        if is_conditional(G):
            given = torch.full((len(z),), args.label) if args.label is not None else None
            labels = digits_in_turn(len(z)) if given is None else given
        chunk = generate(G, z, labels)
        if images is None:
            images = _room_for(args.n, chunk)
        images[start : start + len(z)] = chunk
    if suffix in PICTURES:
        grid = dict(nrow=math.ceil(args.n**0.5), normalize=True, value_range=(-1, 1))
        save_image(images, args.out, pad_value=1.0, **grid)
    else:
        torch.save(images, args.out)
    print(f"wrote {tuple(images.shape)} samples to {args.out}")
    return 0


def _room_for(n: int, chunk: torch.Tensor) -> torch.Tensor:
    """An empty (n, C, H, W) tensor for the samples, or one sentence if memory is short."""
    need = n * chunk[0].numel() * chunk.element_size()
    try:  # Linux says what it can give without swapping; elsewhere, let torch try
        meminfo = Path("/proc/meminfo").read_text()
        free = int(meminfo.split("MemAvailable:")[1].split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        free = None
    if free is not None and need > free // 2:
        raise GanError(
            f"{n:,} samples of shape {tuple(chunk.shape[1:])} need {need / 1e9:.1f} GB, and "
            f"this machine has {free / 1e9:.1f} GB free; ask for fewer with --n."
        )
    return torch.empty(n, *chunk.shape[1:], dtype=chunk.dtype)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return run_command(train if args.command == "train" else sample, args)
    except KeyboardInterrupt:  # outside the training loop, which handles its own
        print("interrupted; any checkpoint saved before is intact.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
