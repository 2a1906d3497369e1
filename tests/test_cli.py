"""The command line round trip: train writes a resumable run, sample reads it back."""

import re
import subprocess
import sys

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
    assert a.shape == (4, 1, 28, 28)  # cropped from the 32x32 generator
    assert not torch.equal(a, b)  # same noise, another label: another image


def test_unknown_model_is_one_sentence(tmp_path):
    r = run("train", "gpt", "--out", str(tmp_path / "x"))
    assert r.returncode != 0
    assert r.stderr.strip().startswith("error: Unknown model 'gpt'")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
