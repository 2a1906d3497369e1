"""Each chapter's final checks: the claims of the chapter, raising AssertionError when one
stops holding. nbval compares no outputs of stripped notebooks, so these are what fail a
chapter's test; tests/test_checks.py feeds each one the failure it guards against.
"""

import torch

from . import viz
from .env import smoke_mode

FULL_COVERAGE = (9, 0.9)  # classes above 2%, normalised entropy, after a full run
SMOKE_COVERAGE = (2, 0.1)  # after a smoke run's few steps: still fails one repeated digit


def coverage(result: dict, name="the generator") -> None:
    """Enough of the ten digits, evenly enough (metrics.evaluate's result)."""
    classes, entropy = SMOKE_COVERAGE if smoke_mode() else FULL_COVERAGE
    print(
        f"{name}: {result['classes']}/10 classes (needs {classes}), entropy "
        f"{result['entropy']:.2f} (needs {entropy})"
    )
    if result["classes"] < classes or result["entropy"] < entropy:
        raise AssertionError(
            f"{name} collapsed: {result['classes']}/10 classes above 2%, "
            f"entropy {result['entropy']:.2f}."
        )


def learned(result: dict, untrained: dict, name="the generator") -> None:
    """cFID below 0.8 times the untrained generator's; after a smoke run's few steps,
    below 0.97 times."""
    factor = 0.97 if smoke_mode() else 0.8
    print(
        f"{name}: cFID {result['cfid']:.1f}, untrained {untrained['cfid']:.1f} "
        f"(needs below {factor * untrained['cfid']:.1f})"
    )
    if not result["cfid"] < factor * untrained["cfid"]:
        raise AssertionError(
            f"{name} did not learn: cFID {result['cfid']:.1f} against "
            f"{untrained['cfid']:.1f} untrained."
        )


def beats(better: dict, worse: dict, factor: float, names=("the fix", "the post's version")):
    """`better`'s cFID below `factor` times `worse`'s."""
    print(
        f"cFID {names[0]} {better['cfid']:.1f}, {names[1]} {worse['cfid']:.1f} "
        f"(needs below {factor * worse['cfid']:.1f})"
    )
    if not better["cfid"] < factor * worse["cfid"]:
        raise AssertionError(
            f"{names[0]} (cFID {better['cfid']:.1f}) is not below {factor} "
            f"times {names[1]} ({worse['cfid']:.1f})."
        )


def _tail(values, share=0.2):
    tail = values[-max(1, int(share * len(values))) :]
    return sum(tail) / len(tail)


def _head(values, share=0.2):
    head = values[: max(1, int(share * len(values)))]
    return sum(head) / len(head)


def saturation(saturating, nonsaturating, last=50) -> None:
    """Chapter 01: under the saturating G loss D(G(z)) stays below 0.01 over the last
    steps, while the non-saturating run, from the same start, gets a signal through (above
    0.05). After a smoke run's few steps: below half the non-saturating run's."""
    sat, ns = (sum(h["d_fake"][-last:]) / last for h in (saturating, nonsaturating))
    stall = 0.5 * ns if smoke_mode() else 0.01
    print(
        f"mean D(G(z)) over the last {last} steps: saturating {sat:.4f} (needs below "
        f"{stall:.4f}), non-saturating {ns:.4f} (needs above 0.05)"
    )
    if not (sat < stall and ns > 0.05):
        raise AssertionError(
            f"The saturating run's D(G(z)) is {sat:.4f} and the "
            f"non-saturating run's {ns:.4f}: the stall did not show."
        )


def wasserstein(history) -> None:
    """Chapter 05: the critic's distance estimate E[C(x)] - E[C(G(z))] falls from its peak
    (over the last fifth of the run, below half of it) and the gradient penalty settles
    (below 0.2). After a smoke run's few steps: below 0.8 of the peak, and a penalty lower
    than over the first fifth."""
    gap = viz.smooth([r - f for r, f in zip(history["d_real"], history["d_fake"])], 5)
    peak, last = max(gap), _tail(gap)
    penalty, first = _tail(history["penalty"]), _head(history["penalty"])
    fall, settle = (0.8, first) if smoke_mode() else (0.5, 0.2)
    print(
        f"distance estimate: peak {peak:.2f}, last fifth {last:.2f} (needs below "
        f"{fall * peak:.2f}); penalty, last fifth {penalty:.3f} (needs below {settle:.3f})"
    )
    if not (last < fall * peak and penalty < settle):
        raise AssertionError(
            f"The critic's estimate went from a peak of {peak:.2f} to "
            f"{last:.2f} and the penalty ended at {penalty:.3f}: the critic "
            f"did not settle."
        )


def follows_labels(shares: torch.Tensor, floor: float, name="the generator") -> None:
    """Chapter 07: the share of samples judged to be the digit asked for, per digit."""
    print(
        f"{name} draws the digit asked for {shares.mean():.0%} of the time (worst digit "
        f"{shares.min():.0%}; needs {floor:.0%} on average)"
    )
    if not shares.mean() >= floor:
        raise AssertionError(
            f"{name} draws the digit asked for only {shares.mean():.0%} of the time."
        )


def code_purity(purity: float, floor: float, name="the generator") -> None:
    """Chapter 08: the share of samples whose digit matches their categorical code, under
    the best one-to-one matching (explore.code_purity), is above `floor`; chance is 10%."""
    print(f"{name}: code purity {purity:.0%} (needs at least {floor:.0%}; chance 10%)")
    if not purity >= floor:
        raise AssertionError(
            f"{name}'s categorical code matches the digits only "
            f"{purity:.0%} of the time, not above the floor {floor:.0%}."
        )
