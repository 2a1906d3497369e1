"""The widgets render on Colab: the course uses only what Colab's own widget manager draws.

Colab pins ipywidgets 7.7.1 and draws widgets with its own manager. Its custom widget manager
(`google.colab.output.enable_custom_widget_manager()`, which anywidget turns on by itself)
breaks `Accordion` and `Tab` (colabtools #3571), and `%matplotlib widget` (ipympl) does not
work there (colabtools #5425). So neither the notebooks' code cells nor the package's source
call `enable_custom_widget_manager`, import anywidget, use `Accordion` or `Tab`, or switch
matplotlib to the widget backend. Code is read as Python (notebook cells first through
IPython's own transformer, so `%matplotlib widget` is seen as the magic it is): a docstring
or a comment that names these things is not a use.

Nor does the course install widget packages over Colab's: no notebook `%pip install`s
ipywidgets, its front-end packages or anywidget, and what the first cell installs (the
package's dependencies) admits Colab's ipywidgets 7.7.1; ipywidgets 8 there stops every
widget from rendering (colabtools #3020, #4525).

Committed notebooks carry no saved widget state either: no `widgets` key in the notebook's
metadata (JupyterLab's "save widget state") and no widget-view output, which Colab would try
to draw from a model that no longer exists.

The last tests feed the checker notebooks and source that break each rule, so none of the
checks can pass by finding nothing.
"""

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PACKAGE = sorted((ROOT / "gan_helpers").rglob("*.py"))

BROKEN_WIDGETS = {"Accordion", "Tab"}  # under Colab's custom widget manager: colabtools #3571
CUSTOM_MANAGER = "enable_custom_widget_manager"
WIDGET_BACKENDS = {"widget", "ipympl"}  # %matplotlib widget: colabtools #5425
# Colab ships these at the versions its widget manager draws; installing any (ipywidgets 8
# above all: colabtools #3020, #4525) or anywidget breaks the widgets
WIDGET_PACKAGES = {"anywidget", "ipywidgets", "widgetsnbextension", "jupyterlab-widgets"}
WIDGET_MIMES = (
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)


def code_problems(code: str, where: str) -> list[str]:
    """What in this Python source would not render under Colab's own widget manager."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.alias):
            name = node.name.split(".")[-1]
        else:
            name = None
        if name in BROKEN_WIDGETS:
            found.append(f"{where}: uses {name}, which Colab's widget manager breaks")
        if name == CUSTOM_MANAGER:
            found.append(f"{where}: calls {CUSTOM_MANAGER}()")
        modules = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        if any(m.split(".")[0] == "anywidget" for m in modules):
            found.append(f"{where}: imports anywidget, which turns on the custom widget manager")
        if isinstance(node, ast.Call):
            found += _magic_problems(node, where)
    return found


def _magic_problems(call: ast.Call, where: str) -> list[str]:
    """`%matplotlib widget`, `matplotlib.use(ipympl)`, and `%pip install` (or `!pip install`)
    of a widget package, as the calls IPython's transformer turns them into."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    args = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    pip = []
    if name == "run_line_magic" and len(args) == 2:
        magic, line = args[0], args[1].split()
        if magic == "matplotlib" and line and line[0] in WIDGET_BACKENDS:
            return [f"{where}: %matplotlib {line[0]}, which does not work on Colab"]
        pip = line if magic in ("pip", "conda") else []
    elif name in ("system", "getoutput") and args and re.search(r"\bpip3?\b.*\binstall", args[0]):
        pip = args[0].split()
    installs = {_requirement(w) for w in pip} & WIDGET_PACKAGES
    if installs:
        return [f"{where}: installs {', '.join(sorted(installs))} over Colab's own"]
    if name == "use" and args and ("ipympl" in args[0] or args[0] in WIDGET_BACKENDS):
        return [f"{where}: matplotlib.use({args[0]!r}), the widget backend"]
    return []


def _requirement(word: str) -> str:
    """The project name in a pip argument: `"anywidget>=0.9"` -> anywidget."""
    return re.split(r"[\[<>=!~;@ ]", word.strip("\"'"))[0].lower().replace("_", "-")


def notebook_problems(nb: dict, name: str) -> list[str]:
    """Every code cell, read as IPython reads it, and the saved widget state."""
    found = []
    if "widgets" in nb.get("metadata", {}):
        found.append(f"{name}: saved widget state in the notebook's metadata")
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        found += code_problems(TransformerManager().transform_cell(source), f"{name} cell {i}")
        for out in cell.get("outputs", []):
            for mime in WIDGET_MIMES:
                if mime in out.get("data", {}):
                    found.append(f"{name} cell {i}: a saved widget output ({mime})")
    return found


