"""The final checks most chapters end with, raising AssertionError when a claim stops holding.
nbval compares no outputs of stripped notebooks, so these are what fail a chapter's test;
tests/test_checks.py feeds each one the failure it guards against. A check that only one
chapter makes is written in that chapter's last cell.
"""

from .env import smoke_mode

# after a full run: classes above 2%, normalised class entropy, recall; after a smoke run's
# few steps, a weaker version that a generator drawing copies of a few digits still fails
FULL_COVERAGE = (9, 0.9, 0.3)
SMOKE_COVERAGE = (2, 0.1, 0.05)


def coverage(result: dict, name="the generator") -> None:
    """Enough of the ten digits, evenly enough, and varied within them: recall (the share of
    held-out digits near some sample) fails a generator that draws a few digits per class
    over and over, which the class counts alone let through."""
    classes, entropy, recall = SMOKE_COVERAGE if smoke_mode() else FULL_COVERAGE
    print(
        f"{name}: {result['classes']}/10 classes (needs {classes}), entropy "
        f"{result['entropy']:.2f} (needs {entropy}), recall {result['recall']:.4f} (needs {recall})"
    )
    if result["classes"] < classes or result["entropy"] < entropy:
        raise AssertionError(
            f"{name} collapsed: {result['classes']}/10 classes above 2%, entropy "
            f"{result['entropy']:.2f}."
        )
    if result["recall"] < recall:
        raise AssertionError(
            f"{name} draws too little variety: recall {result['recall']:.4f}, below {recall}."
        )


def learned(result: dict, untrained: dict, name="the generator") -> None:
    """cFID below 0.8 times the untrained generator's; after a smoke run, below 0.97 times."""
    factor = 0.97 if smoke_mode() else 0.8
    print(
        f"{name}: cFID {result['cfid']:.1f}, untrained {untrained['cfid']:.1f} (needs below "
        f"{factor * untrained['cfid']:.1f})"
    )
    if not result["cfid"] < factor * untrained["cfid"]:
        raise AssertionError(
            f"{name} did not learn: cFID {result['cfid']:.1f} against {untrained['cfid']:.1f} "
            f"untrained."
        )


def beats(better: dict, worse: dict, factor: float, names=("the fix", "the post's version")):
    """`better`'s cFID below `factor` times `worse`'s."""
    print(
        f"cFID {names[0]} {better['cfid']:.1f}, {names[1]} {worse['cfid']:.1f} (needs below "
        f"{factor * worse['cfid']:.1f})"
    )
    if not better["cfid"] < factor * worse["cfid"]:
        raise AssertionError(
            f"{names[0]} (cFID {better['cfid']:.1f}) is not below {factor} times {names[1]} "
            f"({worse['cfid']:.1f})."
        )
