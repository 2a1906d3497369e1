"""The Trainer: the models, their optimisers, the data order, the history, the snapshots
and the checkpoints, around the one step of step.py.

Below the Trainer is the runtime, which a reader of the step never needs to open: the
history and its divergence guard, Ctrl-C and SIGTERM, the EMA copy, and the speed options.
"""

import copy
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint, recipes
from .data import Batches, Images
from .env import GanError, resolve_device, smoke_mode
from .losses import BCE, InstanceNoise
from .models import N_CLASSES, generate, is_conditional
from .step import train_step

SPEED_OPTIONS = ("bf16", "compile", "channels_last", "cudnn_benchmark")
STATS = ("loss_d", "loss_g", "d_real", "d_fake", "penalty", "info")
REMEDY = "try a lower learning rate, or a gradient penalty (the wgan-gp loss)"


class Saving:
    """What a Trainer writes to a checkpoint and reads back (mixed into Trainer)."""

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "order": self.batches.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model": self.name,
            "step": self.step,
            "settings": self.settings,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": None if self.G_ema is None else self.generator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "batches": self.batches.state_dict(),
            "rng": rng,
            "device": self.device.type,
            "fixed_z": self.fixed_z.cpu(),
            "history": self.history.state_dict(),
            "snapshots": [(s, _to_bytes(x)) for s, x in self.snapshots],
            "z_dim": self.G.z_dim,
            "conditional": is_conditional(self.G),
        }

    def save(self, path, *, keep=False) -> None:
        """Write the run to `path` atomically (`keep`: also to <stem>-<step>.pt). A run whose
        losses or weights are NaN or Inf raises `Diverged` instead: never saved over a good one."""
        self.history.flush()
        for name, model in (("G", self.G), ("D", self.D)):
            if not all(p.isfinite().all() for p in model.parameters()):
                raise Diverged(
                    f"Training diverged at step {self.step}: the weights of {name} "
                    f"became NaN or Inf; {REMEDY}."
                )
        held = self.last_save[1] if self.last_save and self.last_save[0] == Path(path) else None
        try:
            checkpoint.save(self.state_dict(), path)
            if keep:
                checkpoint.keep_copy(path, self.step)
        except checkpoint.DiskFull as e:
            raise checkpoint.DiskFull(e.path, self.step, held) from None
        self.last_save = (Path(path), self.step)

    def load(self, path) -> dict:
        """Restore a run saved by `save`, in place. This Trainer's learning rates, betas,
        batch size and n_critic hold from here on (a diverged run can go on with a lower
        rate); returns the settings that differ from the saved ones, {name: (saved, now)}.
        With none, training on is bit for bit the uninterrupted run on a CPU."""
        s = checkpoint.load(path, model=self.name)
        try:
            self.G.load_state_dict(s["G"])
            self.D.load_state_dict(s["D"])
            if self.G_ema is not None:
                self.G_ema.load_state_dict(s["G_ema"])
                self._ema_stale = False  # saved with measured statistics
            self.opt_g.load_state_dict(s["opt_g"])
            self.opt_d.load_state_dict(s["opt_d"])
            self.batches.load_state_dict(s["batches"])
            history = History()
            history.load_state_dict(s["history"])
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError):
            raise GanError(
                f"{path} does not fit this {self.name!r} run: its weights or state "
                f"have other names or shapes; use a checkpoint from the same model "
                f"and gan_helpers version."
            ) from None
        saved = s["settings"]
        changed = {
            k: (saved.get(k), v)
            for k, v in self.settings.items()
            if k != "seed" and saved.get(k) != v
        }
        for opt, lr in ((self.opt_g, self.settings["lr_g"]), (self.opt_d, self.settings["lr_d"])):
            for group in opt.param_groups:  # loading the optimiser brought back the saved ones
                group["lr"], group["betas"] = lr, tuple(self.settings["betas"])
        self.settings["seed"] = saved["seed"]
        self.step, self.history = s["step"], history
        self.snapshots = [(step, _from_bytes(x)) for step, x in s["snapshots"]]
        torch.set_rng_state(s["rng"]["torch"])
        if s["device"] == self.device.type:
            self.batches.generator.set_state(s["rng"]["order"])
        else:  # a CUDA generator's state means nothing to a CPU one
            self.batches.generator.manual_seed(saved["seed"] + self.step)
            changed["device"] = (s["device"], self.device.type)
        if "cuda" in s["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(s["rng"]["cuda"], self.device)
        self.fixed_z = s["fixed_z"].to(self.device)
        self.last_save = (Path(path), self.step)
        return changed

    def _resume(self, path: Path, until, on_snapshot) -> None:
        """Go on from the checkpoint of a run with the same model and settings."""
        saved = checkpoint.load(path, model=self.name).get("settings", {})
        differ = [k for k, v in self.settings.items() if saved.get(k) != v]
        if differ:
            k = differ[0]
            raise GanError(
                f"{path} holds a run with {k} {saved.get(k)!r}, not {self.settings[k]!r}; "
                f"delete it to start over with these settings, or pass another "
                f"checkpoint path."
            )
        self.load(path)
        total = f" of {until}" if until is not None else ""
        left = (
            "nothing left to train"
            if until is not None and self.step >= until
            else "going on from there"
        )
        print(f"Resumed {path} at step {self.step}{total}: {left} (delete the file to start over).")
        if on_snapshot is not None and self.snapshots:
            on_snapshot(*self.snapshots[-1])

    def _last_good(self, e, path) -> str:
        if path is None or self.last_save is None or self.last_save[0] != Path(path):
            return str(e)
        return f"{str(e).rstrip('.')}; {path} keeps step {self.last_save[1]}, the last good one."


class Trainer(Saving):
    """Train a G/D pair: `Trainer.from_recipe("dcgan", images).train(1000)`.

    `noise` is an InstanceNoise schedule for D's inputs; `ema` the decay of an
    exponential moving average of G's weights, from which samples are then drawn; `speed`
    names options from SPEED_OPTIONS (see `_apply_speed`).
    """

    def __init__(
        self,
        G,
        D,
        images: Images,
        *,
        loss=None,
        batch_size=128,
        lr_g=2e-4,
        lr_d=2e-4,
        betas=(0.5, 0.999),
        n_critic=1,
        noise=None,
        ema=None,
        seed=0,
        n_fixed=64,
        device=None,
        name="custom",
        speed=(),
    ):
        _check_settings(G, D, batch_size, lr_g, lr_d, n_critic, n_fixed, noise, ema, speed)
        self.device = resolve_device(device) if device is not None else images.x.device
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if ema else None
        self.loss = loss if loss is not None else BCE()
        self.name, self.n_critic, self.noise, self.ema = name, n_critic, noise, ema
        noise_settings = None if noise is None else [noise.sigma, noise.steps]
        self.settings = dict(
            batch_size=batch_size,
            lr_g=lr_g,
            lr_d=lr_d,
            betas=list(betas),
            n_critic=n_critic,
            seed=seed,
            ema=ema,
            noise=noise_settings,
        )
        self.opt_g, self.opt_d = _adam(self.G, lr_g, betas), _adam(self.D, lr_d, betas)
        self.speed = _apply_speed(self, tuple(speed))

        torch.manual_seed(seed)
        self.batches, self.fixed_z = _data(images, G, self.device, batch_size, n_fixed, seed)
        self.step = 0
        self.history = History()
        self.snapshots = []  # (step, (n_fixed, 1, 28, 28) CPU tensor)
        self.progress = not smoke_mode()
        self.last_save = None  # (path, step) of the checkpoint last written or read
        self._ema_stale = ema is not None  # the EMA copy's BatchNorm statistics need measuring

    @classmethod
    def from_recipe(cls, name, images, *, seed=0, change_g=None, change_d=None, **overrides):
        """The Trainer of a named model of the series, with its own settings. `change_g`
        and `change_d` take the recipe's freshly seeded G or D and return the model to
        train instead; `overrides` replace Trainer settings."""
        r = recipes.get(name)
        torch.manual_seed(seed)
        G, D = r.build()
        G = change_g(G) if change_g is not None else G
        D = change_d(D) if change_d is not None else D
        return cls(G, D, images, seed=seed, name=name, **{**r.trainer_settings(), **overrides})

    # --- training ------------------------------------------------------------------------

    def train(
        self,
        steps=None,
        *,
        until=None,
        seconds=None,
        checkpoint=None,
        checkpoint_every=200,
        keep_every=None,
        snapshot_every=None,
        on_snapshot=None,
    ) -> "History":
        """Train `steps` more steps, or on `until` the run has that many, or for `seconds`
        more seconds of training (snapshots and saves not counted); returns the History.

        With `checkpoint`, the run is saved there every `checkpoint_every` steps and at the
        end (`keep_every` also keeps copies `<stem>-<step>.pt`). A fresh Trainer whose
        checkpoint file exists resumes from it first, so running a cell again after a lost
        runtime goes on where it stopped. `on_snapshot(step, images)` receives the
        fixed-noise samples every `snapshot_every` steps and at the end.

        Ctrl-C and SIGTERM end training between two steps, save, and raise `Interrupted`.
        A NaN or Inf raises `Diverged`, and nothing is saved after it.
        """
        _check_budget(steps, until, seconds, snapshot_every, checkpoint_every, keep_every)
        if checkpoint is not None and self.last_save is None and Path(checkpoint).is_file():
            self._resume(Path(checkpoint), until, on_snapshot)
        end = until if until is not None else self.step + steps if steps is not None else math.inf
        stop_at = math.inf if seconds is None else self.history.seconds + seconds
        stop = _loop(
            self,
            end,
            stop_at,
            checkpoint,
            checkpoint_every,
            keep_every,
            snapshot_every,
            on_snapshot,
        )
        if stop:
            saved = (
                f"; {checkpoint} holds step {self.step}"
                if checkpoint is not None
                else "; nothing was saved (no checkpoint path)"
            )
            raise Interrupted(
                stop[0],
                f"Training stopped by {stop[0].name} between two steps at step {self.step}{saved}.",
            )
        return self.history

    def _snapshot(self, on_snapshot) -> None:
        images = self.sample(z=self.fixed_z).cpu()
        self.snapshots.append((self.step, images))
        if on_snapshot is not None:
            on_snapshot(self.step, images)

    # --- sampling --------------------------------------------------------------------------

    @property
    def generator(self):
        """The generator samples come from: the EMA copy if there is one, its BatchNorm
        statistics measured for its own weights."""
        if self.G_ema is not None and self._ema_stale:
            standing_statistics(self.G_ema)
            self._ema_stale = False
        return self.G if self.G_ema is None else self.G_ema

    def sample(self, n=None, *, z=None, labels=None, ema=True):
        """(n, 1, 28, 28) samples in [-1, 1], drawn in eval mode from fresh noise or `z`.
        A conditional generator draws the digits 0, 1, ..., 9, 0, ... unless given
        `labels`; `ema=False` draws from the raw G of an EMA run."""
        z = torch.randn(n, self.G.z_dim, device=self.device) if z is None else z.to(self.device)
        if is_conditional(self.G) and labels is None:
            labels = torch.arange(len(z), device=self.device) % N_CLASSES
        return generate(self.generator if ema else self.G, z, labels)


# --- the runtime ---------------------------------------------------------------------------


def _adam(model, lr, betas):
    fused = next(model.parameters()).device.type in ("cpu", "cuda")  # one kernel for all
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=fused)
    except ValueError as e:  # e.g. "Invalid beta parameter at index 0: 1.5"
        raise GanError(f"{e}; Adam's betas must lie in [0, 1).") from None


