"""Every mistake a learner can make in what they ask for gets one sentence, never a traceback.

Each command-line case runs the `main()` that `python -m gan_helpers` calls, in this
process, and checks: a non-zero exit, stderr of exactly one line `error: <one sentence>`,
no warning on the way, and no file of the user's touched. A real `python -m gan_helpers`
process costs ~4 s of start-up (torch and torchvision), so only a few representative
cases also run as one, side by side. The Python API cases check for a `GanError` whose
message is one sentence.
"""

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import torch

from conftest import N_TRAIN, assert_one_sentence
from gan_helpers import GanError, data, env, recipes, speed
from gan_helpers.__main__ import main
from gan_helpers.train import Trainer

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
MNIST_RAW = env.data_root() / "MNIST" / "raw"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The files the cases point at: runs, checkpoints, data roots and plain folders."""
    root = tmp_path_factory.mktemp("world")
    for name in ("mlp", "cgan"):
        digits = data.load("mnist", size=recipes.SIZE[name])
        run = Trainer(images=digits, **recipes.get(name)())
        run.save(root / f"{name}-run" / "checkpoint.pt")
    (root / "locked").mkdir()
    (root / "locked" / ".lock").write_text(str(os.getpid()))  # a live process holds it
    (root / "folder").mkdir()
    (root / "folder" / "notes.txt").write_text("my notes\n")
    (root / "truncated.pt").write_bytes((root / "mlp-run/checkpoint.pt").read_bytes()[:1000])
    (root / "weights.txt").write_text("not weights\n")
    for name, files in (
        ("empty", []),
        ("half", ["t10k-labels-idx1-ubyte"]),
        ("bad-idx", ["t10k-labels-idx1-ubyte"]),
        ("bad-gz", []),
    ):
        raw = root / name / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for f in files:
            shutil.copy(MNIST_RAW / f, raw / f)
    (root / "bad-idx/MNIST/raw/t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (root / "bad-gz/MNIST/raw" / f).write_bytes(b"not gzip")
    return root


@pytest.fixture
def offline(monkeypatch):
    """Missing data must fail the same way on a machine with internet: no download."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline for this test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _user_files(world):
    """Everything a failed command must leave as it was, with its bytes."""
    keep = ["mlp-run", "cgan-run", "folder", "truncated.pt", "weights.txt", "locked"]
    files = [p for k in keep for p in ([world / k] + sorted((world / k).rglob("*")))]
    return {p: p.read_bytes() if p.is_file() else None for p in files}


