"""Training throughput: gan_helpers' loop against each source post's own loop.

For every model of the five source posts, the same generator and discriminator classes
(built from `gan_helpers.recipes`, with the same seed) are trained twice in one run, on
one device, with the post's batch size in both loops:

  ours       `Trainer.from_recipe(name, images, batch_size=...).train(steps)`: the images
             are one normalised tensor on the device, batches are drawn by permutation,
             D returns logits for BCE-with-logits, and the G step reuses the fake batch
             of the D step.
  post loop  the post's own loop, rebuilt below one function per post: torchvision MNIST
             through a `DataLoader` with the post's per-image transforms, D wrapped as
             `nn.Sequential(D, nn.Sigmoid())` with `nn.BCELoss`, and the post's own step
             structure (detach or not, fresh noise for the G step or not, retain_graph).

Only the loop differs, so the ratio is what the loop costs or saves. The models are
the course's own: the DCGAN has width 32 where post 002 used 128, and a wider model
spends more of each step in convolutions, which no loop saves, so its ratio would be
lower. img/s counts the real images D sees. Sample grids, prints and weight files are
left out of both loops.

Both loops get the same warm-up steps, then timed blocks of each alternate
(`--repeats`), so that load from other processes hits both alike; the table gives the
median of each. `--clock cpu` counts this process's CPU seconds instead of wall seconds:
with `--threads 1` it hardly moves when other jobs share the cores.

The post loops change only what they need to run here, each change named where it is
made: `.cuda()` becomes the chosen device, `Variable` is dropped, the labels match D's
(B,) output, post 004 drops its last short batch, and post 002 gets a 2-pixel pad and a
plain BCE D step.

    python benchmarks/throughput.py [--device auto|cpu|cuda] [--seconds S | --steps N]
        [--warmup N] [--repeats R] [--threads T] [--clock wall|cpu]
        [--models mlp mlp-bn ...] [--markdown]
"""
import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

from gan_helpers import data, recipes
from gan_helpers.device import resolve_device
from gan_helpers.errors import GanError
from gan_helpers.train import Trainer

SEED = 0


# --- the source posts' loops --------------------------------------------------------------
# Each is a generator that runs the post's loop body forever (epoch after epoch) and yields
# the number of real images of each step. The variable names follow the post.

def post_loader(batch_size, *per_image, drop_last=False) -> Iterator:
    """The posts' data path: torchvision MNIST, per-image transforms, a shuffling DataLoader
    in the main process (none of the posts sets num_workers), one pass per epoch."""
    with contextlib.redirect_stdout(io.StringIO()):  # the offline-split note, said once
        dataset = data.torchvision_dataset("mnist", transform=transforms.Compose(per_image))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=drop_last)
    while True:
        yield from loader


def with_sigmoid(D: nn.Module) -> nn.Module:
    """The posts end D with a Sigmoid and train it with BCELoss; gan_helpers' D returns
    logits of shape (B,), so this gives probabilities of shape (B,)."""
    return nn.Sequential(D, nn.Sigmoid())


def loop_001(G, D, device, batch_size):
    """Post 001: Normalize(0.5, 0.5); Adam 3e-4. The D step detaches a fake batch; the
    G step draws fresh noise and runs G again."""
    dataloader = post_loader(batch_size, transforms.ToTensor(),
                             transforms.Normalize((0.5,), (0.5,)))
    D, criterion = with_sigmoid(D), nn.BCELoss()
    d_optimizer = torch.optim.Adam(D.parameters(), lr=0.0003)
    g_optimizer = torch.optim.Adam(G.parameters(), lr=0.0003)
    for img, _ in dataloader:
        num_img = img.size(0)
        real_img = img.view(num_img, -1).to(device)  # the post: Variable(img).cuda()
        real_label = torch.ones(num_img).to(device)
        fake_label = torch.zeros(num_img).to(device)
        real_out = D(real_img)
        d_loss_real = criterion(real_out, real_label)
        z = torch.randn(num_img, G.z_dim).to(device)
        fake_img = G(z).detach()
        fake_out = D(fake_img)
        d_loss_fake = criterion(fake_out, fake_label)
        d_loss = d_loss_real + d_loss_fake
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()

        z = torch.randn(num_img, G.z_dim).to(device)
        fake_img = G(z)
        output = D(fake_img)
        g_loss = criterion(output, real_label)
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()
        yield num_img