def _data(images, G, device, batch_size, n_fixed, seed):
    """The batches in a seeded order on the device, and the fixed noise, drawn on the CPU
    so that it is the same on every device."""
    if images.x.device != device:
        images = Images(images.x.to(device), images.y.to(device), images.name, images.background)
    order = torch.Generator(device=device).manual_seed(seed)
    pad = (G.image_size - 28) // 2 if G.image_size else 0  # 32x32 models: padded digits
    batches = Batches(images, batch_size, order, pad=pad, labels=is_conditional(G))
    fixed = torch.Generator().manual_seed(seed)
    return batches, torch.randn(n_fixed, G.z_dim, generator=fixed).to(device)


def _check_settings(G, D, batch_size, lr_g, lr_d, n_critic, n_fixed, noise, ema, speed):
    for key, value in (
        ("batch_size", batch_size),
        ("n_critic", n_critic),
        ("n_fixed", n_fixed),
    ):
        _check_count(key, value)
    for key, value in (("lr_g", lr_g), ("lr_d", lr_d)):
        if not _is_number(value) or not value > 0:
            raise GanError(f"The learning rate {key} must be a positive number, not {value!r}.")
    if noise is not None and not isinstance(noise, InstanceNoise):
        raise GanError(f"noise must be an InstanceNoise(sigma, steps) or None, not {noise!r}.")
    if ema is not None and not (_is_number(ema) and 0 < ema < 1):
        raise GanError(f"ema must be a decay between 0 and 1, such as 0.999, not {ema!r}.")
    unknown = set(speed) - set(SPEED_OPTIONS)
    if unknown:
        raise GanError(
            f"Unknown speed option {sorted(unknown)[0]!r}; choose from {', '.join(SPEED_OPTIONS)}."
        )
    if G.image_size != D.image_size:
        raise GanError(
            f"G draws {G.image_size}x{G.image_size} images but D reads "
            f"{D.image_size}x{D.image_size}; pair models of one size."
        )
    if is_conditional(G) != is_conditional(D):
        raise GanError("Either both models or neither must be conditional on the label.")