# (case, argv with {world} for the fixture's folder, what the one sentence must say)
CLI_CASES = [
    ("unknown model", "train gpt --out {world}/new", "Unknown model 'gpt'"),
    ("unknown dataset", "train mlp --out {world}/new --dataset cifar", "Unknown dataset 'cifar'"),
    ("unknown command", "trian mlp", "invalid choice: 'trian'"),
    ("no --out", "train mlp", "required: --out"),
    ("zero steps", "train mlp --out {world}/new --steps 0", "--steps: must be positive"),
    ("negative steps", "train mlp --out {world}/new --steps -3", "--steps: must be positive"),
    ("steps not a number", "train mlp --out {world}/new --steps ten", "'ten' is not a whole"),
    ("zero batch size", "train mlp --out {world}/new --batch-size 0", "--batch-size: must be"),
    ("zero learning rate", "train mlp --out {world}/new --lr 0", "--lr: must be a positive"),
    ("negative learning rate", "train mlp --out {world}/new --lr -0.001", "--lr: must be a"),
    ("nan learning rate", "train mlp --out {world}/new --lr nan", "--lr: must be a positive"),
    (
        "batch larger than the data",
        "train mlp --out {world}/new --batch-size 20000",
        f"batch size 20000 is larger than the {N_TRAIN} images",
    ),
    pytest.param(
        "cuda where there is none",
        "train mlp --out {world}/new --device cuda",
        "CUDA was asked for",
        marks=pytest.mark.skipif(HAS_CUDA, reason="has CUDA"),
    ),
    pytest.param(
        "mps where there is none",
        "train mlp --out {world}/new --device mps",
        "MPS was asked for",
        marks=pytest.mark.skipif(HAS_MPS, reason="has MPS"),
    ),
    ("unknown device", "train mlp --out {world}/new --device tpu", "Unknown device 'tpu'"),
    (
        "data root that does not exist",
        "train mlp --out {world}/new --data-root {world}/nowhere",
        "No mnist data in",
    ),
    (
        "data root without files",
        "train mlp --out {world}/new --data-root {world}/empty",
        "No mnist data in",
    ),
    (
        "data root lacking a file",
        "train mlp --out {world}/new --data-root {world}/half",
        "No mnist data in",
    ),
    (
        "corrupt data file",
        "train mlp --out {world}/new --data-root {world}/bad-idx",
        "could not be read",
    ),
    (
        "corrupt data archive",
        "train mlp --out {world}/new --data-root {world}/bad-gz",
        "could not be unpacked",
    ),
    (
        "--out holds another model's run",
        "train dcgan --out {world}/mlp-run",
        "holds a 'mlp' run, not 'dcgan'",
    ),
    (
        "--resume into another model's run",
        "train dcgan --out {world}/mlp-run --resume",
        "holds a 'mlp' run, not 'dcgan'",
    ),
    ("--out holds this model's run", "train mlp --out {world}/mlp-run", "pass --resume"),
    ("--out holds other files", "train mlp --out {world}/folder", "is not empty"),
    ("--out is a file", "train mlp --out {world}/weights.txt", "is a file"),
    (
        "--resume with nothing to resume",
        "train mlp --out {world}/new --resume",
        "no {world}/new/checkpoint.pt to resume",
    ),
    (
        "--label on an unconditional model",
        "sample {world}/mlp-run/checkpoint.pt --n 4 --out {world}/x.pt --label 3",
        "--label needs a conditional model",
    ),
    (
        "--label above 9",
        "sample {world}/cgan-run/checkpoint.pt --n 4 --out {world}/x.pt --label 10",
        "labels must be 4 digits from 0 to 9, one per sample; got [10, 10, 10, 10]",
    ),
    (
        "--label below 0",
        "sample {world}/cgan-run/checkpoint.pt --n 4 --out {world}/x.pt --label -1",
        "labels must be 4 digits from 0 to 9, one per sample; got [-1, -1, -1, -1]",
    ),
    (
        "zero samples",
        "sample {world}/mlp-run/checkpoint.pt --n 0 --out {world}/x.pt",
        "--n: must be positive",
    ),
    (
        "missing checkpoint",
        "sample {world}/nowhere.pt --n 4 --out {world}/x.pt",
        "no checkpoint at {world}/nowhere.pt",
    ),
    (
        "truncated checkpoint",
        "sample {world}/truncated.pt --n 4 --out {world}/x.pt",
        "{world}/truncated.pt is not a checkpoint",
    ),
    (
        "not a checkpoint",
        "sample {world}/weights.txt --n 4 --out {world}/x.pt",
        "{world}/weights.txt is not a checkpoint",
    ),
    (
        "another run trains in --out",
        "train mlp --out {world}/locked",
        "Another training run (process {pid}) is using {world}/locked",
    ),
    (
        "samples to a file of another kind",
        "sample {world}/mlp-run/checkpoint.pt --n 4 --out {world}/x.txt",
        "must end in .pt (the samples as a tensor) or .png or .jpg",
    ),
    (
        "a picture of too many samples",
        "sample {world}/mlp-run/checkpoint.pt --n 5000 --out {world}/x.png",
        "A picture holds at most 4,096 samples, not 5,000",
    ),
    (
        "more samples than memory holds",
        "sample {world}/mlp-run/checkpoint.pt --n 3000000000 --out {world}/x.pt",
        "3,000,000,000 samples of shape (1, 28, 28) need 9408.0 GB",
    ),
]


def _argv(template, world):
    return template.format(world=world).split()


def _run_in_process(argv):
    try:
        return main(argv)
    except SystemExit as e:  # argparse's mistakes exit from inside parse_args
        return e.code