def loop_000(G, D, device, batch_size):
    """Post 000: as post 001, but Normalize(0.1, 0.5) and no detach in the D step, so
    d_loss.backward() also runs back through G."""
    dataloader = post_loader(batch_size, transforms.ToTensor(),
                             transforms.Normalize((0.1,), (0.5,)))
    D, criterion = with_sigmoid(D), nn.BCELoss()
    d_optimizer = torch.optim.Adam(D.parameters(), lr=0.0003)
    g_optimizer = torch.optim.Adam(G.parameters(), lr=0.0003)
    for img, _ in dataloader:
        num_img = img.size(0)
        real_img = img.view(num_img, -1).to(device)
        real_label = torch.ones(num_img).to(device)
        fake_label = torch.zeros(num_img).to(device)
        real_out = D(real_img)
        d_loss_real = criterion(real_out, real_label)
        z = torch.randn(num_img, G.z_dim).to(device)
        fake_img = G(z)  # not detached, as in the post
        fake_out = D(fake_img)
        d_loss_fake = criterion(fake_out, fake_label)
        d_loss = d_loss_real + d_loss_fake
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()

        z = torch.randn(num_img, G.z_dim).to(device)
        fake_img = G(z)
        output = D(fake_img)
        g_loss = criterion(output, real_label)
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()
        yield num_img


def loop_003(G, D, device, batch_size):
    """Post 003 (the MLP pair): Normalize(0.5, 0.5); Adam 2e-4. One backward per D loss
    term; the G step reuses the D step's fake batch, like gan_helpers. The post's labels
    are (B,) against a (B, 1) output, which BCELoss rejects; here D's output is (B,)."""
    trainloader = post_loader(batch_size, transforms.ToTensor(),
                              transforms.Normalize((0.5,), (0.5,)))
    netD, netG, criterion = with_sigmoid(D), G, nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002)
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002)
    for real_images, _ in trainloader:
        netD.zero_grad()
        real_images = real_images.to(device)
        batch_size = real_images.size(0)
        labels = torch.full((batch_size,), 1., device=device)
        output = netD(real_images)
        lossD_real = criterion(output, labels)
        lossD_real.backward()
        noise = torch.randn(batch_size, netG.z_dim, device=device)
        fake_images = netG(noise)
        labels.fill_(0.)
        output = netD(fake_images.detach())
        lossD_fake = criterion(output, labels)
        lossD_fake.backward()
        optimizerD.step()

        netG.zero_grad()
        labels.fill_(1.)
        output = netD(fake_images)
        lossG = criterion(output, labels)
        lossG.backward()
        optimizerG.step()
        yield batch_size


def loop_004(G, D, device, batch_size):
    """Post 004: Resize((32, 32)) + ToTensor (pixels left in [0, 1]); Adam 2e-4, betas
    (0.5, 0.999). Noise from kaiming_normal_ on an uninitialised tensor; the fake batch
    is not detached; retain_graph on two backward passes; the G step runs G again.

    The label tensors have the fixed size Batch, so the post crashes on the last, short
    batch of an epoch: drop_last=True is the smallest fix. The post's deprecated
    `kaiming_normal` is `kaiming_normal_`, the same draw without the warning.
    """
    Batch = batch_size
    DataLoader_ = post_loader(Batch, transforms.Resize((32, 32)), transforms.ToTensor(),
                              drop_last=True)
    Generater, Discriminater = G, with_sigmoid(D)
    Loss_Function = nn.BCELoss().to(device)
    real_label = torch.ones(Batch).to(device)   # the post: (Batch, 1), for a (B, 1) output
    fake_label = torch.zeros(Batch).to(device)
    G_optimizer = torch.optim.Adam(Generater.parameters(), lr=0.0002, betas=(0.5, 0.999))
    D_optimizer = torch.optim.Adam(Discriminater.parameters(), lr=0.0002, betas=(0.5, 0.999))
    for img, img_label in DataLoader_:
        D_optimizer.zero_grad()
        img = img.to(device)
        RD_logit = Discriminater(img)
        RD_Loss = Loss_Function(RD_logit, real_label)
        RD_Loss.backward(retain_graph=True)
        G_input = torch.nn.init.kaiming_normal_(torch.Tensor(Batch, 1, 6, 6)).to(device)
        G_output = Generater(G_input)
        FD_logit = Discriminater(G_output)
        FD_Loss = Loss_Function(FD_logit, fake_label)
        FD_Loss.backward()
        D_optimizer.step()

        Generater.zero_grad()
        G_input = torch.nn.init.kaiming_normal_(torch.Tensor(Batch, 1, 6, 6)).to(device)
        G_output = Generater(G_input)
        G_logit = Discriminater(G_output)
        G_Loss = Loss_Function(G_logit, real_label)
        G_Loss.backward(retain_graph=True)
        G_optimizer.step()
        yield Batch


