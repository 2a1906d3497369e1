"""Interrupt a run, resume it, and get the very run that was never interrupted.

The command-line runs go through real processes and real signals. On a CPU with a fixed
thread count, the resumed run's final checkpoint must equal the uninterrupted one's bit for
bit: weights, optimiser moments, step, history, data order and every random state.
"""
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gan_helpers import checkpoint, data, losses, models
from gan_helpers.__main__ import main
from gan_helpers.train import Trainer

STEPS, EVERY, KEEP = 80, 10, 40
TRAIN = ["train", "mlp", "--steps", str(STEPS), "--batch-size", "32", "--seed", "3",
         "--checkpoint-every", str(EVERY)]
ENV = dict(os.environ, OMP_NUM_THREADS="1")  # bit for bit needs one fixed thread count


def _cli(*args):
    return subprocess.Popen([sys.executable, "-m", "gan_helpers", *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _signal_after_first_checkpoint(*runs):
    """Send each (process, folder, signal) its signal 50 ms after the run's first periodic
    checkpoint appears: a kill then loses a few steps, which the resumed run must redo.
    The runs are watched side by side, so a slow start of one does not delay the other."""
    first_seen, waiting = {}, list(runs)
    deadline = time.monotonic() + 120
    while waiting:
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        for proc, out, sig in list(waiting):
            assert proc.poll() is None, proc.communicate()[1]  # it ended before its signal
            if (out / "checkpoint.pt").exists():
                first = first_seen.setdefault(out, time.monotonic())
                if time.monotonic() - first >= 0.05:
                    proc.send_signal(sig)
                    waiting.remove((proc, out, sig))
        time.sleep(0.01)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run, one stopped by SIGINT and one by SIGKILL, both resumed; the
    processes of each phase run side by side to keep the test short."""
    root = tmp_path_factory.mktemp("runs")
    out = {name: root / name for name in ("whole", "sigint", "sigkill")}
    whole = _cli(*TRAIN, "--out", str(out["whole"]), "--keep-every", str(KEEP))
    stopped = {"sigint": _cli(*TRAIN, "--out", str(out["sigint"])),
               "sigkill": _cli(*TRAIN, "--out", str(out["sigkill"]))}
    _signal_after_first_checkpoint((stopped["sigint"], out["sigint"], signal.SIGINT),
                                   (stopped["sigkill"], out["sigkill"], signal.SIGKILL))
    interrupted = {name: (p.communicate(timeout=120), p) for name, p in stopped.items()}
    saved = {name: checkpoint.load(out[name] / "checkpoint.pt")["step"] for name in stopped}
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err

    resumed = {name: _cli(*TRAIN, "--out", str(out[name]), "--resume") for name in stopped}
    ckpt = str(out["whole"] / "checkpoint.pt")
    sampled = _cli("sample", ckpt, "--n", "16", "--seed", "5", "--out", str(root / "a.pt"))
    results = {name: (p.communicate(timeout=300), p.returncode) for name, p in resumed.items()}
    _, err = sampled.communicate(timeout=300)
    assert sampled.returncode == 0, err
    return dict(out=out, root=root, interrupted=interrupted, saved=saved, resumed=results)


def assert_same_run(a, b, path="checkpoint"):
    """Equal in every tensor bit and every value, NaN included, except the wall clock."""
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys differ"
        for k in a:
            if (path, k) != ("checkpoint/history", "seconds"):
                assert_same_run(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_run(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _final(out):
    return checkpoint.load(out / "checkpoint.pt")


def test_sigint_saves_between_steps_and_resume_is_exact(runs):
    (_, err), proc = runs["interrupted"]["sigint"]
    step = runs["saved"]["sigint"]
    assert proc.returncode == 130, err
    assert 0 < step < STEPS, "the run finished before the signal; raise STEPS"
    assert err.strip().splitlines()[-1] == (
        f"interrupted at step {step}: {runs['out']['sigint'] / 'checkpoint.pt'} holds step "
        f"{step}; run the same command with --resume to go on.")
    (stdout, stderr), rc = runs["resumed"]["sigint"]
    assert rc == 0, stderr
    assert f"step {step} of {STEPS}" in stdout
    assert stdout.strip().splitlines()[-1].startswith(f"done: {STEPS} steps")
    assert_same_run(_final(runs["out"]["whole"]), _final(runs["out"]["sigint"]))


def test_sigkill_loses_only_the_steps_since_the_last_checkpoint(runs):
    (_, err), proc = runs["interrupted"]["sigkill"]
    step = runs["saved"]["sigkill"]
    assert proc.returncode == -signal.SIGKILL, err
    assert step % EVERY == 0 and 0 < step < STEPS, "the run finished before the kill"
    (stdout, stderr), rc = runs["resumed"]["sigkill"]
    assert rc == 0, stderr
    assert f"step {step} of {STEPS}" in stdout
    assert_same_run(_final(runs["out"]["whole"]), _final(runs["out"]["sigkill"]))


def test_the_resumed_history_is_whole(runs):
    h = _final(runs["out"]["sigkill"])["history"]
    assert h["step"] == list(range(1, STEPS + 1))
    assert all(math.isfinite(v) for v in h["values"]["loss_d"])
    assert h["images"] == STEPS * 32


def test_only_the_latest_checkpoint_and_the_kept_copies_remain(runs):
    whole = runs["out"]["whole"]
    assert sorted(p.name for p in whole.iterdir()) == [
        "checkpoint-40.pt", "checkpoint-80.pt", "checkpoint.pt", "samples.png"]
    assert checkpoint.load(whole / "checkpoint-40.pt")["step"] == 40
    for name in ("sigint", "sigkill"):  # a resumed run cleans up what a kill left behind
        assert sorted(p.name for p in runs["out"][name].iterdir()) == [
            "checkpoint.pt", "samples.png"]


def test_the_same_seed_gives_the_same_samples(runs, capsys):
    """One sample drawn in another process, one here: the same seed, the same bits."""
    ckpt = str(runs["out"]["whole"] / "checkpoint.pt")
    b, c = runs["root"] / "b.pt", runs["root"] / "c.pt"
    assert main(["sample", ckpt, "--n", "16", "--seed", "5", "--out", str(b)]) == 0
    assert main(["sample", ckpt, "--n", "16", "--seed", "6", "--out", str(c)]) == 0
    a, b, c = (torch.load(p, weights_only=True) for p in (runs["root"] / "a.pt", b, c))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# --- the Python API: Trainer.save / Trainer.load --------------------------------------------

def _toy_trainer(points, **changes):
    """A WGAN-GP toy run with every source of randomness the loop has: the data order,
    the noise, the penalty's mixing weights, and annealed instance noise."""
    torch.manual_seed(0)
    settings = dict(loss=losses.WassersteinGP(), batch_size=16, n_critic=2,
                    noise_sigma=0.1, lr_g=1e-3, lr_d=1e-3, seed=1, progress=False)
    return Trainer(models.ToyGenerator(), models.ToyDiscriminator(), points,
                   **{**settings, **changes})


def test_api_resume_is_exact_across_passes_over_the_data(tmp_path, one_thread):
    points = data.ring_of_gaussians(48, seed=0)   # 3 batches a pass: 12 steps, 8 passes
    whole = _toy_trainer(points)
    whole.train(12)
    stopped = _toy_trainer(points)
    stopped.train(12, snapshot_every=1, checkpoint_path=tmp_path / "c.pt",
                  on_snapshot=lambda at, images: setattr(stopped, "stop_requested", at == 5))
    assert checkpoint.load(tmp_path / "c.pt")["step"] == 5
    resumed = _toy_trainer(points)
    assert resumed.load(tmp_path / "c.pt") == {}
    resumed.train(7)
    assert_same_run(whole.state_dict(), resumed.state_dict())


def test_api_resume_applies_new_settings_and_reports_them(tmp_path, one_thread):
    points = data.ring_of_gaussians(48, seed=0)
    _toy_trainer(points).train(2, checkpoint_path=tmp_path / "c.pt")
    slower = _toy_trainer(points, batch_size=8, lr_g=1e-4)
    assert slower.load(tmp_path / "c.pt") == {"batch_size": (16, 8), "lr_g": (1e-3, 1e-4)}
    assert slower.opt_g.param_groups[0]["lr"] == 1e-4  # not the saved 1e-3
    assert slower.step == 2
    slower.train(1)
    assert slower.step == 3


def test_ctrl_c_in_a_notebook_stops_between_steps_and_saves(tmp_path, one_thread):
    """A notebook's interrupt button sends SIGINT: train() finishes its step, saves, and
    raises KeyboardInterrupt; calling it again goes on."""
    points = data.ring_of_gaussians(48, seed=0)
    t = _toy_trainer(points)

    def press_interrupt(step, images):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match="stopped between two steps at step 3"):
        t.train(10, snapshot_every=1, on_snapshot=press_interrupt,
                checkpoint_path=tmp_path / "c.pt")
    assert t.step == 3 and checkpoint.load(tmp_path / "c.pt")["step"] == 3
    t.train(2)
    assert t.step == 5


def test_a_gpu_run_can_go_on_on_a_cpu(tmp_path, one_thread):
    """Not bit for bit, since a CUDA generator's state means nothing to a CPU one: the data
    order's stream restarts, and load() says so. (The checkpoint is a CPU one, relabelled.)"""
    points = data.ring_of_gaussians(48, seed=0)
    _toy_trainer(points).train(2, checkpoint_path=tmp_path / "c.pt")
    state = checkpoint.load(tmp_path / "c.pt")
    state["device"], state["rng"]["order"] = "cuda", torch.zeros(16, dtype=torch.uint8)
    checkpoint.save(state, tmp_path / "gpu.pt")
    t = _toy_trainer(points)
    assert t.load(tmp_path / "gpu.pt") == {"device": ("cuda", "cpu")}
    t.train(2)
    assert t.step == 4
