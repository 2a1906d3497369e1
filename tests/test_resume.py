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

from gan_helpers import GanError, checkpoint, losses, toy
from gan_helpers.__main__ import main
from gan_helpers.data import Images
from gan_helpers.losses import InstanceNoise
from gan_helpers.train import Interrupted, Trainer

# the signal comes after the first checkpoint (step 10): 390 steps to spare on a busy machine
STEPS, EVERY, KEEP = 400, 10, 200
TRAIN = [
    "train",
    "mlp",
    "--steps",
    str(STEPS),
    "--batch-size",
    "32",
    "--seed",
    "3",
    "--checkpoint-every",
    str(EVERY),
]
ENV = dict(os.environ, OMP_NUM_THREADS="1")  # bit for bit needs one fixed thread count


def _terminal_signals():
    """Ctrl-C as a terminal delivers it, even when the test run itself was started in the
    background, where the shell makes its children ignore SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "gan_helpers", *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_terminal_signals,
    )


def _signal_after_first_checkpoint(*runs):
    """Send each (process, folder, signal) its signal 50 ms after the run's first periodic
    checkpoint appears: a kill then loses a few steps, which the resumed run must redo.
    The runs are watched side by side, so a slow start of one does not delay the other."""
    first_seen, waiting = {}, list(runs)
    deadline = time.monotonic() + 600  # only a guard against a hang, never a verdict
    while waiting:
        assert time.monotonic() < deadline, "no checkpoint within 600 s"
        for proc, out, sig in list(waiting):
            assert proc.poll() is None, proc.communicate()[1]  # it ended before its signal
            if (out / "checkpoint.pt").exists():
                first = first_seen.setdefault(out, time.monotonic())
                if time.monotonic() - first >= 0.05:
                    proc.send_signal(sig)
                    waiting.remove((proc, out, sig))
        time.sleep(0.01)


SIGNALS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run, and one stopped by each of SIGINT, SIGTERM and SIGKILL, all
    resumed; the processes of each phase run side by side to keep the test short."""
    root = tmp_path_factory.mktemp("runs")
    out = {name: root / name for name in ("whole", *SIGNALS)}
    whole = _cli(*TRAIN, "--out", str(out["whole"]), "--keep-every", str(KEEP))
    stopped = {name: _cli(*TRAIN, "--out", str(out[name])) for name in SIGNALS}
    _signal_after_first_checkpoint(*((stopped[n], out[n], sig) for n, sig in SIGNALS.items()))
    interrupted = {name: (p.communicate(timeout=600), p) for name, p in stopped.items()}
    saved = {name: checkpoint.load(out[name] / "checkpoint.pt")["step"] for name in stopped}
    _, err = whole.communicate(timeout=900)
    assert whole.returncode == 0, err

    resumed = {name: _cli(*TRAIN, "--out", str(out[name]), "--resume") for name in stopped}
    ckpt = str(out["whole"] / "checkpoint.pt")
    sampled = _cli("sample", ckpt, "--n", "16", "--seed", "5", "--out", str(root / "a.pt"))
    results = {name: (p.communicate(timeout=900), p.returncode) for name, p in resumed.items()}
    _, err = sampled.communicate(timeout=900)
    assert sampled.returncode == 0, err
    return dict(out=out, root=root, interrupted=interrupted, saved=saved, resumed=results)


def assert_same_run(a, b, path="checkpoint"):
    """Equal in every tensor bit and every value, NaN included, except the wall clock."""
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys differ"
        for k in a:
            if (path, k) != ("checkpoint", "seconds"):
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


@pytest.mark.parametrize("name, code", [("sigint", 130), ("sigterm", 143)])
def test_a_signal_saves_between_steps_and_resume_is_exact(runs, name, code):
    """Ctrl-C, and SIGTERM, which Colab, Kaggle and clusters send before they take a
    machine back: the step in flight ends, the run is saved, the resume command is named."""
    (_, err), proc = runs["interrupted"][name]
    step = runs["saved"][name]
    assert proc.returncode == code, err
    assert 0 < step < STEPS, "the run finished before the signal; raise STEPS"
    assert err.strip().splitlines()[-1] == (
        f"interrupted by {name.upper()} at step {step}: {runs['out'][name] / 'checkpoint.pt'} "
        f"holds step {step}; run the same command with --resume to go on."
    )
    (stdout, stderr), rc = runs["resumed"][name]
    assert rc == 0, stderr
    assert f"step {step} of {STEPS}" in stdout
    assert stdout.strip().splitlines()[-1].startswith(f"done: {STEPS} steps")
    assert_same_run(_final(runs["out"]["whole"]), _final(runs["out"][name]))


