"""Sequence-level losses over the graph engine.

``sequence_ce``: the paper's unsupervised loss  -log sum_c p_LM(c) prod_n q(x_n | c_n)  (sum over
the label paths of an LM x topology graph). Its gradient w.r.t. the emissions is minus the
posterior occupancy, so an EM E-step is one backward pass (:func:`occupancy`).
"""

from __future__ import annotations

import torch

from uasr.graph import Graph, total_score


def sequence_ce(emissions: torch.Tensor, lengths: torch.Tensor, graph: Graph) -> torch.Tensor:
    """Per-utterance ``-log p(x)`` ``[B]`` under the LM prior (differentiable)."""
    return -total_score(emissions, lengths, graph, no_path="inf")


def occupancy(emissions: torch.Tensor, lengths: torch.Tensor, graph: Graph,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-likelihood ``[B]``, posterior occupancy ``[B, N, C]``): the E-step."""
    em = emissions.detach().requires_grad_(True)
    with torch.enable_grad():
        total = total_score(em, lengths, graph, no_path="zero")
        (gamma,) = torch.autograd.grad(total.sum(), em)
    return total.detach(), gamma