def _check_budget(steps, until, seconds, snapshot_every, checkpoint_every, keep_every):
    """One budget, and positive counts: each mistake one sentence."""
    budgets = {
        k: v for k, v in (("steps", steps), ("until", until), ("seconds", seconds)) if v is not None
    }
    if len(budgets) != 1:
        raise GanError(
            "Pass train() one budget: steps (how many more), until= (the step to "
            "reach) or seconds= (how long), not several or none."
        )
    if seconds is not None and not (_is_number(seconds) and seconds > 0):
        raise GanError(f"seconds must be a positive number, not {seconds!r}.")
    if seconds is None:
        _check_count(*next(iter(budgets.items())))
    for key, every in (
        ("snapshot_every", snapshot_every),
        ("checkpoint_every", checkpoint_every),
        ("keep_every", keep_every),
    ):
        if every is not None:
            _check_count(key, every)


def _loop(
    t, end, stop_at, checkpoint, checkpoint_every, keep_every, snapshot_every, on_snapshot
) -> list:
    """The runtime around the step: signals, progress, snapshots, saves, the clock and
    the divergence guard. Returns the signals that stopped it, if any."""
    log_every = 1 if t.device.type == "cpu" else 50  # reading a number back waits
    due = lambda every: every is not None and t.step % every == 0
    bar = tqdm(
        total=end - t.step if end < math.inf else None,
        desc=t.name,
        disable=not t.progress,
        leave=False,
    )
    t.G.train()
    t.D.train()
    tick = time.perf_counter()
    with _stop_on_signals() as stop:
        try:
            while (
                t.step < end
                and not stop
                and t.history.seconds + time.perf_counter() - tick < stop_at
            ):
                sigma = t.noise.at(t.step) if t.noise else 0.0
                stats = train_step(
                    t.G,
                    t.D,
                    t.opt_g,
                    t.opt_d,
                    t.batches,
                    t.loss,
                    t.n_critic,
                    sigma,
                )
                if t.G_ema is not None:
                    ema_update(t.G_ema, t.G, t.ema, t.step)
                    t._ema_stale = True
                t.step += 1
                t.history.images += t.batches.batch_size * t.n_critic
                t.history.add(t.step, stats)
                bar.update(1)
                snap = due(snapshot_every)
                save = checkpoint is not None and (due(checkpoint_every) or due(keep_every))
                if snap or save or due(log_every):
                    t.history.flush()  # before any save: a NaN stops the run here
                    bar.set_postfix(
                        loss_d=f"{t.history['loss_d'][-1]:.3f}",
                        loss_g=f"{t.history['loss_g'][-1]:.3f}",
                        refresh=False,
                    )
                if snap or save:
                    t.history.seconds += _elapsed(tick, t.device)
                    if snap:
                        t._snapshot(on_snapshot)
                    if save:
                        t.save(checkpoint, keep=due(keep_every))
                    tick = time.perf_counter()
            t.history.seconds += _elapsed(tick, t.device)
            t.history.flush()
            if snapshot_every and (not t.snapshots or t.snapshots[-1][0] != t.step):
                t._snapshot(on_snapshot)  # the end of the run, whatever its budget
            if checkpoint is not None and t.last_save != (Path(checkpoint), t.step):
                t.save(checkpoint)
        except Diverged as e:
            raise Diverged(t._last_good(e, checkpoint)) from None
        finally:
            bar.close()
    return stop


