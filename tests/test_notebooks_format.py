"""Notebooks are committed clean, in reading order, and stamped from the course's one home:
the Open-in-Colab badge, the install cell and the GPU metadata all come from
pyproject.toml's [tool.gan-course], through tools/home.py."""

import json
import shutil
import sys
import types
import warnings
from argparse import Namespace

import nbformat
import pytest

from tools import home

NOTEBOOKS = sorted(home.NOTEBOOKS.glob("*.ipynb"))


def test_chapters_are_numbered_in_reading_order():
    names = [p.name for p in NOTEBOOKS]
    assert names and names[0] == "00_theory.ipynb"
    assert all(n[:2].isdigit() and n[2] == "_" for n in names)
    assert len({n[:2] for n in names}) == len(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_clean(path):
    """Committed without outputs, and valid for its format version: nbformat 4.5 requires an
    id on every cell, and only warns about a missing one, which Jupyter repairs on each read."""
    nb = json.loads(path.read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nbformat.validate(nb)
    assert [str(w.message) for w in caught] == []
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("outputs") == [] and c.get("execution_count") is None for c in code)
    assert any("gan_helpers" in "".join(c["source"]) for c in code[1:])


def test_every_notebook_carries_the_home():
    assert home.drift() == [], "run python tools/home.py"
    h = home.home()
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        badge, install = ("".join(nb["cells"][i]["source"]) for i in (0, 1))
        assert f"/blob/{h['ref']}/notebooks/{path.name}" in badge
        assert f'%pip install -q "git+{h["repository"]}@{h["ref"]}"' in install
        assert nb["metadata"]["accelerator"] == "GPU"


@pytest.mark.parametrize("drift", ["badge", "install", "metadata"])
def test_a_notebook_that_drifts_from_the_home_is_caught(drift, tmp_path, monkeypatch):
    copy = tmp_path / NOTEBOOKS[1].name
    nb = json.loads(NOTEBOOKS[1].read_text())
    if drift == "badge":
        nb["cells"][0]["source"] = [
            s.replace("/blob/", "/blob/main-") for s in nb["cells"][0]["source"]
        ]
    elif drift == "install":
        nb["cells"][1]["source"] = [
            '%pip install -q "git+https://github.com/gan-course/gan-course"'
        ]
    else:
        del nb["metadata"]["accelerator"]
    copy.write_text(json.dumps(nb))
    monkeypatch.setattr(home, "NOTEBOOKS", tmp_path)
    assert home.drift() == [copy.name]


def test_moving_the_home_is_one_command(tmp_path, monkeypatch, capsys):
    shutil.copy(home.PYPROJECT, tmp_path / "pyproject.toml")
    (tmp_path / "notebooks").mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / "notebooks" / path.name)
    monkeypatch.setattr(home, "PYPROJECT", tmp_path / "pyproject.toml")
    monkeypatch.setattr(home, "NOTEBOOKS", tmp_path / "notebooks")
    args = Namespace(check=False, repository="https://github.com/someone/gan-fork", ref="v9.9")
    assert home.main(args) == 0
    assert home.home() == {"repository": "https://github.com/someone/gan-fork", "ref": "v9.9"}
    assert home.drift() == []
    text = (tmp_path / "notebooks" / NOTEBOOKS[3].name).read_text()
    assert "github/someone/gan-fork/blob/v9.9/notebooks/" in text
    assert "git+https://github.com/someone/gan-fork@v9.9" in text
    assert "gan-course/gan-course" not in text


def _install_cell():
    return "".join(json.loads(NOTEBOOKS[0].read_text())["cells"][1]["source"])


def _run_install_cell(monkeypatch, importable: bool) -> list:
    """The install cell as IPython runs it, with `%pip` recorded instead of run; returns the
    magics it asked for."""
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(_install_cell())
    if not importable:  # what a fresh Colab runtime is: no gan_helpers to import
        monkeypatch.setitem(sys.modules, "gan_helpers", None)
    magics = []
    shell = types.SimpleNamespace(run_line_magic=lambda *a: magics.append(a))
    exec(code, {"get_ipython": lambda: shell})
    return magics


def test_the_install_cell_is_four_lines_at_most():
    assert len(_install_cell().splitlines()) <= 4


def test_the_install_cell_does_nothing_where_the_package_is_installed(monkeypatch):
    assert _run_install_cell(monkeypatch, importable=True) == []


def test_the_install_cell_installs_the_home_where_the_package_is_missing(monkeypatch):
    h = home.home()
    assert _run_install_cell(monkeypatch, importable=False) == [
        ("pip", f'install -q "git+{h["repository"]}@{h["ref"]}"')
    ]
