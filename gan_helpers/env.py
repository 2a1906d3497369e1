"""Where the course runs: the error a user sees, smoke mode and budgets, the device, and the
folders for data and runs."""

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

DRIVE = Path("/content/drive")  # where Colab mounts Google Drive


class GanError(Exception):
    """A mistake in what the user asked for. The message is one sentence: what is wrong and
    what to do. The command line prints it without a traceback, and so does IPython."""

    def _render_traceback_(self):  # what IPython shows instead of a traceback into the package
        return [f"{type(self).__name__}: {self}"]


def smoke_mode() -> bool:
    """GAN_SMOKE=1 (set by tests/conftest.py, inherited by nbval's kernels): tiny budgets."""
    return os.environ.get("GAN_SMOKE", "") not in ("", "0", "false", "False")


def budget(full, smoke):
    """`full` for a learner's run, `smoke` under GAN_SMOKE=1. Every budget comes from here."""
    return smoke if smoke_mode() else full


def resolve_device(name="auto") -> torch.device:
    """'auto' means cuda, then mps, then cpu; 'cpu', 'cuda[:i]', 'mps' or a torch.device."""
    name = str(name)
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    kind = name.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise GanError(f"Unknown device {name!r}; choose auto, cpu, cuda or mps.")
    if kind == "cuda" and not torch.cuda.is_available():
        raise GanError(
            "CUDA was asked for but this machine has no usable CUDA GPU; "
            "use --device auto or --device cpu."
        )
    if kind == "mps" and not mps:
        raise GanError(
            "Apple MPS was asked for but is not available here; use --device auto or --device cpu."
        )
    return torch.device(name)


def repo_root() -> Path:
    """The checkout that holds this package, or the working directory for a plain install
    (Colab's /content)."""
    parent = Path(__file__).resolve().parent.parent
    return parent if (parent / "pyproject.toml").is_file() else Path.cwd()


def data_root(root=None) -> Path:
    """The data folder: the argument, else $GAN_DATA_ROOT, else `data/` at the repo root."""
    if root is None:
        root = os.environ.get("GAN_DATA_ROOT") or repo_root() / "data"
    return Path(root).expanduser()


def run_dir(name: str, drive: bool = False) -> Path:
    """`runs/<name>` at the repo root (or under $GAN_RUNS_DIR), where a chapter keeps its
    checkpoints; smoke runs go to `runs/smoke/<name>`, apart from a learner's. With
    `drive=True`, on Colab, Google Drive is mounted and the run lives there instead, so it
    outlives the runtime."""
    smoke = "smoke" if smoke_mode() else ""
    if not drive:
        return Path(os.environ.get("GAN_RUNS_DIR") or repo_root() / "runs") / smoke / name
    if "google.colab" not in sys.modules:
        raise GanError(
            "drive=True keeps runs on Google Drive, which only Colab has; leave drive=False here."
        )
    from google.colab import drive as colab_drive

    colab_drive.mount(str(DRIVE))
    return DRIVE / "MyDrive" / "gan-course" / "runs" / smoke / name


@contextmanager
def one_thread():
    """One image is too little work to share: a second thread only adds waiting."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
