"""Smoke mode, a runs folder and a data folder of the test run's own, for every test and
notebook pytest runs, from the repository root or one file alone.

Set before anything starts, so that the kernels nbval launches for the notebooks inherit them.
The data folder is laid out here, whatever the user's `data/` or `$GAN_DATA_ROOT` holds, so
that a learner who downloaded the full MNIST gets the same run as CI. GAN_TEST_LAYOUT picks
the layout:
- "offline" (the default): MNIST's 10k test split only, as on machines without internet,
  where 8,000 digits train and 2,000 are held out;
- "with-train": a training split as well, made of the same 10k digits, so that the code
  paths and the checks that a downloaded MNIST meets run here too.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
ROOT = Path(__file__).resolve().parent
SOURCES = [  # where the test split may already be: never used as the data root itself
    os.environ.get("GAN_DATA_ROOT", ""),
    str(ROOT / "data"),
    str(ROOT.parent / "shared" / "data"),
]


def _find_test_split() -> dict:
    """{file name: path} of the two test-split files (.gz or not), from the first place that
    has both; downloaded into the repository's data/ if none has them."""
    for source in filter(None, SOURCES):
        for raw in (Path(source) / "MNIST" / "raw", Path(source) / "mnist"):
            found = {}
            for name in FILES:
                for candidate in (raw / name, raw / f"{name}.gz"):
                    if candidate.is_file():
                        found[name] = candidate
                        break
            if len(found) == len(FILES):
                return found
    from torchvision.datasets import MNIST

    MNIST(str(ROOT / "data"), train=False, download=True)
    return {name: ROOT / "data" / "MNIST" / "raw" / name for name in FILES}


def _lay_out(layout: str) -> str:
    root = Path(tempfile.mkdtemp(prefix="gan-data-"))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in _find_test_split().values():
        shutil.copy(path, raw / path.name)
        if layout == "with-train":  # the same digits serve as a training split
            shutil.copy(path, raw / path.name.replace("t10k", "train"))
    return str(root)


LAYOUT = os.environ.setdefault("GAN_TEST_LAYOUT", "offline")
if LAYOUT not in ("offline", "with-train"):
    raise ValueError(f"GAN_TEST_LAYOUT must be offline or with-train, not {LAYOUT!r}")
os.environ["GAN_SMOKE"] = "1"
os.environ["GAN_RUNS_DIR"] = tempfile.mkdtemp(prefix="gan-runs-")  # no test resumes another's
os.environ["GAN_DATA_ROOT"] = _lay_out(LAYOUT)
# A smoke run leaves about half a gigabyte of checkpoints: gone when pytest exits, so that
# repeated runs (four in .ci/run) do not fill a small disk.
for _made in (os.environ["GAN_RUNS_DIR"], os.environ["GAN_DATA_ROOT"]):
    atexit.register(shutil.rmtree, _made, ignore_errors=True)

import re  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

N_TRAIN = {"offline": 8000, "with-train": 10000}[LAYOUT]  # digits data.load("mnist") trains on


def assert_one_sentence(text):
    """One line, no traceback, and one sentence: a full stop at the end and none inside."""
    text = text.strip()
    assert "Traceback" not in text and "\n" not in text, text
    assert text.endswith(".") and not re.search(r"[.!?]\s+[A-Z]", text[:-1]), text


@pytest.fixture
def one_thread():
    """The models under test are tiny: one thread is fastest, and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
