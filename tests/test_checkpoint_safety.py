"""Checkpoints that cannot be corrupted by a crash, exploited by a crafted file, or saved
after training blew up; and one clear sentence for every file that is not a good one."""

import errno
import io
import os
import pickle
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import assert_one_sentence
from gan_helpers import GanError, checkpoint, data, losses, models, recipes, toy
from gan_helpers.__main__ import main
from gan_helpers.checkpoint import load_generator
from gan_helpers.train import Diverged, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return data.load("mnist")


def _mlp(digits, **changes):
    return Trainer(images=digits, **{**recipes.mlp(), **changes})


@pytest.fixture(scope="module")
def mlp_checkpoint(digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("mlp") / "checkpoint.pt"
    _mlp(digits).save(path)
    return path


# --- saves that cannot corrupt ------------------------------------------------------------

DIE_IN_SECOND_SAVE = textwrap.dedent("""
    import io, os, sys
    import torch
    from gan_helpers import data, recipes
    from gan_helpers.train import Trainer

    real_save, calls = torch.save, []
    def save_then_die_halfway(obj, f):
        calls.append(1)
        if len(calls) == 2:              # the second save
            buffer = io.BytesIO()
            real_save(obj, buffer)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            os._exit(9)                  # like SIGKILL: no cleanup, no os.replace
        real_save(obj, f)
    torch.save = save_then_die_halfway

    t = Trainer(images=data.load("mnist"), **{**recipes.mlp(), "batch_size": 16})
    t.train(10, checkpoint=sys.argv[1], checkpoint_every=2)
""")


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "checkpoint.pt"
    died = subprocess.run(
        [sys.executable, "-c", DIE_IN_SECOND_SAVE, str(ckpt)],
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True,
    )
    assert died.returncode == 9, died.stderr.decode()
    assert checkpoint.load(ckpt, model="mlp")["step"] == 2  # the previous save, whole
    (half,) = tmp_path.glob("checkpoint.pt.*.tmp")  # the interrupted save
    with pytest.raises(GanError, match="is not a checkpoint: it is truncated"):
        checkpoint.load(half)  # never read as a checkpoint
    # the same command with --resume goes on from step 2 and clears the leftover
    argv = ["train", "mlp", "--out", str(tmp_path), "--resume", "--steps", "4"]
    assert main([*argv, "--batch-size", "16", "--checkpoint-every", "2"]) == 0
    assert "step 2 of 4" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "samples.png"]


def _disk_fills_after(monkeypatch, free):
    """Saves fail with ENOSPC, as on a full disk, once `free` more bytes are written."""
    left, real_save = [free], torch.save

    def save(obj, f):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        data = buffer.getvalue()
        f.write(data[: left[0]])
        if len(data) > left[0]:
            left[0] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        left[0] -= len(data)

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_leaves_the_previous_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    checkpoint.save({"step": 1}, path)
    _disk_fills_after(monkeypatch, 100)
    with pytest.raises(checkpoint.DiskFull) as e:
        checkpoint.save({"step": 2}, path)
    assert str(e.value) == (
        f"The disk is full: {path} could not be written, and the last checkpoint there is "
        f"intact; free some space, then go on from it."
    )
    assert_one_sentence(str(e.value))
    monkeypatch.undo()
    assert checkpoint.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_a_disk_that_fills_during_training_loses_nothing(tmp_path, monkeypatch, capsys):
    """The command line says the last checkpoint is intact; after space is freed, --resume
    ends with exactly the weights of a run that never hit the full disk."""
    whole, full = tmp_path / "whole", tmp_path / "full"
    argv = ["train", "mlp", "--steps", "6", "--batch-size", "16", "--checkpoint-every", "2"]
    assert main([*argv, "--out", str(whole)]) == 0
    size = (whole / "checkpoint.pt").stat().st_size
    _disk_fills_after(monkeypatch, int(1.5 * size))  # room for the step-2 save, not step 4
    assert main([*argv, "--out", str(full)]) == 2
    err = capsys.readouterr().err
    assert_one_sentence(err)
    assert err.startswith(f"error: The disk is full: {full / 'checkpoint.pt'} could not be")
    assert sorted(p.name for p in full.iterdir()) == ["checkpoint.pt"]  # no temporary file
    assert checkpoint.load(full / "checkpoint.pt")["step"] == 2
    monkeypatch.undo()
    assert main([*argv, "--out", str(full), "--resume"]) == 0
    a, b = (checkpoint.load(d / "checkpoint.pt") for d in (whole, full))
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert all(a["history"][k] == b["history"][k] for k in ("loss_d", "loss_g"))