def test_resuming_a_finished_run_exits_0_with_nothing_to_do(runs, capsys):
    """ "Run it again until it finishes" loops need this; nothing in the folder changes."""
    out = runs["out"]["whole"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"{out / 'checkpoint.pt'} already holds all {STEPS} steps: nothing left to do."
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


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
    state = _final(runs["out"]["sigkill"])
    h = state["history"]
    assert h["step"] == list(range(1, STEPS + 1))
    assert all(math.isfinite(v) for v in h["loss_d"]) and len(h["loss_d"]) == STEPS
    assert state["images_seen"] == STEPS * 32


def test_only_the_latest_checkpoint_and_the_kept_copies_remain(runs):
    whole = runs["out"]["whole"]
    assert sorted(p.name for p in whole.iterdir()) == [
        f"checkpoint-{KEEP}.pt",
        f"checkpoint-{STEPS}.pt",
        "checkpoint.pt",
        "samples.png",
    ]
    assert checkpoint.load(whole / f"checkpoint-{KEEP}.pt")["step"] == KEEP
    for name in SIGNALS:  # a resumed run cleans up what a kill left behind
        assert sorted(p.name for p in runs["out"][name].iterdir()) == [
            "checkpoint.pt",
            "samples.png",
        ]


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
    """A WGAN-GP toy run with every source of randomness and state the loop has: the data
    order, the noise, the penalty's mixing weights, annealed instance noise, and EMA."""
    torch.manual_seed(0)
    settings = dict(
        loss=losses.WassersteinGP(),
        batch_size=16,
        n_critic=2,
        ema=0.9,
        noise=InstanceNoise(0.1, 12),
        lr_g=1e-3,
        lr_d=1e-3,
        seed=1,
    )
    return Trainer(toy.ToyGenerator(), toy.ToyDiscriminator(), points, **{**settings, **changes})


def test_api_resume_is_exact_across_passes_over_the_data(tmp_path, one_thread):
    points = toy.ring_of_gaussians(48, seed=0)  # 3 batches a pass: 12 steps, 8 passes
    whole = _toy_trainer(points)
    whole.train(12)
    _toy_trainer(points).train(5, checkpoint=tmp_path / "c.pt")
    assert checkpoint.load(tmp_path / "c.pt")["step"] == 5
    resumed = _toy_trainer(points)
    assert resumed.resume(tmp_path / "c.pt") == {}
    resumed.train(7)
    assert_same_run(whole.state_dict(), resumed.state_dict())


def test_instance_noise_anneals_over_its_own_horizon_however_training_is_chunked(one_thread):
    """Chunks of training used to restart the schedule: 4 calls of 3 steps ran it 4 times."""
    points = toy.ring_of_gaussians(48, seed=0)
    whole = _toy_trainer(points)
    whole.train(12)
    chunked = _toy_trainer(points)  # after: a Trainer seeds the global generator it draws from
    for _ in range(4):
        chunked.train(3)
    assert_same_run(whole.state_dict(), chunked.state_dict())


def test_a_notebook_cell_run_again_resumes_its_checkpoint(tmp_path, one_thread, capsys):
    """After a lost runtime the same cell, with a fresh Trainer, goes on from the saved run
    and ends with the uninterrupted run's state; run once more it has nothing left to do."""
    points, path = toy.ring_of_gaussians(48, seed=0), tmp_path / "toy.pt"
    whole = _toy_trainer(points)
    whole.train(until=12)
    _toy_trainer(points).train(until=5, checkpoint=path)  # the runtime is lost after step 5
    again = _toy_trainer(points)  # the same cell, run again
    again.train(until=12, checkpoint=path)
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(f"Resumed {path} at step 5 of 12: going on from there (delete it to redo).")
    )
    assert_same_run(whole.state_dict(), again.state_dict())
    done = _toy_trainer(points)
    done.train(until=12, checkpoint=path)
    assert "nothing left to train" in capsys.readouterr().out and done.step == 12


