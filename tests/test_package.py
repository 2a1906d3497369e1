"""The shape of the package: its docstring names every module, the modules import one another
without a circle, and the core never imports the leaves around it."""

import ast
import re
from pathlib import Path

import gan_helpers

PACKAGE = Path(gan_helpers.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
CORE = ("data", "models", "losses", "step", "train", "checkpoint")
LEAVES = ("toy", "speed", "__main__")  # what the core must never need


def imports(module: str) -> set:
    """The package's modules that `module` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
    return found & set(MODULES)


def reaches(graph: dict, start: str) -> set:
    """Every module `start` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def circles(graph: dict) -> list:
    """Every import circle of `graph` ({module: modules it imports}), each as a path."""
    found, done = [], set()

    def visit(node, path):
        if node in path:
            found.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_the_docstring_names_every_module_and_no_other():
    named = set(re.findall(r"^(\w+)\s{2,}", gan_helpers.__doc__, re.M))
    assert named == set(MODULES)


def test_the_docstring_names_the_core_first():
    section = gan_helpers.__doc__.split("The core")[1].split("\n\n")[0]
    assert re.findall(r"^(\w+)\s{2,}", section, re.M) == list(CORE)


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back():
    assert circles({m: imports(m) for m in MODULES}) == []


def test_the_core_never_imports_a_leaf():
    graph = {m: imports(m) for m in MODULES}
    assert reaches({"a": {"b"}, "b": {"toy"}}, "a") == {"b", "toy"}  # the finder can fail
    for module in CORE:
        assert not reaches(graph, module) & set(LEAVES), module
    assert "train" not in reaches(graph, "metrics")
