"""The course's one home: the repository and the git ref the notebooks were written for.

It lives in pyproject.toml, [tool.gan-course]. This stamps every notebook with it: the
Open-in-Colab badge under the title, the first code cell (which installs gan_helpers on
Colab at that ref, in four lines), and the metadata that asks Colab for a GPU.

    python tools/home.py                    # stamp the notebooks from pyproject.toml
    python tools/home.py --check            # exit 1 if any notebook drifted from it
    python tools/home.py --repository https://github.com/you/gan-course --ref v0.2.0
"""

import json
import re
import sys
import tomllib
from pathlib import Path

from gan_helpers.__main__ import Parser, run_command
from gan_helpers.env import GanError

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
NOTEBOOKS = ROOT / "notebooks"

INSTALL = """\
try:  # the course's package: on Colab, installed once per runtime at this notebook's version
    import gan_helpers  # noqa: F401
except ImportError:
    %pip install -q "{source}"
"""


def home() -> dict:
    """{"repository": ..., "ref": ...} from pyproject.toml."""
    table = tomllib.loads(PYPROJECT.read_text())["tool"]["gan-course"]
    return {"repository": table["repository"].rstrip("/"), "ref": table["ref"]}


def badge(name: str, h: dict) -> str:
    path = h["repository"].removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{path}/blob/{h['ref']}/notebooks/{name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def install_cell(h: dict) -> str:
    return INSTALL.format(source=f"git+{h['repository']}@{h['ref']}").rstrip("\n")


def stamped(nb: dict, name: str, h: dict) -> dict:
    """The notebook with its badge, install cell and Colab metadata made from `h`. The first
    cell keeps its title line; the second cell is the install cell."""
    cells = nb["cells"]
    title = "".join(cells[0]["source"]).splitlines()[0]
    cells[0] = _cell("markdown", f"{title}\n\n{badge(name, h)}")
    cells[1] = _cell("code", install_cell(h))
    nb["metadata"]["accelerator"] = "GPU"  # Colab opens the notebook on a GPU runtime
    nb["metadata"]["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    return nb


def _cell(kind, text):
    cell = {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True)}
    return {**cell, "execution_count": None, "outputs": []} if kind == "code" else cell


def drift(h=None) -> list[str]:
    """The notebooks whose badge, install cell or metadata differ from the home."""
    h = h or home()
    bad = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        if len(nb["cells"]) < 2 or stamped(json.loads(path.read_text()), path.name, h) != nb:
            bad.append(path.name)
    return bad


def main(args) -> int:
    if args.repository or args.ref:
        if args.repository and not re.fullmatch(
            r"https://github\.com/[\w.-]+/[\w.-]+/?", args.repository
        ):
            raise GanError(
                f"--repository must look like https://github.com/OWNER/NAME, not "
                f"{args.repository!r}."
            )
        text = PYPROJECT.read_text()
        for key in ("repository", "ref"):
            if getattr(args, key):
                text = re.sub(rf'(?m)^{key} = ".*"$', f'{key} = "{getattr(args, key)}"', text)
        PYPROJECT.write_text(text)
    h = home()
    if args.check:
        bad = drift(h)
        for name in bad:
            print(f"{name} differs from the home in pyproject.toml; run python tools/home.py")
        return 1 if bad else 0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = stamped(json.loads(path.read_text()), path.name, h)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"stamped {len(list(NOTEBOOKS.glob('*.ipynb')))} notebooks with {h}")
    return 0


if __name__ == "__main__":
    p = Parser(prog="python tools/home.py", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report notebooks that drifted")
    p.add_argument("--repository", help="move the home: https://github.com/OWNER/NAME")
    p.add_argument("--ref", help="the git tag or commit the notebooks are written for")
    sys.exit(run_command(main, p.parse_args()))