@pytest.mark.parametrize(
    "case, template, says",
    CLI_CASES,
    ids=[c.values[0] if hasattr(c, "values") else c[0] for c in CLI_CASES],
)
def test_the_command_line_answers_one_sentence(
    case, template, says, world, offline, capsys, recwarn
):
    before = _user_files(world)
    rc = _run_in_process(_argv(template, world))
    err = capsys.readouterr().err
    assert rc not in (0, None), err
    assert err.startswith("error: "), err
    assert_one_sentence(err)
    assert says.format(world=world, pid=os.getpid()) in err
    assert not [str(w.message) for w in recwarn]  # a warning would be a second line
    assert _user_files(world) == before  # nothing of the user's was touched
    assert not (world / "new").exists() and not (world / "x.pt").exists()


REAL_PROCESS_CASES = ["zero steps", "batch larger than the data", "truncated checkpoint"]


def test_a_real_process_prints_the_same_one_line(world):
    """The same through `python -m gan_helpers`, where a stray warning or print would show."""
    cases = {c[0]: c for c in CLI_CASES if isinstance(c, tuple) and c[0] in REAL_PROCESS_CASES}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "gan_helpers", *_argv(template, world)],
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, template, _ in cases.values()
    }
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (name, err)
        assert err.startswith("error: ") and cases[name][2].format(world=world) in err, err
        assert_one_sentence(err)


# --- the Python API that notebooks use ------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return data.load("mnist")


def _mlp(digits, **changes):
    return Trainer(images=digits, **{**recipes.mlp(), **changes})


class NoNoise(torch.nn.Module):
    """A learner's generator that forgot to say how much noise it takes."""

    def forward(self, z):
        return z


API_CASES = [
    ("unknown model", lambda d, w: recipes.get("gpt"), "Unknown model 'gpt'"),
    ("unknown dataset", lambda d, w: data.load("cifar"), "Unknown dataset 'cifar'"),
    ("batch larger than the data", lambda d, w: _mlp(d, batch_size=20_000), "is larger than"),
    ("a generator without z_dim", lambda d, w: Trainer(NoNoise(), NoNoise(), d), "has no z_dim"),
    pytest.param(
        "cuda where there is none",
        lambda d, w: _mlp(d, device="cuda"),
        "CUDA was asked for",
        marks=pytest.mark.skipif(HAS_CUDA, reason="has CUDA"),
    ),
    pytest.param(
        "mps where there is none",
        lambda d, w: data.load(device="mps"),
        "MPS was asked for",
        marks=pytest.mark.skipif(HAS_MPS, reason="has MPS"),
    ),
    (
        "data root that does not exist",
        lambda d, w: data.load(root=w / "nowhere"),
        "No mnist data in",
    ),
    ("corrupt data file", lambda d, w: data.load(root=w / "bad-idx"), "could not be read"),
    (
        "labels for an unconditional model",
        lambda d, w: _mlp(d).sample(2, labels=[3, 3]),
        "is not conditional",
    ),
    (
        "label outside 0-9",
        lambda d, w: Trainer(images=d, **recipes.cgan()).sample(2, labels=[3, 10]),
        "digits from 0 to 9",
    ),
    (
        "another model's checkpoint",
        lambda d, w: Trainer(images=d, **recipes.cgan()).resume(w / "mlp-run/checkpoint.pt"),
        "holds a 'mlp' run, not 'cgan'",
    ),
    (
        "another model's checkpoint to resume",
        lambda d, w: Trainer(images=d, **recipes.cgan()).train(
            until=5, checkpoint=w / "mlp-run/checkpoint.pt"
        ),
        "holds a 'mlp' run, not 'cgan'",
    ),
    (
        "unknown speed option",
        lambda d, w: speed.apply(_mlp(d), ["turbo"]),
        "Unknown speed option 'turbo'",
    ),
    ("unknown split", lambda d, w: data.load(split="test"), "Unknown split 'test'"),
    ("digits cut to fit", lambda d, w: data.load(size=24), "size must be 28 or more"),
    ("Google Drive off Colab", lambda d, w: env.run_dir("x", drive=True), "only Colab has"),
]


@pytest.mark.parametrize(
    "case, call, says",
    API_CASES,
    ids=[c.values[0] if hasattr(c, "values") else c[0] for c in API_CASES],
)
def test_the_python_api_raises_one_sentence(case, call, says, digits, world, offline):
    with pytest.raises(GanError) as e:
        call(digits, world)
    assert says in str(e.value)
    assert_one_sentence(str(e.value))