class Diverged(GanError):
    """A loss or a weight became NaN or Inf; the last checkpoint on disk is the last good one."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training between two steps. `signal` says which."""

    def __init__(self, sig, message):
        super().__init__(message)
        self.signal = sig

    def _render_traceback_(self):  # a notebook's stop button is no error: no traceback
        return [f"Interrupted: {self} Run the cell again to go on."]


@dataclass
class History:
    """Per-step numbers and the clock. Values arrive as device tensors and are read back in
    batches, so the loop never waits on the device for a number."""

    step: list = field(default_factory=list)
    values: dict = field(default_factory=lambda: {k: [] for k in STATS})
    seconds: float = 0.0  # training wall time, snapshots and checkpoints excluded
    images: int = 0  # real images D has seen
    _pending: list = field(default_factory=list, repr=False)

    def add(self, step: int, stats: dict) -> None:
        nan = stats["loss_d"].new_full((), math.nan)  # made on the device: no host copy
        self._pending.append(
            (step, torch.stack([stats.get(k, nan).detach().float() for k in STATS]))
        )

    def flush(self) -> None:
        """Read the pending values back; a NaN or Inf loss stops training here."""
        if not self._pending:
            return
        steps, rows = zip(*self._pending)
        self._pending.clear()
        for step, row in zip(steps, torch.stack(rows).cpu().tolist()):
            self.step.append(step)
            for k, v in zip(STATS, row):
                self.values[k].append(v)
            for k in ("loss_d", "loss_g"):
                if not math.isfinite(self.values[k][-1]):
                    raise Diverged(
                        f"Training diverged at step {step}: {k} became "
                        f"{self.values[k][-1]}; {REMEDY}."
                    )

    def __getitem__(self, key):
        return self.values[key]

    @property
    def img_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def state_dict(self) -> dict:
        self.flush()
        return {
            "step": self.step,
            "values": self.values,
            "seconds": self.seconds,
            "images": self.images,
        }

    def load_state_dict(self, s: dict) -> None:
        self.step, self.values = list(s["step"]), {k: list(s["values"][k]) for k in STATS}
        self.seconds, self.images = s["seconds"], s["images"]


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
        G(z) if not is_conditional(G) else G(z, torch.arange(size, device=device) % N_CLASSES)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    G.eval()


