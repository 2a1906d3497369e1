"""The one training loop of the series.

Every chapter trains through `Trainer`: n_critic discriminator (critic) steps, then one
generator step, on batches drawn from a tensor already on the device. Chapters differ
only by the models and the loss they pass in.
"""
import math
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint, recipes
from .budget import show_progress
from .data import Batches, Images
from .device import resolve_device
from .errors import GanError
from .losses import BCE, WassersteinGP, instance_noise
from .models import N_CLASSES, crop_to_28, is_conditional

STATS = ("loss_d", "loss_g", "d_real", "d_fake", "gp")
SPEED_OPTIONS = ("bf16", "compile", "channels_last", "cudnn_benchmark")  # see Trainer
REMEDY = "try a lower learning rate, or a gradient penalty (the wgan-gp loss)"


class Diverged(GanError):
    """A loss or a weight became NaN or Inf. Training stops there and saves nothing more,
    so the last checkpoint on disk is the last good one."""


@dataclass
class History:
    """Per-step statistics, plus the clock. Values arrive as device tensors and are read
    back in batches, so the loop never waits on the device for a number."""
    step: list = field(default_factory=list)
    values: dict = field(default_factory=lambda: {k: [] for k in STATS})
    seconds: float = 0.0        # training wall time, snapshots and checkpoints excluded
    images: int = 0             # real images the discriminator has seen
    _pending: list = field(default_factory=list, repr=False)

    def add(self, step: int, stats: dict) -> None:
        # new_full fills on the device; torch.tensor(nan, device=) would copy from the host
        # and, on CUDA, wait for the queue to drain on every step
        nan = stats["loss_d"].new_full((), math.nan)
        self._pending.append((step, torch.stack([stats.get(k, nan).detach().float()
                                                 for k in STATS])))

    def flush(self) -> None:
        """Read pending values back; a NaN or Inf loss stops training with a clear message."""
        if not self._pending:
            return
        steps, rows = zip(*self._pending)
        self._pending.clear()
        rows = torch.stack(rows).cpu().tolist()
        for step, row in zip(steps, rows):
            self.step.append(step)
            for k, v in zip(STATS, row):
                self.values[k].append(v)
            for k in ("loss_d", "loss_g"):
                v = self.values[k][-1]
                if not math.isfinite(v):
                    raise Diverged(f"Training diverged at step {step}: {k} became {v}; "
                                   f"{REMEDY}.")

    def __getitem__(self, key):
        return self.values[key]

    @property
    def img_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def state_dict(self) -> dict:
        self.flush()
        return {"step": self.step, "values": self.values, "seconds": self.seconds,
                "images": self.images}

    def load_state_dict(self, s: dict) -> None:
        self.step, self.values = list(s["step"]), {k: list(v) for k, v in s["values"].items()}
        self.seconds, self.images = s["seconds"], s["images"]


