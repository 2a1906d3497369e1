"""Where data and runs live, independent of the working directory.

Notebooks run with `notebooks/` as their working directory, the command line from wherever
the user is; both must find the same `data/` and `runs/` at the repository root.
"""
import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The checkout that holds this package, or the working directory for a plain install."""
    parent = _PACKAGE.parent
    return parent if (parent / "pyproject.toml").is_file() else Path.cwd()


def data_root(root=None) -> Path:
    """The data folder: the argument, else $GAN_DATA_ROOT, else `data/` at the repo root."""
    if root is None:
        root = os.environ.get("GAN_DATA_ROOT") or repo_root() / "data"
    return Path(root).expanduser()


def runs_dir(name: str) -> Path:
    """`runs/<name>` at the repo root: the one place notebooks write to."""
    return repo_root() / "runs" / name
