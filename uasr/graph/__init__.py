"""The differentiable graph engine: LM-prior graphs, total scores, Viterbi, pruning.

Example::

    from uasr.graph import ngram_graph, loop, total_score
    graph = ngram_graph(lm, symbols, loop(stay_prob=0.5))
    loss = -total_score(log_q, lengths, graph).sum()
"""

from uasr.graph.acceptor import (Acceptor, BackoffAcceptor, linear_acceptor, ngram_acceptor,
                                 table_acceptor)
from uasr.graph.backoff import BackoffGraph
from uasr.graph.graph import Graph
from uasr.graph.score import NoPathError, ViterbiResult, total_score, viterbi
from uasr.graph.topology import (Topology, compose, ctc, linear_graph, loop, ngram_graph,
                                 one_to_one)
from uasr.lm.arpa import NgramLM, read_arpa, write_arpa

__all__ = [
    "Acceptor", "BackoffAcceptor", "BackoffGraph", "Graph", "NgramLM", "NoPathError",
    "Topology", "ViterbiResult", "compose", "ctc", "linear_acceptor", "linear_graph", "loop",
    "ngram_acceptor", "ngram_graph", "one_to_one", "read_arpa", "table_acceptor", "total_score",
    "viterbi", "write_arpa",
]
