"""k2 arc-list text: round trips and intersect_dense's frame-consumption semantics."""

import math

import pytest
import torch

from uasr.graph import Graph, total_score

from .helpers import random_graph

# A k2 acceptor: 0 -a-> 1 -b-> 2, 1 -a-> 1 (loop), 2 -(-1)-> 3 (final state)
K2_TEXT = """0 1 1 0.5
1 1 1 -1.0
1 2 2 0.25
2 3 -1 0.1
3
"""


def test_frame_consumption_hand_checked():
    """Every label>=0 arc eats one frame; the -1 arc adds its score and eats nothing else."""
    g = Graph.from_k2_str(K2_TEXT)
    em = torch.log(torch.tensor([[[0.0, 0.6, 0.4], [0.0, 0.3, 0.7], [0.0, 0.2, 0.8]]],
                                dtype=torch.float64).clamp_min(1e-300))
    # T=2: only "a b": 0.5 + log .6 + 0.25 + log .7 + 0.1
    two = 0.5 + math.log(0.6) + 0.25 + math.log(0.7) + 0.1
    assert math.isclose(float(total_score(em[:, :2], torch.tensor([2]), g)[0]), two, rel_tol=1e-6)
    # T=3: only "a a b" (the loop on state 1 once)
    three = 0.5 + math.log(0.6) - 1.0 + math.log(0.3) + 0.25 + math.log(0.8) + 0.1
    assert math.isclose(float(total_score(em, torch.tensor([3]), g)[0]), three, rel_tol=1e-6)


def test_parallel_final_arcs_sum():
    g = Graph.from_k2_str("0 1 0 0.0\n1 2 -1 0.0\n1 2 -1 0.0\n2\n")
    em = torch.zeros(1, 1, 1)
    assert math.isclose(float(total_score(em, torch.tensor([1]), g)[0]), math.log(2), rel_tol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_preserves_totals(seed):
    g = random_graph(5, 4, A=12, seed=seed)
    text = g.to_k2_str()
    g2 = Graph.from_k2_str(text)
    g3 = Graph.from_k2_str(g2.to_k2_str())
    em = torch.randn(3, 6, 4, dtype=torch.float64).log_softmax(-1)
    lengths = torch.tensor([6, 4, 1])
    ref = total_score(em, lengths, g, no_path="inf")
    for other in (g2, g3):
        got = total_score(em, lengths, other, no_path="inf", dtype=torch.float64)
        assert torch.allclose(got.double(), ref, atol=1e-5)


def test_text_format_and_errors():
    g = Graph(labels=[1, 2], src=[0], dst=[1], weights=[-0.5], init=[0.0, -math.inf],
              final=[-math.inf, 0.0])
    assert g.to_k2_str() == "0 1 1 0.0\n1 2 2 -0.5\n2 3 -1 0.0\n3\n"
    with pytest.raises(ValueError, match="only -1 arcs may enter the final state"):
        Graph.from_k2_str("0 1 3 0.0\n1\n")
    with pytest.raises(ValueError, match="line 1"):
        Graph.from_k2_str("0 1\n")


def test_save_load_round_trip(tmp_path):
    g = Graph.batch([random_graph(4, 3, A=7, seed=s) for s in range(2)])
    g.save(tmp_path / "g.pt")
    h = Graph.load(tmp_path / "g.pt")
    for name in Graph._FIELDS:
        assert torch.equal(getattr(g, name), getattr(h, name)), name
    with pytest.raises(FileNotFoundError, match="no such graph file"):
        Graph.load(tmp_path / "missing.pt")
