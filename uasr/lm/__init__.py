"""n-gram language models: ARPA I/O (:mod:`uasr.lm.arpa`)."""

from uasr.lm.arpa import NgramLM, read_arpa, write_arpa

__all__ = ["NgramLM", "read_arpa", "write_arpa"]
