"""The one training loop of the series.

Every chapter trains through `Trainer`: n_critic discriminator (critic) steps, then one
generator step, on batches drawn from a tensor already on the device. Chapters differ
only by the models and the loss they pass in.
"""
import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from . import checkpoint, recipes
from .budget import show_progress
from .data import Batches, Images
from .device import resolve_device
from .errors import GanError
from .losses import BCE, instance_noise
from .models import crop_to_28, is_conditional

STATS = ("loss_d", "loss_g", "d_real", "d_fake", "gp")


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
        self._pending.append((step, torch.stack([stats.get(k, torch.tensor(math.nan,
                              device=stats["loss_d"].device)).detach().float() for k in STATS])))

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
                    raise GanError(f"Training diverged at step {step}: {k} became {v}; "
                                   f"try a lower learning rate, or the wgan-gp loss.")

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
    """

    def __init__(self, G, D, images: Images, *, loss=None, batch_size=128, lr_g=2e-4,
                 lr_d=2e-4, betas=(0.5, 0.999), n_critic=1, noise_sigma=0.0, seed=0,
                 n_fixed=64, device=None, name="custom", progress=None):
        for key, value in (("batch_size", batch_size), ("n_critic", n_critic)):
            if not (isinstance(value, int) and value > 0):
                raise GanError(f"{key} must be a positive whole number, not {value!r}.")
        for key, value in (("lr_g", lr_g), ("lr_d", lr_d)):
            if not value > 0:
                raise GanError(f"The learning rate {key} must be positive, not {value!r}.")
        self.device = resolve_device(device) if device is not None else images.x.device
        if images.x.device != self.device:
            images = Images(images.x.to(self.device), images.y.to(self.device), images.name)
        self.G, self.D = G.to(self.device), D.to(self.device)
        if G.image_size != D.image_size:
            raise GanError(f"G draws {G.image_size}x{G.image_size} images but D reads "
                           f"{D.image_size}x{D.image_size}; pair models of one size.")
        self.conditional = is_conditional(G)
        if self.conditional != is_conditional(D):
            raise GanError("Either both models or neither must be conditional on the label.")
        self.loss = loss if loss is not None else BCE()
        self.n_critic, self.noise_sigma, self.name, self.seed = n_critic, noise_sigma, name, seed
        self.hparams = {"batch_size": batch_size, "lr_g": lr_g, "lr_d": lr_d,
                        "betas": list(betas), "n_critic": n_critic, "seed": seed}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr_d, betas=betas)

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
        self.stop_requested = False  # set by a signal handler; checked between steps

    @classmethod
    def from_recipe(cls, name, images, *, seed=0, **overrides):
        """A Trainer for a named model of the series, with that model's own settings."""
        r = recipes.get(name)
        torch.manual_seed(seed)
        G, D = r.build()
        kw = dict(batch_size=r.batch_size, lr_g=r.lr_g, lr_d=r.lr_d, betas=r.betas,
                  n_critic=r.n_critic)
        kw.update(overrides)
        return cls(G, D, images, loss=recipes.make_loss(r.loss), seed=seed, name=name, **kw)

    # --- one step ----------------------------------------------------------------------

    def _noise(self, n):
        return torch.randn(n, self.G.z_dim, device=self.device)

    def _d_input(self, x, frac):
        """Instance noise, annealed linearly from noise_sigma to 0 over the run."""
        return instance_noise(x, self.noise_sigma * (1 - frac)) if self.noise_sigma else x

    def _train_step(self, frac: float) -> dict:
        y = None
        for i in range(self.n_critic):
            real, labels = self.batches.next()
            y = labels if self.conditional else None
            z = self._noise(len(real))
            keep_graph = i == self.n_critic - 1  # the G step reuses the last fake batch
            with torch.set_grad_enabled(keep_graph):
                fake = self.G(z) if y is None else self.G(z, y)
            # detach: the D step must not backpropagate into G (post 000 did, wastefully)
            d_loss, stats = self.loss.d_loss(self.D, self._d_input(real, frac),
                                             self._d_input(fake.detach(), frac), y)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        fake_in = self._d_input(fake, frac)
        scores = self.D(fake_in) if y is None else self.D(fake_in, y)
        g_loss = self.loss.g_loss(scores)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return {"loss_d": d_loss.detach(), "loss_g": g_loss.detach(), **stats}

    # --- the loop ----------------------------------------------------------------------

    def train(self, steps: int, *, snapshot_every=None, on_snapshot=None,
              checkpoint_path=None, checkpoint_every=None, log_every=None):
        """Train for `steps` more steps; returns the History.

        on_snapshot(step, images) is called with the fixed-noise samples (28x28, CPU) every
        `snapshot_every` steps and at the end, e.g. to redraw a grid inline.
        """
        if not (isinstance(steps, int) and steps > 0):
            raise GanError(f"steps must be a positive whole number, not {steps!r}.")
        if log_every is None:  # reading values back synchronises: rarely on accelerators
            log_every = 1 if self.device.type == "cpu" else 50
        start, end = self.step, self.step + steps
        bar = tqdm(total=steps, desc=self.name, disable=not self.progress, leave=False)
        self.G.train()
        self.D.train()
        tick = time.perf_counter()
        try:
            while self.step < end and not self.stop_requested:
                stats = self._train_step(frac=(self.step - start) / steps)
                self.step += 1
                self.history.images += self.batches.batch_size * self.n_critic
                self.history.add(self.step, stats)
                bar.update(1)
                due = lambda every: every and (self.step % every == 0 or self.step == end)
                if self.step % log_every == 0 or due(snapshot_every) or due(checkpoint_every):
                    self.history.flush()
                    bar.set_postfix(loss_d=f"{self.history['loss_d'][-1]:.3f}",
                                    loss_g=f"{self.history['loss_g'][-1]:.3f}", refresh=False)
                if due(snapshot_every) or due(checkpoint_every):
                    self.history.seconds += _elapsed(tick, self.device)
                    if due(snapshot_every):
                        self._snapshot(on_snapshot)
                    if due(checkpoint_every) and checkpoint_path:
                        self.save(checkpoint_path)
                    tick = time.perf_counter()
        finally:
            bar.close()
        self.history.seconds += _elapsed(tick, self.device)
        self.history.flush()
        return self.history

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
            labels = torch.arange(len(z), device=self.device) % 10
        return generate(self.G, z=z, labels=labels if self.conditional else None)

    # --- checkpoints -------------------------------------------------------------------

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "order": self.batches.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"model": self.name, "step": self.step, "hparams": self.hparams,
                "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "batches": self.batches.state_dict(), "rng": rng,
                "fixed_z": self.fixed_z.cpu(), "history": self.history.state_dict(),
                "z_dim": self.G.z_dim, "conditional": self.conditional}

    def save(self, path) -> None:
        checkpoint.save(self.state_dict(), path)

    def load(self, path) -> None:
        """Restore a run saved by `save`, in place: training goes on exactly where it was."""
        s = checkpoint.load(path, model=self.name)
        try:
            self.G.load_state_dict(s["G"])
            self.D.load_state_dict(s["D"])
            self.opt_g.load_state_dict(s["opt_g"])
            self.opt_d.load_state_dict(s["opt_d"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise GanError(f"{path} does not fit this {self.name!r} model "
                           f"({str(e).splitlines()[0]}); use a matching checkpoint.") from None
        self.step = s["step"]
        self.batches.load_state_dict(s["batches"])
        torch.set_rng_state(s["rng"]["torch"])
        self.batches.generator.set_state(s["rng"]["order"])
        if "cuda" in s["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(s["rng"]["cuda"], self.device)
        self.fixed_z = s["fixed_z"].to(self.device)
        self.history.load_state_dict(s["history"])


@torch.no_grad()
def generate(G, *, z, labels=None):
    """Run G in eval mode (BatchNorm uses its running statistics, so one sample does not
    depend on the others in its batch) and return 28x28 images."""
    was_training = G.training
    G.eval()
    try:
        out = G(z) if labels is None else G(z, labels)
    finally:
        G.train(was_training)
    return crop_to_28(out)


def _elapsed(tick, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - tick
