"""The search behind the `infogan` recipe: code purity against steps for one configuration
over seeds, appended to benchmarks/results/infogan-sweep.jsonl (one row per measurement).

    python benchmarks/infogan_sweep.py CONFIG [--seeds 0 1 2] [--steps 2000] [--every 250]

CONFIG "recipe" is the `infogan` recipe as shipped (`recipes.infogan`), measured past its budget,
and "recipe-scale1" the same with its categorical code fed at scale 1 (the recipe before).
The other configurations feed the code at scale 1 too: the earlier recipe's pair (the DCGAN
pair at width 32 with a Q head, 32x32) on the grid weight {1, 5} x rates {equal 5e-4, G faster
1e-3 / D 2e-4} ("cur-l5-eq" ...), and the InfoGAN paper's MNIST pair at several widths
("pap-w256", "pap-w128", "pap-g256d128") with any weight and rates (`--lam`, `--lr-g`,
`--lr-d`). Purity as in benchmarks/infogan.py.
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone

import torch
from common import RESULTS, command, hardware

from gan_helpers import data, explore, losses, models, recipes
from gan_helpers.train import Trainer

ROWS = RESULTS / "infogan-sweep.jsonl"


class EarlierInfoGenerator(models.DCGANGenerator):
    """The earlier recipe's generator: the DCGAN generator (32x32) with the codes in z."""

    def __init__(self, z_dim=74, hidden=32, n_cat=10, n_cont=2):
        super().__init__(z_dim=z_dim, hidden=hidden)
        self.n_cat, self.n_cont = n_cat, n_cont

    def forward(self, z):
        cat = torch.nn.functional.one_hot(z[:, : self.n_cat].argmax(1), self.n_cat).to(z.dtype)
        return super().forward(torch.cat([cat, z[:, self.n_cat :]], dim=1))

    with_code = models.InfoGenerator.with_code


class EarlierInfoDiscriminator(models.DCGANDiscriminator):
    """The earlier recipe's discriminator: the DCGAN one (width 32) with a small Q head."""

    def __init__(self, hidden=32, n_cat=10, n_cont=2):
        super().__init__(hidden=hidden)
        nn = torch.nn
        self.q = nn.Sequential(nn.Flatten(), nn.Linear(4 * hidden * 16, 128), nn.LeakyReLU(0.2),
                               nn.Linear(128, n_cat + n_cont))  # fmt: skip
        self.q.apply(models.dcgan_init)

    def forward(self, x):
        f = self.features(x)
        return self.head(f).flatten(), self.q(f)


# name: (G, D, image size); widths of the paper's pair: (G fc, c2, c1), (D c1, c2, fc, q)
PAIRS = {
    "cur": (EarlierInfoGenerator, EarlierInfoDiscriminator, 32),
    "pap-w256": (lambda: models.InfoGenerator(code_scale=1.0), lambda: models.InfoDiscriminator(),
                 28),
    "pap-w128": (lambda: models.InfoGenerator(fc=128, c2=32, c1=16, code_scale=1.0),
                 lambda: models.InfoDiscriminator(c1=16, c2=32, fc=128, q=64), 28),
    "pap-g256d128": (lambda: models.InfoGenerator(code_scale=1.0),
                     lambda: models.InfoDiscriminator(c1=16, c2=32, fc=128, q=64), 28),
}  # fmt: skip
GRID = {"l5-eq": (5.0, 5e-4, 5e-4), "l1-eq": (1.0, 5e-4, 5e-4),
        "l5-gfast": (5.0, 1e-3, 2e-4), "l1-gfast": (1.0, 1e-3, 2e-4)}  # fmt: skip


def run(config, seed, steps, every, lam, lr_g, lr_d, images, stamp):
    if config.startswith("recipe"):  # the recipe as the chapter and command line train it
        r = recipes.infogan(seed=seed, code_scale=1.0 if config == "recipe-scale1" else None)
        t = Trainer(images=images[28], **r)
        lam, lr_g, lr_d = r["loss"].weight, r["lr_g"], r["lr_d"]
    else:
        make_g, make_d, size = PAIRS[next(p for p in PAIRS if config.startswith(p))]
        torch.manual_seed(seed)
        G, D = make_g(), make_d()
        t = Trainer(G, D, images[size], loss=losses.InfoGAN(weight=lam), batch_size=64,
                    lr_g=lr_g, lr_d=lr_d, seed=seed)  # fmt: skip
    t.progress = False
    start = time.process_time()
    while t.step < steps:
        t.train(min(every, steps - t.step))
        purity, matching = explore.code_purity(t.generator)
        row = {"config": config, "seed": seed, "step": t.step, "purity": purity,
               "matching": matching, "cpu_s_per_step": (time.process_time() - start) / t.step,
               "lam": lam, "lr_g": lr_g, "lr_d": lr_d, **stamp}  # fmt: skip
        with open(ROWS, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{config} seed {seed} step {t.step}: purity {purity:.2f}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    configs = f"recipe, recipe-scale1, cur-{{{','.join(GRID)}}}, or one of {list(PAIRS)[1:]}"
    p.add_argument("config", help=configs)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--lam", type=float, default=1.0)
    p.add_argument("--lr-g", type=float, default=2e-3)
    p.add_argument("--lr-d", type=float, default=4e-4)
    a = p.parse_args(argv)
    lam, lr_g, lr_d = GRID.get(a.config.removeprefix("cur-"), (a.lam, a.lr_g, a.lr_d))
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    images = {28: data.load("mnist"), 32: data.load("mnist", size=32)}
    stamp = {
        "command": command(),
        "hardware": hardware(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for seed in a.seeds:
        run(a.config, seed, a.steps, a.every, lam, lr_g, lr_d, images, stamp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