def requirement_problems(requirements: list[str], where: str) -> list[str]:
    """Requirements the course installs that would replace Colab's widgets: anywidget, or an
    ipywidgets that excludes Colab's 7.7.1."""
    found = []
    for line in requirements:
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        if name == "anywidget" or (name == "ipywidgets" and "7.7.1" not in req.specifier):
            found.append(f"{where}: requires {line}, which Colab's widget manager cannot draw")
    return found


def test_the_install_leaves_colabs_widgets_alone():
    """What the notebooks' first cell installs on Colab: gan_helpers and its dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert requirement_problems(project["dependencies"], "pyproject.toml") == []
    listed = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip() and not line.startswith("-")
    ]
    assert requirement_problems(listed, "requirements.txt") == []


@pytest.mark.parametrize("line", ["ipywidgets>=8", "ipywidgets==8.1.5", "anywidget"])
def test_a_requirement_that_replaces_colabs_widgets_is_caught(line):
    assert requirement_problems(["torch>=2.10", line], "pyproject.toml")


def test_there_is_something_to_check():
    assert len(NOTEBOOKS) >= 10 and any(p.name == "explore.py" for p in PACKAGE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_uses_only_what_colab_renders(path):
    assert notebook_problems(json.loads(path.read_text()), path.name) == []


@pytest.mark.parametrize("path", PACKAGE, ids=[str(p.relative_to(ROOT)) for p in PACKAGE])
def test_package_uses_only_what_colab_renders(path):
    assert code_problems(path.read_text(), str(path.relative_to(ROOT))) == []


def _notebook(*cells, metadata=None, outputs=()):
    return {
        "metadata": metadata or {},
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Tab, Accordion"]}]
        + [
            {"cell_type": "code", "metadata": {}, "source": src, "outputs": list(outputs)}
            for src in cells
        ],
    }


VIOLATIONS = {
    "tab": "import ipywidgets as w\nw.Tab([w.Label('a')])",
    "accordion": "from ipywidgets import Accordion\nAccordion([])",
    "custom manager": "from google.colab import output\noutput.enable_custom_widget_manager()",
    "anywidget": "import anywidget\n\nclass Counter(anywidget.AnyWidget):\n    pass",
    "anywidget from": "from anywidget import AnyWidget",
    "matplotlib widget": "%matplotlib widget\nimport matplotlib.pyplot as plt",
    "matplotlib ipympl": "if True:\n    %matplotlib ipympl",
    "pip anywidget": '%pip install -q "anywidget>=0.9"',
    "pip ipywidgets 8": "%pip install -q ipywidgets==8.1.5",
    "pip widgets": "!pip install -U jupyterlab_widgets",
    "backend": "import matplotlib\nmatplotlib.use('module://ipympl.backend_nbagg')",
}
PYTHON_ONLY = ("tab", "accordion", "custom manager", "anywidget", "anywidget from", "backend")


@pytest.mark.parametrize("kind", VIOLATIONS)
def test_a_notebook_that_breaks_the_rule_is_caught(kind):
    nb = _notebook("import torch", VIOLATIONS[kind])
    assert [p for p in notebook_problems(nb, "bad.ipynb") if "cell 2" in p], kind


@pytest.mark.parametrize("kind", PYTHON_ONLY)
def test_package_source_that_breaks_the_rule_is_caught(kind):
    assert code_problems(f'"""A module."""\n\n{VIOLATIONS[kind]}\n', "gan_helpers/bad.py")


@pytest.mark.parametrize("where", ["metadata", "output"])
def test_saved_widget_state_is_caught(where):
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    output = {"output_type": "display_data", "metadata": {}, "data": {WIDGET_MIMES[0]: view}}
    nb = (
        _notebook("x = 1", metadata={"widgets": {WIDGET_MIMES[1]: {"state": {}}}})
        if where == "metadata"
        else _notebook("x = 1", outputs=[output])
    )
    assert notebook_problems(nb, "bad.ipynb")


def test_what_colab_renders_passes():
    """The widgets the course does use, the inline backend, and prose that names the rest."""
    nb = _notebook(
        "%matplotlib inline\nimport ipywidgets as w\n"
        "w.HBox([w.VBox([w.Image(format='png'), w.Label()]), w.FloatSlider(), w.Play()])",
        "# never Tab or Accordion, never enable_custom_widget_manager()\nx = 'anywidget'",
        '%pip install -q "git+https://github.com/gan-course/gan-course@v0.2.0"',
    )
    assert notebook_problems(nb, "good.ipynb") == []
