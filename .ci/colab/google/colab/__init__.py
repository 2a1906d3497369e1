"""A stand-in for Colab's `google.colab`, for CI only: Colab's kernel imports the real one at
start-up, which is how the notebooks know they run on Colab. It has what the course calls."""

from . import drive  # noqa: F401
