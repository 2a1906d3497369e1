"""The Trainer: a G/D pair, their optimisers, the data order and the record of the run, around
the one step of step.py. `Trainer.train` is the loop itself, in view:

    trainer = Trainer(images=images, **recipes.dcgan(seed=0))
    trainer.train(until=1000, checkpoint=RUN / "dcgan.pt", snapshot_every=100)
"""

import copy
import inspect
import math
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .data import Batches, Images
from .env import GanError, resolve_device, smoke_mode
from .losses import BCE
from .models import digits_in_turn, generate, is_conditional
from .step import train_step

REMEDY = "resume with a lower learning rate, or try a gradient penalty (the wgan-gp loss)"


class Diverged(GanError):
    """A loss or a weight became NaN or Inf; the last checkpoint on disk is the last good one."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training between two steps; `signal` says which."""

    def __init__(self, sig, message):
        super().__init__(message)
        self.signal = sig

    def _render_traceback_(self):  # a notebook's stop button is no error: no traceback
        return [f"Interrupted: {self} Run the cell again to go on."]


class Trainer:
    """Trains a G/D pair on `images` with the one step of step.py.

    `loss` is the game (losses.BCE by default), with `n_critic` D steps per G step; `noise`
    an InstanceNoise schedule on D's inputs; `ema` the decay of an exponential moving
    average of G's weights, from which samples are then drawn. `seed` fixes the data order,
    the fixed noise and the steps' random numbers; the models bring their own weights.
    """

    def __init__(self, G, D, images: Images, *, loss=None, batch_size=128, lr_g=2e-4,
                 lr_d=2e-4, betas=(0.5, 0.999), n_critic=1, noise=None, ema=None, seed=0,
                 n_fixed=64, device=None, name="custom"):  # fmt: skip
        if not isinstance(getattr(G, "z_dim", None), int):
            raise GanError(
                f"The generator ({type(G).__name__}) has no z_dim, the size of its noise; set "
                f"G.z_dim to that size before training it."
            )
        self.device = resolve_device(device) if device is not None else images.x.device
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.rank, self.world = 0, 1
        if dist.is_initialized():  # under torchrun: one process per GPU, or several CPU ones
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if self.world > 1 and self.device.type == "cuda":  # batch statistics over every process
            self.G, self.D = (nn.SyncBatchNorm.convert_sync_batchnorm(m) for m in (self.G, self.D))
        self.loss = loss if loss is not None else BCE()
        self.name, self.n_critic, self.noise, self.ema = name, n_critic, noise, ema
        self.opt_g, self.opt_d = _adam(self.G, lr_g, betas), _adam(self.D, lr_d, betas)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if ema else None
        self.settings = dict(
            data=images.name, smoke=smoke_mode(), seed=seed, batch_size=batch_size,
            lr_g=lr_g, lr_d=lr_d, betas=list(betas), n_critic=n_critic, ema=ema,
            noise=None if noise is None else [noise.sigma, noise.steps],
        )  # fmt: skip
        torch.manual_seed(seed + self.rank)  # the noise, the penalties' mixing weights, dropout
        order = torch.Generator(self.device).manual_seed(seed)  # batches arrive on its device
        self.batches = Batches(images, batch_size, order, is_conditional(G), self.rank, self.world)
        self.players = (self.G, self.D)  # what the step trains; under torchrun, DDP wrappers
        if self.world > 1:
            self.players = tuple(_Parallel(m, self.device) for m in self.players)
        fixed = torch.Generator().manual_seed(seed)  # on the CPU: the same on every device
        self.fixed_z = torch.randn(n_fixed, G.z_dim, generator=fixed).to(self.device)
        self.step, self.seconds, self.images_seen = 0, 0.0, 0
        self.history = {"step": []}  # and a list for each number the loss returns
        self.snapshots = []  # (step, fixed-noise samples on the CPU)
        self.saved = None  # (path, step) of the checkpoint last written or read
        self.progress = not smoke_mode() and self.rank == 0
        self._ema_stale = False  # the EMA copy's BatchNorm statistics need measuring

    def train(self, steps=None, *, until=None, checkpoint=None, checkpoint_every=200,
              keep_every=None, snapshot_every=None, on_snapshot=None) -> dict:  # fmt: skip
        """Train `steps` more steps, or on until the run has `until`; returns the history.

        With `checkpoint`, the run is saved there every `checkpoint_every` steps and at the
        end (`keep_every` also keeps copies <stem>-<step>.pt), and a fresh Trainer whose
        checkpoint exists goes on from it: a cell run again after a lost runtime resumes.
        `on_snapshot(step, images)` gets the fixed-noise samples every `snapshot_every`
        steps and at the end. Ctrl-C or SIGTERM stops between two steps, saves and raises
        Interrupted; a NaN or Inf loss raises Diverged before anything is saved.
        """
        end = until if until is not None else self.step + steps
        if checkpoint is not None and self.saved is None and Path(checkpoint).is_file():
            self.resume(checkpoint, until=end)  # a cell run again: go on where it stopped
            left = "nothing left to train" if self.step >= end else "going on from there"
            note = f"Resumed {checkpoint} at step {self.step} of {end}: {left}"
            if self.rank == 0:  # under torchrun, one process speaks for all
                print(f"{note} (delete it to redo).")
            if on_snapshot is not None and self.snapshots:
                on_snapshot(*self.snapshots[-1])
        if self.rank > 0:  # process 0 draws and saves for every process
            checkpoint = snapshot_every = None
        due = lambda every: bool(every) and self.step % every == 0
        pending = []  # the steps' numbers, still on the device: read back in batches
        bar = tqdm(
            total=max(end - self.step, 0), desc=self.name, disable=not self.progress, leave=False
        )
        self.G.train()
        self.D.train()
        tick = time.perf_counter()
        with _stop_on_signals() as stop, bar:
            while self.step < end and not self._stopping(stop):
                sigma = self.noise.at(self.step) if self.noise else 0.0
                stats = train_step(*self.players, self.opt_g, self.opt_d, self.batches,
                                   self.loss, self.n_critic, sigma)  # fmt: skip
                if self.G_ema is not None:
                    ema_update(self.G_ema, self.G, self.ema, self.step)
                    self._ema_stale = True
                self.step += 1
                self.images_seen += self.batches.batch_size * self.n_critic  # all processes'
                pending.append((self.step, stats))
                bar.update()
                snap = due(snapshot_every)
                save = checkpoint is not None and (due(checkpoint_every) or due(keep_every))
                if snap or save or len(pending) == 50:
                    self._record(pending)  # a NaN stops the run here, before any save
                    bar.set_postfix(loss_d=self.history["loss_d"][-1], refresh=False)
                if snap or save:
                    self.seconds += _lap(tick, self.device)
                    if snap:
                        self.snapshot(on_snapshot)
                    if save:
                        self.save(checkpoint, keep=due(keep_every))
                    tick = time.perf_counter()
            self.seconds += _lap(tick, self.device)
            self._record(pending)
            if snapshot_every and (not self.snapshots or self.snapshots[-1][0] != self.step):
                self.snapshot(on_snapshot)  # the end of the run, whatever its budget
            if checkpoint is not None and self.saved != (Path(checkpoint), self.step):
                self.save(checkpoint)
        if stop:
            held = f"{checkpoint} holds step {self.step}" if checkpoint else "nothing was saved"
            raise Interrupted(
                stop[0],
                f"Training stopped by {stop[0].name} between two steps at step "
                f"{self.step}; {held}.",
            )
        return self.history

    def _stopping(self, stop: list) -> bool:
        """Whether a signal asked to stop; under torchrun, whether any process was asked, so
        that every process stops after the same step."""
        if self.world == 1:
            return bool(stop)
        flag = torch.tensor([float(bool(stop))], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if not flag.item():
            return False  # a signal that came during the all-reduce waits for the next step
        if not stop:
            stop.append(signal.SIGTERM)  # a peer's signal; torchrun sends every one the same
        return True

    def _record(self, pending: list) -> None:
        """Read the pending numbers back into the history; a NaN or Inf loss raises."""
        if not pending:
            return
        keys = list(pending[0][1])
        rows = torch.stack([torch.stack([s[k].float() for k in keys]) for _, s in pending])
        for (step, _), row in zip(pending, rows.tolist()):
            self.history["step"].append(step)
            for k, v in zip(keys, row):
                self.history.setdefault(k, []).append(v)
                if k in ("loss_d", "loss_g") and not math.isfinite(v):
                    raise self._diverged(step, f"{k} became {v}")
        pending.clear()

    def _diverged(self, step: int, what: str) -> Diverged:
        kept = (
            f"{self.saved[0]} keeps step {self.saved[1]}, the last good one; " if self.saved else ""
        )
        return Diverged(f"Training diverged at step {step}: {what}; {kept}{REMEDY}.")

    def snapshot(self, on_snapshot=None) -> None:
        """Keep the fixed-noise samples of this step, and hand them to `on_snapshot`."""
        images = self.sample(z=self.fixed_z).cpu()
        self.snapshots.append((self.step, images))
        if on_snapshot is not None:
            on_snapshot(self.step, images)

    @property
    def generator(self):
        """The generator samples come from: the EMA copy if there is one, its BatchNorm
        statistics measured for its own weights."""
        if self.G_ema is None:
            return self.G
        if self._ema_stale:
            standing_statistics(self.G_ema)
            self._ema_stale = False
        return self.G_ema

    def sample(self, n=None, *, z=None, labels=None, ema=True):
        """Samples in [-1, 1], drawn in eval mode from `n` fresh noise vectors or from `z`.
        A conditional generator draws the digits 0, 1, ..., 9, 0, ... unless given `labels`;
        `ema=False` draws from the raw G of an EMA run."""
        z = torch.randn(n, self.G.z_dim, device=self.device) if z is None else z
        if is_conditional(self.G) and labels is None:
            labels = digits_in_turn(len(z))  # generate() moves z and labels to G's device
        return generate(self.generator if ema else self.G, z, labels)

    # --- the run's state: saved, loaded, resumed ---------------------------------------------

    def state_dict(self) -> dict:
        """The whole run as tensors and plain values: models, optimisers, the EMA copy, the
        data order, the history, the snapshots and every random state."""
        rng = {"torch": torch.get_rng_state(), "order": self.batches.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model": self.name, "step": self.step, "settings": self.settings,
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "G_ema": None if self.G_ema is None else self.generator.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "batches": self.batches.state_dict(), "rng": rng, "device": self.device.type,
            "fixed_z": self.fixed_z.cpu(), "history": self.history, "seconds": self.seconds,
            "images_seen": self.images_seen, "z_dim": self.G.z_dim,
            "snapshots": [(s, _to_bytes(x)) for s, x in self.snapshots],
        }  # fmt: skip

    def save(self, path, keep=False) -> None:
        """Write the run to `path` atomically; with `keep`, to <stem>-<step>.pt as well.
        Weights that became NaN or Inf raise Diverged instead: never saved over a good run."""
        for name, model in (("G", self.G), ("D", self.D)):
            if not all(p.isfinite().all() for p in model.parameters()):
                raise self._diverged(self.step, f"the weights of {name} became NaN or Inf")
        state = self.state_dict()
        ckpt.save(state, path)
        self.saved = (Path(path), self.step)
        if keep:
            ckpt.save(state, ckpt.kept(path, self.step))

    def resume(self, path, *, until=None, accept_changes=False) -> dict:
        """Go on from the run saved at `path`. Its settings (the data, smoke mode, seed,
        learning rates, ...) must be this Trainer's, or, with `accept_changes`, this
        Trainer's hold from here on; returns the ones that changed, {name: (saved, now)}. A
        run saved past step `until` is refused: it is not the run that budget asks for."""
        state = ckpt.load(path, model=self.name)
        saved = state["settings"]
        changed = {k: (saved.get(k), v) for k, v in self.settings.items() if saved.get(k) != v}
        if changed and not accept_changes:
            k, (was, now) = next(iter(changed.items()))
            raise GanError(
                f"{path} holds a run with {k} {was!r}, not {now!r}; delete it to start over "
                f"with these settings, or pass another checkpoint path."
            )
        if until is not None and state["step"] > until:
            raise GanError(
                f"{path} holds a run trained for {state['step']} steps, past this budget of "
                f"{until}; delete it to start over, or pass another checkpoint path."
            )
        self.load_state_dict(state, path)
        if state["device"] != self.device.type:
            changed["device"] = (state["device"], self.device.type)
        return changed

    def load_state_dict(self, state: dict, path="the checkpoint") -> None:
        """Restore a run from `state_dict()`, in place. On a CPU, training on is bit for bit
        the uninterrupted run; from another kind of device, the data order is reseeded."""
        try:
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            if self.G_ema is not None:
                self.G_ema.load_state_dict(state["G_ema"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.batches.load_state_dict(state["batches"])
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError):
            raise GanError(
                f"{path} does not fit this {self.name!r} run: its weights or state have other "
                f"names or shapes (another model, or this recipe before it changed); move it "
                f"aside to start over, or use a checkpoint of the same models."
            ) from None
        for opt, lr in ((self.opt_g, self.settings["lr_g"]), (self.opt_d, self.settings["lr_d"])):
            for group in opt.param_groups:  # the optimiser's state brought back the saved ones
                group["lr"], group["betas"] = lr, tuple(self.settings["betas"])
        self.step, self.history = state["step"], state["history"]
        self.seconds, self.images_seen = state["seconds"], state["images_seen"]
        self.snapshots = [(step, x.float() / 127.5 - 1) for step, x in state["snapshots"]]
        self.fixed_z = state["fixed_z"].to(self.device)
        torch.set_rng_state(state["rng"]["torch"])
        if state["device"] == self.device.type:
            self.batches.generator.set_state(state["rng"]["order"])
            if "cuda" in state["rng"]:
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        else:  # a CUDA generator's state means nothing to a CPU one
            self.batches.generator.manual_seed(self.settings["seed"] + self.step)
        self.saved, self._ema_stale = (Path(path), self.step), False


@torch.no_grad()
def ema_update(ema, model, decay, step) -> None:
    """ema <- d * ema + (1 - d) * model, d = min(decay, (1 + t) / (10 + t)): early on the
    average forgets the untrained weights quickly. BatchNorm's statistics are not averaged:
    `standing_statistics` measures them for the averaged weights when samples are drawn."""
    d = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - d)


@torch.no_grad()
def standing_statistics(G, batches=8, size=256, seed=0) -> None:
    """Re-estimate G's BatchNorm running statistics for its current weights, from its own
    outputs on fixed noise (BigGAN's "standing statistics"). The live G's statistics would
    not fit an average of its weights; this draws from its own random generator."""
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    device = next(G.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batches below
    G.train()
    g = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        z = torch.randn(size, G.z_dim, generator=g).to(device)
        G(z) if not is_conditional(G) else G(z, digits_in_turn(size, device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    G.eval()


@contextmanager
def _stop_on_signals():
    """While training, Ctrl-C (SIGINT) or SIGTERM, which Colab, Kaggle and clusters send
    before they take a machine back, is noted in the yielded list, so the loop stops between
    two steps. A second signal goes to the previous handler: a second Ctrl-C stops at once.
    Only the main thread takes signals; an ignored or default handler is left alone."""
    stop, previous = [], {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def note(signum, frame):
        stop.append(signal.Signals(signum))
        signal.signal(signum, previous[signum])

    for s, handler in previous.items():
        if callable(handler) or (s == signal.SIGTERM and handler == signal.SIG_DFL):
            signal.signal(s, note)
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


_NO_SYNC = {False: "broadcast_buffers", True: "forward_sync_buffers"}  # torch 2.14 renamed it


class _Parallel(DistributedDataParallel):
    """One player under torchrun, its gradients averaged over the processes. Two GAN pitfalls
    handled: D's weights are frozen in the G step, and DDP would wait there for gradients
    that never come, so a frozen model runs as itself; and D runs twice (real, then fake)
    before one backward, so buffers are not broadcast between forwards: BatchNorm's
    statistics come from SyncBatchNorm on GPUs, and from each process's own batch on a CPU."""

    def __init__(self, model, device):
        ids = [device] if device.type == "cuda" else None
        newer = "forward_sync_buffers" in inspect.signature(super().__init__).parameters
        super().__init__(model, device_ids=ids, **{_NO_SYNC[newer]: False})
        self.z_dim, self.conditional = getattr(model, "z_dim", None), is_conditional(model)

    def forward(self, *args, **kwargs):
        if not any(p.requires_grad for p in self.module.parameters()):
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)


def _adam(model, lr, betas):
    fused = next(model.parameters()).device.type in ("cpu", "cuda")  # one kernel for all
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=fused)


def _lap(tick, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - tick


def _to_bytes(images):
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
