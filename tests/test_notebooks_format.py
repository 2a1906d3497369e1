"""Notebooks are committed clean: no outputs, no execution counts, the python3 kernel,
an Open-in-Colab badge and the setup cell that installs gan_helpers only on Colab."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_chapters_are_numbered_in_reading_order():
    names = [p.name for p in NOTEBOOKS]
    assert names and names[0] == "00_theory.ipynb"
    assert all(n[:2].isdigit() and n[2] == "_" for n in names)
    assert len({n[:2] for n in names}) == len(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_clean(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("outputs") == [] and c.get("execution_count") is None for c in code)
    first, second = nb["cells"][0], nb["cells"][1]
    assert first["cell_type"] == "markdown"
    assert "colab.research.google.com/github/" in "".join(first["source"])
    assert f"notebooks/{path.name}" in "".join(first["source"])
    setup = "".join(second["source"])
    assert 'if "google.colab" in sys.modules' in setup and "pip install" in setup
    assert any("gan_helpers" in "".join(c["source"]) for c in code)