# --- loading that cannot be exploited -----------------------------------------------------


class Payload:
    """Unpickling this calls open(marker, "w"): code run by merely loading a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _craft(kind, path, marker):
    if kind == "torch.save":  # the zip format, shaped like a real checkpoint
        torch.save({"format": checkpoint.FORMAT, "model": "mlp", "G": Payload(marker)}, path)
    else:  # a bare pickle, as torch's legacy format reads it
        path.write_bytes(pickle.dumps(Payload(marker), protocol=2))


@pytest.mark.parametrize("kind", ["torch.save", "pickle"])
def test_a_crafted_checkpoint_is_refused_and_its_payload_never_runs(kind, tmp_path, digits, capsys):
    marker, evil = tmp_path / "payload-ran", tmp_path / "checkpoint.pt"
    _craft(kind, evil, marker)
    with pytest.raises(GanError) as e:
        checkpoint.load(evil)
    assert str(e.value).startswith(f"{evil} was refused unopened")
    assert_one_sentence(str(e.value))
    with pytest.raises(GanError, match="refused unopened"):
        _mlp(digits).resume(evil)
    assert main(["sample", str(evil), "--n", "2", "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert_one_sentence(err)
    assert "refused unopened" in err
    assert not marker.exists()
    # the control: an unsafe load does run the payload, so the test above can fail
    with open(evil, "rb") as f:
        torch.load(f, weights_only=False) if kind == "torch.save" else pickle.load(f)
    assert marker.exists()


# --- damaged, foreign and mismatched files ------------------------------------------------


def _damaged(kind, good, tmp_path, digits):
    """A file that is not a good checkpoint of `mlp`, made from the good one at `good`."""
    path = tmp_path / "checkpoint.pt"
    raw = good.read_bytes()
    if kind == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "corrupted":  # garbage over the zip's index at the end
        path.write_bytes(raw[:-200] + bytes(200))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("these are not the weights you are looking for\n")
    elif kind == "image":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    elif kind == "plain tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "another model":
        Trainer(images=digits, **recipes.cgan()).save(path)
    elif kind == "other shapes":  # says mlp, but its weights are another network's
        state = checkpoint.load(good)
        state["G"] = models.DeepMLPGenerator().state_dict()
        checkpoint.save(state, path)
    elif kind == "missing":
        path = tmp_path / "nothing-here.pt"
    elif kind == "folder":
        path.mkdir()
    return path


PROBLEMS = {
    "truncated": "is not a checkpoint: it is truncated, corrupted or another kind of file",
    "corrupted": "is not a checkpoint: it is truncated, corrupted or another kind of file",
    "empty": "is not a checkpoint: it is truncated, corrupted or another kind of file",
    "text": "is not a checkpoint: it is truncated, corrupted or another kind of file",
    "image": "is not a checkpoint: it is truncated, corrupted or another kind of file",
    "plain tensor": "is a PyTorch file but not a checkpoint of this course",
    "another model": "holds a 'cgan' run, not 'mlp'",
    "other shapes": "does not fit this 'mlp' run",
    "missing": "There is no checkpoint",
    "folder": "There is no checkpoint",
}


@pytest.mark.parametrize("kind", PROBLEMS)
def test_a_bad_checkpoint_gets_one_sentence_naming_the_file(kind, tmp_path, mlp_checkpoint, digits):
    path = _damaged(kind, mlp_checkpoint, tmp_path, digits)
    with pytest.raises(GanError) as e:
        _mlp(digits).resume(path)
    message = str(e.value)
    assert str(path) in message and PROBLEMS[kind] in message
    assert_one_sentence(message)


def test_an_infogan_run_from_before_the_code_scale_is_refused_and_kept(tmp_path, digits):
    """Chapter 08's run folder from the recipe before the code was scaled: its weights have
    every shape of today's, so only the saved scale tells the two apart. Going on from it
    would train a different network; it is refused in one sentence, and left as it was."""
    path = tmp_path / "infogan.pt"
    old = Trainer(images=digits, **{**recipes.infogan(seed=0), "batch_size": 8})
    old.train(1)
    state = old.state_dict()
    del state["G"]["code_scale"]  # what the generator saved before the scale existed
    checkpoint.save(state, path)
    before = path.read_bytes()
    again = Trainer(images=digits, **{**recipes.infogan(seed=0), "batch_size": 8})
    with pytest.raises(GanError) as e:
        again.train(until=2, checkpoint=path)
    assert "does not fit this 'infogan' run" in str(e.value) and "move it aside" in str(e.value)
    assert_one_sentence(str(e.value))
    assert path.read_bytes() == before
    with pytest.raises(GanError, match="recipe changed since it was trained"):
        load_generator(path)


# --- the divergence guard -----------------------------------------------------------------


class BlowsUpAt(losses.BCE):
    """The BCE loss, except that the discriminator's loss is NaN at one step."""

    def __init__(self, step):
        super().__init__()
        self.step, self.calls = step, 0

    def d_loss(self, D, real, fake, z=None, y=None):
        self.calls += 1
        loss, stats = super().d_loss(D, real, fake, z, y)
        return (loss * float("nan") if self.calls == self.step else loss), stats