class Trainer:
    """Holds a G/D pair, their optimisers, the data, the clock and the history.

    `train(steps)` can be called again to go on; `save`/`load` make a run resumable with
    the exact same result (models, optimisers, step, data order and RNG states).

    Speed options, all off by default (what each measured: benchmarks/ and the README):
    bf16             the forward passes under bfloat16 autocast; gradients and weights stay
                     float32, so no GradScaler is needed. On CPU and GPU alike.
    compile          torch.compile of the step's forward passes, each with its backward
                     (see `_generate_eager`), in the default mode: "reduce-overhead" (CUDA
                     graphs) breaks when one compiled graph's output feeds another
                     (pytorch#152887), as the fake batch does. With a gradient penalty,
                     D's loss stays eager: a compiled graph has no double backward.
    channels_last    the models' conv weights and activations in NHWC order.
    cudnn_benchmark  let cuDNN time its convolution algorithms once per shape (CUDA only;
                     a no-op elsewhere). It is global to the process, and the fastest
                     algorithm need not be deterministic.
    """

    def __init__(self, G, D, images: Images, *, loss=None, batch_size=128, lr_g=2e-4,
                 lr_d=2e-4, betas=(0.5, 0.999), n_critic=1, noise_sigma=0.0, seed=0,
                 n_fixed=64, device=None, name="custom", progress=None, bf16=False,
                 compile=False, channels_last=False, cudnn_benchmark=False):
        for key, value in (("batch_size", batch_size), ("n_critic", n_critic),
                           ("n_fixed", n_fixed)):
            _check_count(key, value)
        for key, value in (("lr_g", lr_g), ("lr_d", lr_d)):
            if not _is_number(value) or not value > 0:
                raise GanError(f"The learning rate {key} must be a positive number, "
                               f"not {value!r}.")
        if not _is_number(noise_sigma) or noise_sigma < 0:
            raise GanError(f"noise_sigma must be a number >= 0, not {noise_sigma!r}.")
        self.device = resolve_device(device) if device is not None else images.x.device
        if images.x.device != self.device:
            images = Images(images.x.to(self.device), images.y.to(self.device), images.name)
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.speed = dict(zip(SPEED_OPTIONS, (bf16, compile, channels_last, cudnn_benchmark)))
        for key, value in self.speed.items():
            if not isinstance(value, bool):
                raise GanError(f"{key} must be True or False, not {value!r}.")
        if bf16 and not torch.amp.is_autocast_available(self.device.type):
            raise GanError(f"bfloat16 autocast is not available on {self.device.type}; "
                           f"train without bf16.")
        if channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        if cudnn_benchmark and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if G.image_size != D.image_size:
            raise GanError(f"G draws {G.image_size}x{G.image_size} images but D reads "
                           f"{D.image_size}x{D.image_size}; pair models of one size.")
        self.conditional = is_conditional(G)
        if self.conditional != is_conditional(D):
            raise GanError("Either both models or neither must be conditional on the label.")
        self.loss = loss if loss is not None else BCE()
        self.n_critic, self.noise_sigma, self.name, self.seed = n_critic, noise_sigma, name, seed
        self.hparams = {"batch_size": batch_size, "lr_g": lr_g, "lr_d": lr_d,
                        "betas": list(betas), "n_critic": n_critic,
                        "noise_sigma": noise_sigma, "seed": seed}
        try:
            # fused: one kernel for all parameters; 4-13% faster per step on CPU (benchmarks/)
            fused = self.device.type in ("cpu", "cuda")
            self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr_g, betas=betas, fused=fused)
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr_d, betas=betas, fused=fused)
        except ValueError as e:  # e.g. "Invalid beta parameter at index 0: 1.5"
            raise GanError(f"{e}; Adam's betas must lie in [0, 1).") from None

        torch.manual_seed(seed)
        order = torch.Generator(device=self.device).manual_seed(seed)
        pad = (G.image_size - 28) // 2 if G.image_size else 0  # 32x32 models see padded digits
        self.batches = Batches(images, batch_size, order, pad=pad)
        fixed = torch.Generator().manual_seed(seed)  # on the CPU: the same on every device
        self.fixed_z = torch.randn(n_fixed, G.z_dim, generator=fixed).to(self.device)
        self.step = 0
        self.history = History()
        self.snapshots = []          # (step, (n_fixed, 1, 28, 28) CPU tensor)
        self.progress = show_progress() if progress is None else progress
        self.stop_requested = False  # set it (e.g. from a callback) to end train() early
        self.interrupted = False     # set by Ctrl-C during train()
        self.last_save = None        # (path, step) of the checkpoint last written or read
        self._anneal = None          # (first, end) step of the instance-noise schedule
        self._generate, self._d_loss, self._g_loss = (
            self._generate_eager, self._d_loss_eager, self._g_loss_eager)
        if compile:  # each is traced on its first call
            self._generate, self._g_loss = map(torch.compile, (self._generate, self._g_loss))
            if not isinstance(self.loss, WassersteinGP):  # a compiled graph has no double
                self._d_loss = torch.compile(self._d_loss)  # backward: the penalty needs one

    @classmethod
    def from_recipe(cls, name, images, *, seed=0, change_g=None, change_d=None, **overrides):
        """A Trainer for a named model of the series, with that model's own settings.

        `change_g` and `change_d` take the recipe's freshly built G or D (seeded with
        `seed`, so the weights a plain run starts from) and return the model to train
        instead, e.g. one with a layer removed; `overrides` replace Trainer settings.
        """
        r = recipes.get(name)
        torch.manual_seed(seed)
        G, D = r.build()
        if change_g is not None:
            G = change_g(G)
        if change_d is not None:
            D = change_d(D)
        kw = dict(batch_size=r.batch_size, lr_g=r.lr_g, lr_d=r.lr_d, betas=r.betas,
                  n_critic=r.n_critic, noise_sigma=r.noise_sigma, loss=recipes.make_loss(r.loss))
        kw.update(overrides)
        return cls(G, D, images, seed=seed, name=name, **kw)

    # --- one step ----------------------------------------------------------------------

    def _noise(self, n):
        return torch.randn(n, self.G.z_dim, device=self.device)

    def _d_input(self, x, frac):
        """Instance noise, annealed linearly from noise_sigma to 0 over the run."""
        return instance_noise(x, self.noise_sigma * (1 - frac)) if self.noise_sigma else x

    def _forward(self):
        """Where the forward passes run: under bfloat16 autocast with `bf16`. The backward
        passes run outside it and follow the dtypes the forward recorded."""
        if self.speed["bf16"]:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _train_step(self, frac: float) -> dict:
        y = None
        for i in range(self.n_critic):
            real, labels = self.batches.next()
            y = labels if self.conditional else None
            z = self._noise(len(real))
            keep_graph = i == self.n_critic - 1  # the G step reuses the last fake batch
            with torch.set_grad_enabled(keep_graph):
                fake = self._generate(z, y)
            # detach: the D step must not backpropagate into G (post 000 did, wastefully)
            d_loss, stats = self._d_loss(self._d_input(real, frac),
                                         self._d_input(fake.detach(), frac), y)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        g_loss = self._g_loss(self._d_input(fake, frac), y)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return {"loss_d": d_loss.detach(), "loss_g": g_loss.detach(), **stats}

    # The three forward passes of a step. With `compile`, each becomes one graph, compiled
    # with its backward. Fewer cannot work: torch.optim breaks the graph around every
    # optimiser step (pytorch#104053), and a compiled graph is one autograd node, so a fake
    # batch leaving the D step's graph would have its saved tensors freed by D's backward
    # before G's backward needs them. Instance noise is added by the caller: `frac` changes
    # every step, and a compiled graph would be recompiled for new values of it.

    def _generate_eager(self, z, y):
        with self._forward():
            return self.G(z) if y is None else self.G(z, y)

    def _d_loss_eager(self, real_in, fake_in, y):
        with self._forward():
            return self.loss.d_loss(self.D, real_in, fake_in, y)

    def _g_loss_eager(self, fake_in, y):
        """G's loss on the fake batch of the last D step, scored by the updated D."""
        with self._forward():
            return self.loss.g_loss(self.D(fake_in) if y is None else self.D(fake_in, y))

    # --- the loop ----------------------------------------------------------------------

    def train(self, steps: int, *, snapshot_every=None, on_snapshot=None,
              checkpoint_path=None, checkpoint_every=None, keep_every=None, log_every=None):
        """Train for `steps` more steps; returns the History.

        on_snapshot(step, images) is called with the fixed-noise samples (28x28, CPU) every
        `snapshot_every` steps and at the end, e.g. to redraw a grid inline.

        With `checkpoint_path`, the run is saved there every `checkpoint_every` steps and
        when training ends, each save replacing the last; every `keep_every` steps a copy
        is also kept beside it as `<name>-<step>.pt`. A NaN or Inf loss raises `Diverged`
        at once and nothing is saved after it, so the checkpoint stays the last good one.

        Ctrl-C (a notebook's interrupt button) ends training between two steps, saves, and
        raises KeyboardInterrupt; call train() again to go on. A second Ctrl-C stops at once.
        """
        _check_count("steps", steps)
        for key, every in (("snapshot_every", snapshot_every), ("log_every", log_every),
                           ("checkpoint_every", checkpoint_every), ("keep_every", keep_every)):
            if every is not None:
                _check_count(key, every)
        if log_every is None:  # reading values back synchronises: rarely on accelerators
            log_every = 1 if self.device.type == "cpu" else 50
        start, end = self.step, self.step + steps
        if self._anneal is None or not self._anneal[0] <= start < self._anneal[1]:
            self._anneal = (start, end)  # a resumed run keeps the schedule it started with
        first, last = self._anneal
        self.stop_requested = self.interrupted = False
        bar = tqdm(total=steps, desc=self.name, disable=not self.progress, leave=False)
        self.G.train()
        self.D.train()
        tick = time.perf_counter()
        try:
            with _stop_between_steps_on_ctrl_c(self):
                while self.step < end and not self.stop_requested:
                    stats = self._train_step(frac=min(1.0, (self.step - first) / (last - first)))
                    self.step += 1
                    self.history.images += self.batches.batch_size * self.n_critic
                    self.history.add(self.step, stats)
                    bar.update(1)
                    at = lambda every: every is not None and self.step % every == 0
                    snap = at(snapshot_every) or (snapshot_every and self.step == end)
                    save = checkpoint_path is not None and (at(checkpoint_every) or
                                                            at(keep_every))
                    if self.step % log_every == 0 or snap or save:
                        self.history.flush()  # before any save: a NaN stops it here
                        bar.set_postfix(loss_d=f"{self.history['loss_d'][-1]:.3f}",
                                        loss_g=f"{self.history['loss_g'][-1]:.3f}",
                                        refresh=False)
                    if snap or save:
                        self.history.seconds += _elapsed(tick, self.device)
                        if snap:
                            self._snapshot(on_snapshot)
                        if save:
                            self.save(checkpoint_path, keep=at(keep_every))
                        tick = time.perf_counter()
                self.history.seconds += _elapsed(tick, self.device)
                self.history.flush()
                if checkpoint_path is not None and self.last_save != (Path(checkpoint_path),
                                                                      self.step):
                    self.save(checkpoint_path)
        except Diverged as e:
            raise Diverged(self._with_last_good(e, checkpoint_path)) from None
        finally:
            bar.close()
        if self.interrupted and self.step < end:
            saved = f", saved to {checkpoint_path}" if checkpoint_path is not None else ""
            raise KeyboardInterrupt(f"Training stopped between two steps at step "
                                    f"{self.step}{saved}; call train() again to go on.")
        return self.history

    def _with_last_good(self, e: Diverged, path) -> str:
        """The divergence message, plus which checkpoint still holds the last good step."""
        if path is None or self.last_save is None or self.last_save[0] != Path(path):
            return str(e)
        return f"{str(e).rstrip('.')}; {path} keeps step {self.last_save[1]}, the last good one."

    def _snapshot(self, on_snapshot):
        images = self.sample(z=self.fixed_z).cpu()
        self.snapshots.append((self.step, images))
        if on_snapshot is not None:
            on_snapshot(self.step, images)

    # --- sampling ----------------------------------------------------------------------

    def sample(self, n=None, *, z=None, labels=None):
        """(n, 1, 28, 28) samples in [-1, 1], drawn in eval mode. z defaults to fresh
        noise; for conditional models labels default to the cycle 0, 1, ..., 9, 0, ..."""
        z = self._noise(n) if z is None else z.to(self.device)
        if self.conditional and labels is None:
            labels = torch.arange(len(z), device=self.device) % N_CLASSES
        return generate(self.G, z=z, labels=labels)

    # --- checkpoints -------------------------------------------------------------------

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "order": self.batches.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"model": self.name, "step": self.step, "hparams": self.hparams,
                "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "batches": self.batches.state_dict(), "rng": rng, "device": self.device.type,
                "anneal": None if self._anneal is None else list(self._anneal),
                "fixed_z": self.fixed_z.cpu(), "history": self.history.state_dict(),
                "z_dim": self.G.z_dim, "conditional": self.conditional}

    def save(self, path, *, keep=False) -> None:
        """Write the run to `path` atomically; `keep` also copies it to <stem>-<step>.pt.

        Raises `Diverged` instead if a loss or a weight is NaN or Inf: a broken run is
        never saved over a good one.
        """
        self.history.flush()
        self._check_weights()
        checkpoint.save(self.state_dict(), path)
        if keep:
            checkpoint.keep_copy(path, self.step)
        self.last_save = (Path(path), self.step)

    def _check_weights(self) -> None:
        """A step can break the weights while its loss, computed before it, looked fine."""
        for name, model in (("G", self.G), ("D", self.D)):
            finite = [p.isfinite().all() for p in model.parameters()]
            if finite and not torch.stack(finite).all():
                raise Diverged(f"Training diverged at step {self.step}: the weights of {name} "
                               f"became NaN or Inf; {REMEDY}.")

    def load(self, path) -> dict:
        """Restore a run saved by `save`, in place: training goes on where it stopped.

        This trainer's own learning rates, betas, batch size, n_critic and noise_sigma hold
        from here on, so a run that diverged can go on from its last good checkpoint with
        a lower rate. Returns the settings that differ from the checkpoint's, as
        {name: (saved, now)}. With none, training on gives the same result as a run never
        interrupted, bit for bit on CPU. Resuming on another kind of device than the one
        that saved (a GPU run on a CPU) restarts the data order's random stream and
        reports "device".
        """
        s = checkpoint.load(path, model=self.name)
        try:
            self.G.load_state_dict(s["G"])
            self.D.load_state_dict(s["D"])
            self.opt_g.load_state_dict(s["opt_g"])
            self.opt_d.load_state_dict(s["opt_d"])
            saved_hparams, step, batches, rng = s["hparams"], s["step"], s["batches"], s["rng"]
            history, fixed_z = s["history"], s["fixed_z"]
        except (RuntimeError, KeyError, ValueError):
            raise GanError(f"{path} does not fit this {self.name!r} model: its weights or "
                           f"state have other names or shapes; use a checkpoint from the "
                           f"same model and gan_helpers version.") from None
        changed = {k: (saved_hparams.get(k), v) for k, v in self.hparams.items()
                   if k != "seed" and saved_hparams.get(k) != v}
        for opt, lr in ((self.opt_g, self.hparams["lr_g"]), (self.opt_d, self.hparams["lr_d"])):
            for group in opt.param_groups:  # loading the optimiser brought back the old ones
                group["lr"], group["betas"] = lr, tuple(self.hparams["betas"])
        self.seed = self.hparams["seed"] = saved_hparams.get("seed", self.seed)
        self.step = step
        self.batches.load_state_dict(batches)
        torch.set_rng_state(rng["torch"])
        saved_device = s.get("device", self.device.type)
        if saved_device == self.device.type:
            self.batches.generator.set_state(rng["order"])
        else:  # a CUDA generator's state means nothing to a CPU one
            self.batches.generator.manual_seed(self.seed + self.step)
            changed["device"] = (saved_device, self.device.type)
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.fixed_z = fixed_z.to(self.device)
        self.history = History()
        self.history.load_state_dict(history)
        self._anneal = None if s.get("anneal") is None else tuple(s["anneal"])
        self.last_save = (Path(path), self.step)
        return changed


