"""The Trainer: the models, their optimisers, the data order, the history, the snapshots
and the checkpoints, around the one step of step.py. What runs it (the loop, signals, the
divergence guard, speed options, progress) is in runtime.py.
"""

import copy
import math
from pathlib import Path

import torch

from . import checkpoint, files, recipes, runtime
from .data import Batches, Images
from .env import GanError, resolve_device, smoke_mode
from .losses import BCE
from .models import digits_in_turn, generate, is_conditional
from .runtime import REMEDY, Diverged, History
from .step import train_step


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
        state = self.state_dict()  # once: the kept copy is the same bytes, not a reread
        try:
            checkpoint.save(state, path)
            self.last_save = (Path(path), self.step)
            if keep:
                checkpoint.save(state, checkpoint.kept(path, self.step))
        except files.DiskFull as e:
            held = held if e.path == Path(path) else None  # a kept copy held nothing before
            raise files.DiskFull(e.path, self.step, held) from None

    def load(self, path, state=None) -> dict:
        """Restore a run saved by `save`, in place (from `state` if the file is read already).
        This Trainer's learning rates, betas, batch size and n_critic hold from here on (a
        diverged run can go on with a lower rate); returns the settings that differ from the
        saved ones, {name: (saved, now)}. With none, training on is bit for bit the
        uninterrupted run on a CPU."""
        s = checkpoint.load(path, model=self.name) if state is None else state
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


class Trainer(Saving):
    """Train a G/D pair: `Trainer.from_recipe("dcgan", images).train(1000)`.

    `noise` is an InstanceNoise schedule for D's inputs; `ema` the decay of an
    exponential moving average of G's weights, from which samples are then drawn; `speed`
    names options from runtime.SPEED_OPTIONS (see `runtime.apply_speed`).
    """

    def __init__(self, G, D, images: Images, *, loss=None, batch_size=128, lr_g=2e-4, lr_d=2e-4,
                 betas=(0.5, 0.999), n_critic=1, noise=None, ema=None, seed=0, n_fixed=64,
                 device=None, name="custom", speed=()):  # fmt: skip
        runtime.check_settings(G, D, batch_size, lr_g, lr_d, n_critic, n_fixed, noise, ema, speed)
        self.device = resolve_device(device) if device is not None else images.x.device
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if ema else None
        self.loss = loss if loss is not None else BCE()
        self.name, self.n_critic, self.noise, self.ema = name, n_critic, noise, ema
        noise_settings = None if noise is None else [noise.sigma, noise.steps]
        self.settings = dict(batch_size=batch_size, lr_g=lr_g, lr_d=lr_d, betas=list(betas))
        self.settings |= dict(n_critic=n_critic, seed=seed, ema=ema, noise=noise_settings)
        self.opt_g, self.opt_d = _adam(self.G, lr_g, betas), _adam(self.D, lr_d, betas)
        self.speed = runtime.apply_speed(self, tuple(speed))

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

    def train(self, steps=None, *, until=None, seconds=None, checkpoint=None, checkpoint_every=200,
              keep_every=None, snapshot_every=None, on_snapshot=None) -> History:  # fmt: skip
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
        runtime.check_budget(steps, until, seconds, snapshot_every, checkpoint_every, keep_every)
        if checkpoint is not None and self.last_save is None and Path(checkpoint).is_file():
            runtime.resume(self, Path(checkpoint), until, on_snapshot)
        end = until if until is not None else self.step + steps if steps is not None else math.inf
        stop_at = math.inf if seconds is None else self.history.seconds + seconds
        every = (checkpoint_every, keep_every, snapshot_every)
        runtime.run(self, end, stop_at, checkpoint, *every, on_snapshot)
        return self.history

    def one_step(self) -> None:
        """One step of step.py at this point of the run, then the EMA and the history."""
        sigma = self.noise.at(self.step) if self.noise else 0.0
        stats = train_step(
            self.G, self.D, self.opt_g, self.opt_d, self.batches, self.loss, self.n_critic, sigma
        )
        if self.G_ema is not None:
            ema_update(self.G_ema, self.G, self.ema, self.step)
            self._ema_stale = True
        self.step += 1
        self.history.images += self.batches.batch_size * self.n_critic
        self.history.add(self.step, stats)

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
            labels = digits_in_turn(len(z), self.device)
        return generate(self.generator if ema else self.G, z, labels)


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


def _to_bytes(images):
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _from_bytes(images):
    return images.float() / 127.5 - 1.0
