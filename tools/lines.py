"""Count the lines of gan_helpers: each module's physical lines and its code lines (no blank
lines, comments or docstrings), the core that the package's docstring names first, and the
whole package. With --check (in .ci/run), also hold the package to its shape: a docstring
that names every module, the core first; no function of the core past 120 lines;
and the package and its core within their sizes.

    python tools/lines.py [--check]
"""

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import gan_helpers

PACKAGE = Path(gan_helpers.__file__).parent
LIMITS = {"core": 1450, "package": 3100}  # physical lines; DDP and colour data live in the core
LONGEST = 120  # lines of one function of the core (a class is as long as its state needs)


def core() -> list:
    """The modules under "The core" in the package's docstring, in its order."""
    section = gan_helpers.__doc__.split("The core")[1].split("\n\n")[0]
    return re.findall(r"^(\w+)\s{2,}", section, re.M)


def code_lines(source: str) -> int:
    docs = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                docs |= set(range(body[0].lineno, body[0].end_lineno + 1))
    code = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip and tok.type != tokenize.ENDMARKER:
            code |= set(range(tok.start[0], tok.end[0] + 1))
    return len(code - docs)


def problems(counts: dict) -> list:
    """What breaks the package's shape; empty when it holds."""
    found = []
    named = re.findall(r"^(\w+)\s{2,}", gan_helpers.__doc__, re.M)
    if sorted(named) != sorted(m for m in counts if m != "__init__"):
        found.append(f"the package docstring names {sorted(named)}, not every module once")
    for module in core():
        for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
            if isinstance(node, ast.FunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > LONGEST:
                    found.append(f"{module}.{node.name} runs {n} lines, past {LONGEST}")
    sizes = {
        "core": sum(counts[m][0] for m in core()),
        "package": sum(c[0] for c in counts.values()),
    }
    for part, limit in LIMITS.items():
        if sizes[part] > limit:
            found.append(f"the {part} holds {sizes[part]} lines, past {limit}")
    return found


def main() -> int:
    counts = {}
    for path in sorted(PACKAGE.glob("*.py")):
        source = path.read_text()
        counts[path.stem] = (len(source.splitlines()), code_lines(source))
    names = core()
    rows = [(m, *counts[m]) for m in names]
    rows.append(("core", *(sum(counts[m][i] for m in names) for i in (0, 1))))
    rows.append(("package", *(sum(c[i] for c in counts.values()) for i in (0, 1))))
    print(f"{'module':<12}{'lines':>7}{'code':>7}")
    for name, lines, code in rows:
        print(f"{name:<12}{lines:>7}{code:>7}")
    print(f"{len(counts)} modules; core: {', '.join(names)}")
    if "--check" in sys.argv:
        for problem in problems(counts):
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems(counts) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