def _toy(loss=None, **kw):
    torch.manual_seed(0)
    return Trainer(
        toy.ToyGenerator(),
        toy.ToyDiscriminator(),
        toy.ring_of_gaussians(64),
        loss=loss,
        batch_size=16,
        **kw,
    )


def test_a_nan_loss_stops_training_at_once_and_keeps_the_last_good_checkpoint(tmp_path):
    t, ckpt = _toy(BlowsUpAt(step=5)), tmp_path / "checkpoint.pt"
    with pytest.raises(Diverged) as e:
        t.train(20, checkpoint=ckpt, checkpoint_every=3, keep_every=3)
    assert str(e.value) == (
        f"Training diverged at step 5: loss_d became nan; {ckpt} keeps step 3, the last good "
        f"one; resume with a lower learning rate, or try a gradient penalty (the wgan-gp loss)."
    )
    assert_one_sentence(str(e.value))
    assert t.step == 6  # the numbers are read back at the next save, which never happens
    kept = checkpoint.load(ckpt)
    assert kept["step"] == 3
    assert all(w.isfinite().all() for w in kept["D"].values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3.pt", "checkpoint.pt"]
    with pytest.raises(Diverged):  # nor can it be saved by hand
        t.save(tmp_path / "later.pt")
    assert not (tmp_path / "later.pt").exists()


def test_weights_broken_by_a_step_are_never_saved(tmp_path):
    """The loss of a step is computed before its update, so it cannot see the weights the
    update breaks; the save checks the weights themselves."""
    t = _toy()
    t.train(2)
    with torch.no_grad():
        next(t.G.parameters())[0] = float("inf")
    with pytest.raises(Diverged, match="step 2: the weights of G became NaN or Inf"):
        t.save(tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_an_absurd_learning_rate_stops_the_command_with_one_sentence(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "mlp",
            "--out",
            str(out),
            "--steps",
            "30",
            "--batch-size",
            "16",
            "--lr",
            "1e10",
            "--checkpoint-every",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert_one_sentence(err)
    blew_up = re.match(
        r"error: Training diverged at step (\d+): (loss_[dg] became \S*nan|"
        r"loss_[dg] became \S*inf|the weights of [GD] became NaN or Inf); .*"
        r"resume with a lower learning rate, or try a gradient penalty",
        err,
    )
    assert blew_up, err
    if (out / "checkpoint.pt").exists():  # on this CPU: the weights break at step 2
        kept = checkpoint.load(out / "checkpoint.pt")
        assert kept["step"] < int(blew_up.group(1))
        assert f"keeps step {kept['step']}, the last good one;" in err
        assert all(w.isfinite().all() for part in ("G", "D") for w in kept[part].values())
