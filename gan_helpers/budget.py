"""Every training budget comes from here, so smoke mode shrinks them all at once.

`GAN_SMOKE=1` (set by tests/conftest.py, inherited by the kernels nbval starts) runs the
same cells with tiny budgets on a 2-core CPU. Full mode is what a learner runs.
"""
import os


def smoke_mode() -> bool:
    return os.environ.get("GAN_SMOKE", "") not in ("", "0", "false", "False")


def budget(full, smoke):
    """`full` for a learner's run, `smoke` under GAN_SMOKE=1."""
    return smoke if smoke_mode() else full


def show_progress() -> bool:
    """Progress bars are off in smoke mode: TQDM_DISABLE does not reach notebook bars."""
    return not smoke_mode()
