"""uasr: sequence-level unsupervised speech recognition (recipes + a differentiable graph engine)."""

__version__ = "0.1.0"