def _apply_speed(trainer, options: tuple) -> tuple:
    """The speed options wrap the step without changing it:
    bf16            G's and D's forward passes under bfloat16 autocast, outputs back in
                    float32; weights and gradients stay float32, so no GradScaler.
    compile         torch.compile of G and D, in place. D stays eager where the loss
                    differentiates D's gradient (a penalty): compiled graphs have no double
                    backward.
    channels_last   the models' weights and activations in NHWC order.
    cudnn_benchmark cuDNN times its convolution algorithms once per shape (CUDA only).
    """
    device = trainer.device.type
    if "bf16" in options and not torch.amp.is_autocast_available(device):
        raise GanError(f"bfloat16 autocast is not available on {device}; train without bf16.")
    models = [trainer.G, trainer.D]
    for model in models:
        if "channels_last" in options:
            model.to(memory_format=torch.channels_last)
        if "bf16" in options:
            _autocast_forward(model, device)
    if "compile" in options:
        trainer.G.compile()
        loss = trainer.loss
        if not (getattr(loss, "lam", 0) or getattr(loss, "r1", 0)):
            trainer.D.compile()
    if "cudnn_benchmark" in options and device == "cuda":
        torch.backends.cudnn.benchmark = True
    return options


def _autocast_forward(model, device_type) -> None:
    contexts = []

    # The hooks stay eager: under `compile` the forward is traced inside the autocast they
    # open, and Dynamo cannot trace a context entered in one function and left in another.
    @torch.compiler.disable
    def enter(module, args):
        contexts.append(torch.autocast(device_type, dtype=torch.bfloat16))
        contexts[-1].__enter__()

    @torch.compiler.disable
    def leave(module, args, out):
        contexts.pop().__exit__(None, None, None)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

    model.register_forward_pre_hook(enter)
    model.register_forward_hook(leave, always_call=True)


def _to_bytes(images):
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _from_bytes(images):
    return images.float() / 127.5 - 1.0


def _check_count(key, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise GanError(f"{key} must be a positive whole number, not {value!r}.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _elapsed(tick, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - tick