@torch.no_grad()
def generate(G, *, z, labels=None):
    """Run G in eval mode (BatchNorm uses its running statistics, so one sample does not
    depend on the others in its batch) and return 28x28 images. A conditional G needs
    `labels`, digits 0-9, one per row of z."""
    if is_conditional(G) and labels is None:
        raise GanError("This generator is conditional, so it needs labels=, one digit from "
                       "0 to 9 per row of z.")
    if not is_conditional(G) and labels is not None:
        raise GanError("This generator is not conditional, so it takes no labels; train a "
                       "conditional model (cgan) to choose the digit.")
    if labels is not None:
        labels = torch.as_tensor(labels, device=z.device)
        if labels.shape != (len(z),) or labels.min() < 0 or labels.max() >= N_CLASSES:
            raise GanError(f"labels must be {len(z)} digits from 0 to 9, one per row of z; "
                           f"got {labels.tolist()}.")
    was_training = G.training
    G.eval()
    try:
        out = G(z) if labels is None else G(z, labels)
    finally:
        G.train(was_training)
    return crop_to_28(out)


@contextmanager
def _stop_between_steps_on_ctrl_c(trainer):
    """While training, Ctrl-C sets `stop_requested`, so the loop ends between two steps,
    never inside one; a second Ctrl-C goes to the previous handler and stops at once.

    Only the main thread can take signals; a SIGINT that is ignored (a background job) or
    set to its default (kill the process) is left as it is.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def request_stop(signum, frame):
        trainer.stop_requested = trainer.interrupted = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_count(key, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise GanError(f"{key} must be a positive whole number, not {value!r}.")


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _elapsed(tick, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - tick