def loop_002(G, D, device, batch_size):
    """Post 002 (DCGAN): Normalize(0.5, 0.5); Adam 2e-4, betas (0.5, 0.999). The D step
    detaches a fake batch from fresh noise; the G step draws fresh noise and runs G again.

    Two fixes so that it runs at all: `Pad(2)` takes the 28x28 digits to the network's
    32x32 (the post fed 28x28, which fails on shapes), and the D loss is BCE on real and
    fake: the post's WGAN-GP D step calls `lambda_gp`, `use_gpu` and `autograd`, which it
    never defines. Its gradient penalty would add a double backward, so the post's loop
    with it would be slower than this one: the ratio below is on the low side.
    """
    dataloader = post_loader(batch_size, transforms.Pad(2), transforms.ToTensor(),
                             transforms.Normalize((0.5,), (0.5,)))
    gen, disc, z_dim = G, with_sigmoid(D), G.z_dim
    criterion = nn.BCELoss().to(device)
    optimizer_gen = torch.optim.Adam(gen.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizer_disc = torch.optim.Adam(disc.parameters(), lr=0.0002, betas=(0.5, 0.999))
    for data_ in dataloader:
        inputs, _ = data_[0].to(device), data_[1].to(device)
        real_inputs = inputs
        # the post's noise stays on the CPU; .to(device) is the fix
        fake_images = gen(torch.randn(real_inputs.shape[0], z_dim, 1, 1).to(device)).detach()
        real_validity = disc(real_inputs)
        fake_validity = disc(fake_images)
        disc_loss = (criterion(real_validity, torch.ones_like(real_validity))
                     + criterion(fake_validity, torch.zeros_like(fake_validity)))
        optimizer_disc.zero_grad()
        disc_loss.backward()
        optimizer_disc.step()

        gen_input = torch.randn(inputs.shape[0], z_dim, 1, 1).to(device)
        fake_images = gen(gen_input)
        fake_validity = disc(fake_images)
        g_loss = criterion(fake_validity, torch.ones_like(fake_validity))
        optimizer_gen.zero_grad()
        g_loss.backward()
        optimizer_gen.step()
        yield inputs.shape[0]


# --- what is measured ---------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    model: str                  # the gan_helpers recipe
    post: str                   # the source post whose loop is rebuilt
    batch_size: int             # the post's batch size, used by both loops
    post_loop: Callable         # (G, D, device, batch_size) -> iterator of images per step
    target: float               # the ratio issue 2 asks for on the 2-core CPU


CASES = {c.model: c for c in [
    Case("mlp", "001", 128, loop_001, 2.5),
    Case("mlp-bn", "000", 128, loop_000, 2.5),
    Case("mlp-deep", "003", 64, loop_003, 2.5),
    Case("lenet-deconv", "004", 32, loop_004, 1.2),
    Case("dcgan", "002", 128, loop_002, 1.2),
]}


def ours_runner(case: Case, images, device) -> Callable[[int], int]:
    """run(steps) -> images seen, through gan_helpers' Trainer."""
    trainer = Trainer.from_recipe(case.model, images, seed=SEED, batch_size=case.batch_size,
                                  device=device, progress=False)

    def run(steps):
        trainer.train(steps)
        return steps * case.batch_size
    return run


def post_runner(case: Case, device) -> Callable[[int], int]:
    """run(steps) -> images seen, through the post's own loop, on the same model classes."""
    torch.manual_seed(SEED)
    G, D = recipes.get(case.model).build()
    steps = case.post_loop(G.to(device), D.to(device), device, case.batch_size)
    return lambda n: sum(next(steps) for _ in range(n))


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = {"wall": time.perf_counter,   # the seconds a learner waits
          "cpu": time.process_time}    # this process's CPU seconds: with --threads 1, barely
                                       # moved by other processes sharing the cores


@dataclass(frozen=True)
class Stopwatch:
    device: torch.device
    clock: Callable[[], float]

    def time(self, run, steps) -> tuple[int, float]:
        """(images, seconds) for `steps` steps, with the device's queue drained on both ends."""
        synchronize(self.device)
        tick = self.clock()
        n_images = run(steps)
        synchronize(self.device)
        return n_images, self.clock() - tick


@dataclass
class Result:
    case: Case
    ours: float                 # median images per second over the repeats
    post: float

    @property
    def ratio(self) -> float:
        return self.ours / self.post


def measure(case: Case, images, watch: Stopwatch, args) -> Result:
    """Equal warm-up for both loops, then `repeats` timed blocks of each, alternating."""
    runs = {"ours": ours_runner(case, images, watch.device),
            "post": post_runner(case, watch.device)}
    steps = {}
    for name, run in runs.items():
        run(args.warmup)  # first calls: allocations, the DataLoader's first iterator
        if args.steps:
            steps[name] = args.steps
        else:  # size the blocks to about args.seconds, from a probe as long as the warm-up
            _, probe = watch.time(run, args.warmup)
            steps[name] = max(1, round(args.seconds * args.warmup / probe))
    rates = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            n_images, seconds = watch.time(run, steps[name])
            rates[name].append(n_images / seconds)
    return Result(case, statistics.median(rates["ours"]), statistics.median(rates["post"]))


# --- the report ---------------------------------------------------------------------------

def device_name(device) -> str:
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f
                      if line.startswith("model name")), model)
    return f"CPU {model} ({os.cpu_count()} cores)"