def test_a_cell_whose_checkpoint_is_past_its_budget_refuses_it(tmp_path, one_thread):
    """A checkpoint trained further than the cell asks is not the run that budget makes:
    the cell says so and leaves the file as it is."""
    points, path = toy.ring_of_gaussians(48, seed=0), tmp_path / "toy.pt"
    _toy_trainer(points).train(until=6, checkpoint=path)
    before = path.read_bytes()
    with pytest.raises(GanError, match="trained for 6 steps, past this budget of 4; delete"):
        _toy_trainer(points).train(until=4, checkpoint=path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("change", ["smoke", "data"])
def test_a_cell_refuses_a_checkpoint_of_another_mode_or_data(
    change, tmp_path, one_thread, monkeypatch
):
    """A run folder from before: made in smoke mode and read in full mode, or made on 8,000
    digits and read where the full MNIST has since been downloaded."""
    points, path = toy.ring_of_gaussians(48, seed=0), tmp_path / "toy.pt"
    _toy_trainer(points).train(until=3, checkpoint=path)
    if change == "smoke":
        monkeypatch.setenv("GAN_SMOKE", "")
        says = "holds a run with smoke True, not False; delete it"
    else:
        points = Images(points.x, points.y, "another ring")
        says = "holds a run with data 'ring of 8 Gaussians', not 'another ring'; delete it"
    with pytest.raises(GanError, match=says):
        _toy_trainer(points).train(until=6, checkpoint=path)


def test_a_checkpoint_of_an_older_version_is_one_sentence(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": "gan_helpers/2", "model": "mlp"}, path)
    with pytest.raises(GanError, match="written by another version of gan_helpers"):
        checkpoint.load(path)


def test_a_rerun_cell_reads_its_checkpoint_once(tmp_path, one_thread, monkeypatch):
    points, path = toy.ring_of_gaussians(48, seed=0), tmp_path / "toy.pt"
    _toy_trainer(points).train(until=3, checkpoint=path)
    reads, read = [], checkpoint.load
    monkeypatch.setattr(checkpoint, "load", lambda *a, **k: reads.append(a[0]) or read(*a, **k))
    again = _toy_trainer(points)
    again.train(until=6, checkpoint=path)
    assert again.step == 6 and reads == [path]


def test_a_cell_with_other_settings_refuses_the_old_checkpoint(tmp_path, one_thread):
    points, path = toy.ring_of_gaussians(48, seed=0), tmp_path / "toy.pt"
    _toy_trainer(points).train(2, checkpoint=path)
    before = path.read_bytes()
    with pytest.raises(GanError, match="holds a run with lr_g 0.001, not 0.0001; delete it"):
        _toy_trainer(points, lr_g=1e-4).train(until=4, checkpoint=path)
    assert path.read_bytes() == before


def test_api_resume_applies_new_settings_when_asked_and_reports_them(tmp_path, one_thread):
    """The command line's --resume goes on with changed settings, saying which changed."""
    points = toy.ring_of_gaussians(48, seed=0)
    _toy_trainer(points).train(2, checkpoint=tmp_path / "c.pt")
    slower = _toy_trainer(points, batch_size=8, lr_g=1e-4)
    with pytest.raises(GanError, match="holds a run with batch_size 16, not 8"):
        slower.resume(tmp_path / "c.pt")
    changed = slower.resume(tmp_path / "c.pt", accept_changes=True)
    assert changed == {"batch_size": (16, 8), "lr_g": (1e-3, 1e-4)}
    assert slower.opt_g.param_groups[0]["lr"] == 1e-4  # not the saved 1e-3
    assert slower.step == 2
    slower.train(1)
    assert slower.step == 3


def test_ctrl_c_in_a_notebook_stops_between_steps_and_saves(tmp_path, one_thread):
    """A notebook's interrupt button sends SIGINT: train() finishes its step, saves, and
    raises KeyboardInterrupt; calling it again goes on."""
    points = toy.ring_of_gaussians(48, seed=0)
    t = _toy_trainer(points)

    def press_interrupt(step, images):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a kernel has it
    try:
        with pytest.raises(Interrupted, match="stopped by SIGINT between two steps at step 3"):
            t.train(10, snapshot_every=1, on_snapshot=press_interrupt, checkpoint=tmp_path / "c.pt")
    finally:
        signal.signal(signal.SIGINT, before)
    assert t.step == 3 and checkpoint.load(tmp_path / "c.pt")["step"] == 3
    t.train(2)
    assert t.step == 5


def test_a_gpu_run_can_go_on_on_a_cpu(tmp_path, one_thread):
    """Not bit for bit, since a CUDA generator's state means nothing to a CPU one: the data
    order's stream restarts, and load() says so. (The checkpoint is a CPU one, relabelled.)"""
    points = toy.ring_of_gaussians(48, seed=0)
    _toy_trainer(points).train(2, checkpoint=tmp_path / "c.pt")
    state = checkpoint.load(tmp_path / "c.pt")
    state["device"], state["rng"]["order"] = "cuda", torch.zeros(16, dtype=torch.uint8)
    checkpoint.save(state, tmp_path / "gpu.pt")
    t = _toy_trainer(points)
    assert t.resume(tmp_path / "gpu.pt") == {"device": ("cuda", "cpu")}
    t.train(2)
    assert t.step == 4
