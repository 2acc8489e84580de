"""n-gram language models: ARPA I/O (:mod:`uasr.lm.arpa`), estimation and perplexity
(:mod:`uasr.lm.ngram`)."""

from uasr.lm.arpa import NgramLM, read_arpa, write_arpa
from uasr.lm.ngram import perplexity, train_ngram

__all__ = ["NgramLM", "perplexity", "read_arpa", "train_ngram", "write_arpa"]
