"""What runs the step, kept out of its way: the loop (progress, the snapshot and checkpoint
cadence, the clock), the history and its divergence guard, Ctrl-C and SIGTERM, resuming,
the speed options, and the checks of a Trainer's settings. A reader of the step and the
Trainer never needs to open this file."""

import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint
from .env import GanError
from .losses import InstanceNoise
from .models import is_conditional

SPEED_OPTIONS = ("bf16", "compile", "channels_last", "cudnn_benchmark")
STATS = ("loss_d", "loss_g", "d_real", "d_fake", "penalty", "info")
REMEDY = "try a lower learning rate, or a gradient penalty (the wgan-gp loss)"


class Diverged(GanError):
    """A loss or a weight became NaN or Inf; the last checkpoint on disk is the last good one."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training between two steps. `signal` says which."""

    def __init__(self, sig, message):
        super().__init__(message)
        self.signal = sig

    def _render_traceback_(self):  # a notebook's stop button is no error: no traceback
        return [f"Interrupted: {self} Run the cell again to go on."]


def run(t, end, stop_at, path, checkpoint_every, keep_every, snapshot_every, on_snapshot):
    """Trainer `t`'s steps until step `end` or `stop_at` seconds of training, with progress,
    snapshots and saves to `path` at their cadence; a signal stops it between two steps."""
    log_every = 1 if t.device.type == "cpu" else 50  # reading a number back waits
    due = lambda every: every is not None and t.step % every == 0
    total = max(end - t.step, 0) if end < math.inf else None  # a resumed run may be past it
    bar = tqdm(total=total, desc=t.name, disable=not t.progress, leave=False)
    t.G.train()
    t.D.train()
    tick = time.perf_counter()
    with _stop_on_signals() as stop:
        try:
            while t.step < end and not stop and t.history.seconds + _since(tick) < stop_at:
                t.one_step()
                bar.update(1)
                snap = due(snapshot_every)
                save = path is not None and (due(checkpoint_every) or due(keep_every))
                if snap or save or due(log_every):
                    t.history.flush()  # before any save: a NaN stops the run here
                    last = {k: f"{t.history[k][-1]:.3f}" for k in ("loss_d", "loss_g")}
                    bar.set_postfix(last, refresh=False)
                if snap or save:
                    t.history.seconds += _elapsed(tick, t.device)
                    if snap:
                        t.snapshot(on_snapshot)
                    if save:
                        t.save(path, keep=due(keep_every))
                    tick = time.perf_counter()
            t.history.seconds += _elapsed(tick, t.device)
            t.history.flush()
            if snapshot_every and (not t.snapshots or t.snapshots[-1][0] != t.step):
                t.snapshot(on_snapshot)  # the end of the run, whatever its budget
            if path is not None and t.last_save != (Path(path), t.step):
                t.save(path)
        except Diverged as e:
            raise Diverged(_last_good(t, e, path)) from None
        finally:
            bar.close()
    if stop:
        saved = f"{path} holds step {t.step}" if path else "nothing was saved (no checkpoint path)"
        raise Interrupted(
            stop[0],
            f"Training stopped by {stop[0].name} between two steps at step {t.step}; {saved}.",
        )


def resume(t, path: Path, until, on_snapshot) -> None:
    """Go on from the checkpoint of a run with the same model and settings."""
    state = checkpoint.load(path, model=t.name)
    saved = state.get("settings", {})
    differ = [k for k, v in t.settings.items() if saved.get(k) != v]
    if differ:
        k = differ[0]
        raise GanError(
            f"{path} holds a run with {k} {saved.get(k)!r}, not {t.settings[k]!r}; delete it "
            f"to start over with these settings, or pass another checkpoint path."
        )
    t.load(path, state)
    done = until is not None and t.step >= until
    left = "nothing left to train" if done else "going on from there"
    total = f" of {until}" if until is not None else ""
    print(f"Resumed {path} at step {t.step}{total}: {left} (delete the file to start over).")
    if on_snapshot is not None and t.snapshots:
        on_snapshot(*t.snapshots[-1])


def _last_good(t, e, path) -> str:
    if path is None or t.last_save is None or t.last_save[0] != Path(path):
        return str(e)
    return f"{str(e).rstrip('.')}; {path} keeps step {t.last_save[1]}, the last good one."


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
        row = torch.stack([stats.get(k, nan).detach().float() for k in STATS])
        self._pending.append((step, row))

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
        return {k: getattr(self, k) for k in ("step", "values", "seconds", "images")}

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


def apply_speed(trainer, options: tuple) -> tuple:
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
    for model in (trainer.G, trainer.D):
        if "channels_last" in options:
            model.to(memory_format=torch.channels_last)
        if "bf16" in options:
            _autocast_forward(model, device)
    if "compile" in options:
        trainer.G.compile()
        if not (getattr(trainer.loss, "lam", 0) or getattr(trainer.loss, "r1", 0)):
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


def check_settings(G, D, batch_size, lr_g, lr_d, n_critic, n_fixed, noise, ema, speed):
    """A Trainer's settings, each mistake one sentence."""
    for key, value in (("batch_size", batch_size), ("n_critic", n_critic), ("n_fixed", n_fixed)):
        _check_count(key, value)
    for key, value in (("lr_g", lr_g), ("lr_d", lr_d)):
        if not _is_number(value) or not value > 0:
            raise GanError(f"The learning rate {key} must be a positive number, not {value!r}.")
    if noise is not None and not isinstance(noise, InstanceNoise):
        raise GanError(f"noise must be an InstanceNoise(sigma, steps) or None, not {noise!r}.")
    if ema is not None and not (_is_number(ema) and 0 < ema < 1):
        raise GanError(f"ema must be a decay between 0 and 1, such as 0.999, not {ema!r}.")
    unknown = sorted(set(speed) - set(SPEED_OPTIONS))
    if unknown:
        choices = ", ".join(SPEED_OPTIONS)
        raise GanError(f"Unknown speed option {unknown[0]!r}; choose from {choices}.")
    if G.image_size != D.image_size:
        raise GanError(
            f"G draws {G.image_size}x{G.image_size} images but D reads "
            f"{D.image_size}x{D.image_size}; pair models of one size."
        )
    if is_conditional(G) != is_conditional(D):
        raise GanError("Either both models or neither must be conditional on the label.")


def check_budget(steps, until, seconds, snapshot_every, checkpoint_every, keep_every):
    """One budget for train(), and positive counts: each mistake one sentence."""
    named = zip(("steps", "until", "seconds"), (steps, until, seconds))
    budgets = {k: v for k, v in named if v is not None}
    if len(budgets) != 1:
        raise GanError(
            "Pass train() one budget: steps (how many more), until= (the step to "
            "reach) or seconds= (how long), not several or none."
        )
    if seconds is not None and not (_is_number(seconds) and seconds > 0):
        raise GanError(f"seconds must be a positive number, not {seconds!r}.")
    if seconds is None:
        _check_count(*next(iter(budgets.items())))
    for key, every in zip(
        ("snapshot_every", "checkpoint_every", "keep_every"),
        (snapshot_every, checkpoint_every, keep_every),
    ):
        if every is not None:
            _check_count(key, every)


def _check_count(key, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise GanError(f"{key} must be a positive whole number, not {value!r}.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _since(tick) -> float:
    return time.perf_counter() - tick


def _elapsed(tick, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return _since(tick)
