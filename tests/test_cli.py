"""The command line round trip: train writes a resumable run, sample reads it back."""

import re
import signal
import subprocess
import sys
import time

import torch


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "gan_helpers", *args], capture_output=True, text=True, timeout=300
    )


def test_train_then_sample(tmp_path):
    out = tmp_path / "run"
    r = run("train", "mlp", "--out", str(out), "--steps", "20", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"done: 20 steps in \d+\.\d s \(\d+ img/s\)", last), last
    assert (out / "checkpoint.pt").is_file() and (out / "samples.png").is_file()

    r = run("sample", str(out / "checkpoint.pt"), "--n", "12", "--out", str(tmp_path / "x.pt"))
    assert r.returncode == 0, r.stderr
    x = torch.load(tmp_path / "x.pt", weights_only=True)
    assert x.shape == (12, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0


def test_conditional_sample_draws_the_label_asked_for(tmp_path):
    out = tmp_path / "cgan"
    assert run("train", "cgan", "--out", str(out), "--steps", "2").returncode == 0
    ckpt = str(out / "checkpoint.pt")
    assert (
        run(
            "sample",
            ckpt,
            "--n",
            "4",
            "--label",
            "7",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "a.pt"),
        ).returncode
        == 0
    )
    assert (
        run(
            "sample",
            ckpt,
            "--n",
            "4",
            "--label",
            "3",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "b.pt"),
        ).returncode
        == 0
    )
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert a.shape == (4, 1, 32, 32)  # as the generator draws: digits padded to 32x32
    assert not torch.equal(a, b)  # same noise, another label: another image


def test_unknown_model_is_one_sentence(tmp_path):
    r = run("train", "gpt", "--out", str(tmp_path / "x"))
    assert r.returncode != 0
    assert r.stderr.strip().startswith("error: Unknown model 'gpt'")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_sample_writes_a_picture_when_asked_for_one(tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    r = run("sample", "dcgan", "--n", "30", "--out", str(out))
    assert r.returncode == 0, r.stderr
    with Image.open(out) as picture:  # a real PNG, 6 x 5 digits of 32 pixels with borders
        assert picture.format == "PNG" and picture.size == (6 * 34 + 2, 5 * 34 + 2)


def test_a_second_run_into_the_same_folder_waits_its_turn(tmp_path):
    """Two runs given one --out would interleave their saves into one checkpoint: while the
    first trains, the second refuses in one sentence, and the first goes on untouched."""
    out = tmp_path / "run"
    first = subprocess.Popen(
        # a budget it cannot reach before it is stopped, however fast or busy the machine is
        [
            sys.executable,
            "-m",
            "gan_helpers",
            "train",
            "mlp",
            "--out",
            str(out),
            "--steps",
            "10000000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it, even under a test run started in the background
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 900  # only a guard against a hang, never a verdict
    while not (out / ".lock").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = run("train", "mlp", "--out", str(out), "--steps", "10")
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=600)  # a hang guard
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"error: Another training run (process {first.pid}) is using {out}; wait for it to "
        f"finish, or choose another --out."
    )
    assert first.returncode == 130 and not (out / ".lock").exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (out / ".lock").write_text(gone.stdout.strip())  # that process has ended
    r = run("train", "mlp", "--out", str(out), "--steps", "3")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "samples.png"]
