# Colab's kernel has google.colab imported before the first cell runs; so does this one
import google.colab  # noqa: F401
