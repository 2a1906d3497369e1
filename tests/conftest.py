"""Smoke mode for the whole test run.

Set before anything starts, so the kernels that nbval launches for the notebooks inherit it
and train with their tiny smoke budgets, into a fresh runs folder.
"""

import os
import tempfile

os.environ["GAN_SMOKE"] = "1"
# The chapters' checkpoints go to a fresh folder, so no test resumes an earlier test's run
os.environ["GAN_RUNS_DIR"] = tempfile.mkdtemp(prefix="gan-runs-")

import re

import pytest
import torch


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
