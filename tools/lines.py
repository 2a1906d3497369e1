"""Count the lines of gan_helpers: each module's physical lines and its code lines (no blank
lines, comments or docstrings), the core that the package's docstring names first, and the
whole package.

    python tools/lines.py
"""

import ast
import io
import re
import tokenize
from pathlib import Path

import gan_helpers

PACKAGE = Path(gan_helpers.__file__).parent


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


def main() -> None:
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


if __name__ == "__main__":
    main()