def load_average() -> tuple:
    """The 1, 5 and 15 minute load averages, or () where the OS has none (Windows)."""
    return os.getloadavg() if hasattr(os, "getloadavg") else ()


def describe_load(before: tuple, after: tuple, load_robust: bool) -> list[str]:
    """The load during the run, and a warning where other jobs may have skewed it."""
    if not before:
        return []
    before_, after_ = (" ".join(f"{x:.2f}" for x in load) for load in (before, after))
    lines = [f"load average (1, 5, 15 min): {before_} before, {after_} after"]
    if max(before[0], after[0]) > (os.cpu_count() or 1) and not load_robust:
        lines.append("warning: more runnable jobs than cores. Threads that wait on each other "
                     "then stall, so multi-threaded steps slow down far more than the "
                     "single-threaded DataLoader: rerun on an idle machine, or compare with "
                     "--threads 1 --clock cpu.")
    return lines


def table_rows(results, device, unit) -> tuple[list[str], list[list[str]]]:
    """Targets are issue 2's, for the CPU; a CPU run marks the GPU figures not measured."""
    on_cpu = device.type == "cpu"
    header = ["model", "post", "batch", f"{unit} ours", f"{unit} post loop", "ratio",
              "target", "met?"] + (["GPU"] if on_cpu else [])
    rows = []
    for r in results:
        c = r.case
        target, met = ((f"{c.target:.1f}x", "yes" if r.ratio >= c.target else "no")
                       if on_cpu else ("n/a (CPU)", "n/a"))
        rows.append([c.model, c.post, str(c.batch_size), f"{r.ours:,.0f}", f"{r.post:,.0f}",
                     f"{r.ratio:.2f}x", target, met] + (["not measured"] if on_cpu else []))
    return header, rows


def format_table(header, rows, markdown: bool) -> str:
    if markdown:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths))
                     for row in [header, *rows])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, default=3.0,
                        help="length of each timed block (default 3)")
    budget.add_argument("--steps", type=int, help="steps in each timed block, instead")
    p.add_argument("--warmup", type=int, default=10,
                   help="untimed steps before timing, the same for both loops (default 10)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed blocks per loop, alternating ours and post; the median "
                        "is reported (default 3)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--clock", default="wall", choices=list(CLOCKS),
                   help="wall: time.perf_counter (default); cpu: time.process_time, this "
                        "process's CPU seconds, for a CPU shared with other jobs (use it "
                        "with --threads 1: idle threads spinning would count too)")
    p.add_argument("--models", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = p.parse_args(argv)
    for key in ("seconds", "steps", "warmup", "repeats", "threads"):
        value = getattr(args, key)
        if value is not None and value <= 0:
            p.error(f"--{key} must be positive, not {value}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        if args.clock == "cpu" and device.type != "cpu":
            raise GanError("--clock cpu counts CPU seconds; use it with --device cpu.")
        with contextlib.redirect_stdout(io.StringIO()):  # the offline-split note; said below
            images = data.load("mnist", device=device)
    except GanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    watch = Stopwatch(device, CLOCKS[args.clock])
    load_before = load_average()
    results = []
    for model in args.models:
        case = CASES[model]
        print(f"measuring {model} (post {case.post}, batch {case.batch_size}) ...",
              file=sys.stderr, flush=True)
        results.append(measure(case, images, watch, args))

    unit = "img/s" if args.clock == "wall" else "img/CPU-s"
    budget = f"{args.steps} steps" if args.steps else f"about {args.seconds:g} {args.clock} s"
    print(f"device: {device_name(device)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("data: " + ("trained on the 10k MNIST test split offline" if "test" in images.name
                      else images.name))
    print(f"timing: {args.warmup} warm-up steps, then {args.repeats} timed blocks of {budget} "
          f"per loop, alternating; median {unit}, {args.clock} clock")
    load_robust = args.clock == "cpu" and torch.get_num_threads() == 1
    for line in describe_load(load_before, load_average(), load_robust):
        print(line)
    print(f"command: python benchmarks/throughput.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print(format_table(*table_rows(results, device, unit), markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
