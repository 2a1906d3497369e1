"""Smoke mode for the whole test run.

Set before anything starts, so the kernels that nbval launches for the notebooks inherit it
and train with their tiny smoke budgets.
"""
import os

os.environ["GAN_SMOKE"] = "1"
