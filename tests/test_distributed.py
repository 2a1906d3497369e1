"""The same step on several processes with torchrun: DistributedDataParallel with the gloo
backend on two CPU processes, as `torchrun --nproc-per-node 2 -m gan_helpers train ...` runs.

A two-process step on half batches is the one-process step on the whole batch, to float
tolerance (the gradients are averaged instead of summed in one pass). On a CPU, BatchNorm
cannot share statistics between processes (SyncBatchNorm needs GPUs): each process then
normalises its own half batch, so the check there is that the pitfalls are handled (two D
forwards before one backward, D frozen in the G step) and the processes stay in step."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import torch

from gan_helpers import checkpoint, metrics, recipes, train
from gan_helpers.checkpoint import load_generator

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node"]
ENV = dict(os.environ, OMP_NUM_THREADS="1")

STEPS = textwrap.dedent("""
    # one run of `steps` steps of a recipe; each process writes its weights and its last
    # gradients (D's from the D step, G's from the G step) to OUT/rank-R.pt
    import sys, torch, torch.distributed as dist
    from gan_helpers import data, recipes, step
    from gan_helpers.train import Trainer

    name, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if "WORLD_SIZE" in __import__("os").environ:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    # the noise pinned: process r draws its slice of the one-process run's noise
    images = data.load(size=recipes.SIZE[name])
    t = Trainer(images=images, **{**recipes.get(name)(seed=0), "batch_size": 64})
    t.progress = False
    noise = torch.randn(64, t.G.z_dim, generator=torch.Generator().manual_seed(7))
    step.torch.randn = lambda n, d, device=None: noise[rank * n : (rank + 1) * n]
    t.train(steps)
    grad = {part: {k: p.grad for k, p in m.named_parameters()} for part, m in zip("GD", (t.G, t.D))}
    state = {"G": t.G.state_dict(), "D": t.D.state_dict(), "grad": grad}
    torch.save(state, f"{out}/rank-{rank}.pt")
""")


def _steps(tmp_path, name, processes, steps=1):
    script, out = tmp_path / "steps.py", tmp_path / f"{name}-{processes}"
    script.write_text(STEPS)
    out.mkdir()
    launch = TORCHRUN + [str(processes)] if processes > 1 else [sys.executable]
    r = subprocess.run([*launch, str(script), name, str(steps), str(out)], env=ENV,
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return [torch.load(out / f"rank-{i}.pt", weights_only=True) for i in range(processes)]


def test_one_step_on_two_processes_is_one_step_on_one(tmp_path):
    (one,) = _steps(tmp_path, "mlp", 1)
    two = _steps(tmp_path, "mlp", 2)
    for part in ("G", "D"):
        for key, grad in one["grad"][part].items():
            # the averaged half-batch gradients are the whole batch's, up to float rounding
            scale = grad.abs().max()
            torch.testing.assert_close(two[0]["grad"][part][key], grad, rtol=0, atol=1e-5 * scale)
            # Adam's first step is lr * g / (|g| + 1e-8): where g is within a few 1e-8 of
            # zero it turns that rounding into a visible difference, so weights are compared
            # where the gradient is clear of it
            clear = grad.abs() > 1e-6
            weight = two[0][part][key]
            torch.testing.assert_close(weight[clear], one[part][key][clear], rtol=0, atol=1e-6)
            assert torch.equal(weight, two[1][part][key])  # the processes agree
    moved = max(
        (one["G"][k] - recipes.mlp(seed=0)["G"].state_dict()[k]).abs().max() for k in one["G"]
    )
    assert moved > 1e-4  # the step did change the weights, so the comparison means something


def test_batchnorm_pairs_train_on_two_processes_and_stay_in_step(tmp_path):
    """The DCGAN pair, with BatchNorm in both players: D runs on real and fake before one
    backward, and is frozen in the G step. The weights stay the same on both processes;
    the BatchNorm statistics are each process's own on a CPU."""
    first, second = _steps(tmp_path, "dcgan", 2, steps=3)
    for part in ("G", "D"):
        weights = [k for k in first[part] if not k.endswith(("running_mean", "running_var"))]
        assert all(torch.equal(first[part][k], second[part][k]) for k in weights)
    stats = [k for k in first["D"] if k.endswith("running_mean")]
    assert not all(torch.equal(first["D"][k], second["D"][k]) for k in stats)


def _cli(*args, processes=2):
    launch = TORCHRUN + [str(processes)] if processes > 1 else [sys.executable]
    return subprocess.Popen([*launch, "-m", "gan_helpers", *args], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def test_torchrun_trains_learns_and_resumes_on_one_process(tmp_path):
    out = tmp_path / "run"
    run = _cli("train", "mlp", "--out", str(out), "--steps", "600", "--checkpoint-every", "200")
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    assert "x 2 processes; step 0 of 600" in stdout and stdout.count("done: 600 steps") == 1
    state = checkpoint.load(out / "checkpoint.pt")
    assert state["step"] == 600 and state["images_seen"] == 600 * 128  # 64 per process
    trained = metrics.evaluate(load_generator(out / "checkpoint.pt"))
    untrained = metrics.evaluate(recipes.mlp()["G"])
    # 600 steps: at 300, one CPU gave 0.89 of the untrained cFID and another passed
    assert trained["cfid"] < 0.8 * untrained["cfid"]
    again = _cli("train", "mlp", "--out", str(out), "--steps", "620", "--resume", processes=1)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0 and "step 600 of 620" in stdout, stderr[-3000:]
    assert checkpoint.load(out / "checkpoint.pt")["step"] == 620


def test_sigterm_stops_every_process_after_the_same_step_and_saves_once(tmp_path):
    out = tmp_path / "run"
    run = _cli("train", "mlp", "--out", str(out), "--steps", "20000", "--checkpoint-every", "50")
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.pt").exists():  # training has begun on both processes
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.1)
    run.send_signal(signal.SIGTERM)  # torchrun passes it on to both processes
    stdout, stderr = run.communicate(timeout=300)  # a process left waiting would hang here
    state = checkpoint.load(out / "checkpoint.pt")
    assert 50 <= state["step"] < 20000, stderr[-3000:]
    assert stderr.count(f"interrupted by SIGTERM at step {state['step']}") == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]  # no lock left behind
    again = _cli("train", "mlp", "--out", str(out), "--steps", str(state["step"] + 10),
                 "--resume", processes=1)  # fmt: skip
    assert again.wait(timeout=300) == 0


def test_a_signal_during_the_stop_vote_waits_for_the_next_step(monkeypatch):
    """The processes vote with an all-reduce on whether to stop. A SIGTERM that reaches one
    process during the vote must not take it out of the loop alone: the others would go on
    into the next step's all-reduce and fail when it leaves (seen on CI as 'Connection reset
    by peer')."""
    stop = []
    t = SimpleNamespace(world=2, device=torch.device("cpu"))
    # nobody had been asked when the vote began; the signal lands while it runs
    monkeypatch.setattr(train.dist, "all_reduce", lambda flag, op: stop.append(signal.SIGTERM))
    assert not train.Trainer._stopping(t, stop)
    monkeypatch.setattr(train.dist, "all_reduce", lambda flag, op: None)
    assert train.Trainer._stopping(t, stop)  # the next step's vote carries it to everyone
