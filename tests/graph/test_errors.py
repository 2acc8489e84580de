"""Bad input and impossible utterances: clear errors, opt-in skipping, never NaN."""

import pytest
import torch

from uasr.graph import Graph, NoPathError, ctc, linear_graph, one_to_one, total_score


def _packed(device):
    # utterance 1 needs 3 frames for "1 2 3" under one_to_one but gets only 2
    return Graph.batch([linear_graph([1, 2], one_to_one()),
                        linear_graph([1, 2, 3], one_to_one())]).to(device)


def test_no_path_raises_naming_batch_index(device):
    em = torch.randn(2, 2, 4, device=device).log_softmax(-1)
    with pytest.raises(NoPathError, match="utterance 1"):
        total_score(em, torch.tensor([2, 2], device=device), _packed(device))


@pytest.mark.parametrize("mode,value", [("inf", float("-inf")), ("zero", 0.0)])
def test_no_path_opt_in(mode, value, device):
    em = torch.randn(2, 2, 4, device=device).log_softmax(-1).requires_grad_(True)
    tot = total_score(em, torch.tensor([2, 2], device=device), _packed(device), no_path=mode)
    assert float(tot[1].detach()) == value and torch.isfinite(tot[0])
    loss = -(tot[0] + (tot[1] if mode == "zero" else 0))
    (grad,) = torch.autograd.grad(loss, em)
    assert not torch.isnan(grad).any()
    assert bool((grad[1] == 0).all())


@pytest.mark.parametrize("backend", ["dense", "block", "sparse"])
def test_no_path_shared_graph(backend, device):
    graph = linear_graph([1, 1], ctc()).to(device)  # needs 3 frames (blank between repeats)
    em = torch.randn(1, 2, 3, device=device).log_softmax(-1)
    with pytest.raises(NoPathError, match="utterance 0"):
        total_score(em, torch.tensor([2], device=device), graph, backend=backend)


@pytest.mark.parametrize("lengths,msg", [([0, 2], r"lengths\[0\] = 0"), ([2, 3], r"lengths\[1\] = 3")])
def test_bad_lengths(lengths, msg, device):
    em = torch.randn(2, 2, 4, device=device)
    with pytest.raises(ValueError, match=msg):
        total_score(em, torch.tensor(lengths, device=device),
                    linear_graph([1], one_to_one()).to(device))


def test_shape_and_label_errors():
    g = linear_graph([1, 5], one_to_one())
    with pytest.raises(ValueError, match="V=4"):
        total_score(torch.zeros(1, 2, 4), torch.tensor([2]), g)
    with pytest.raises(ValueError, match=r"\[B, T, V\]"):
        total_score(torch.zeros(2, 4), torch.tensor([2]), g)
    with pytest.raises(ValueError, match="packed graph holds 2 graphs for a batch of 1"):
        total_score(torch.zeros(1, 2, 6), torch.tensor([2]), Graph.batch([g, g]))
    with pytest.raises(ValueError, match="backend"):
        total_score(torch.zeros(1, 2, 6), torch.tensor([2]), g, backend="k2")


def test_graph_validation():
    with pytest.raises(ValueError, match="connect states"):
        Graph(labels=[0, 1], src=[0], dst=[2], weights=[0.0], init=[0.0, 0.0], final=[0.0, 0.0])
    with pytest.raises(ValueError, match="init must have shape"):
        Graph(labels=[0, 1], src=[0], dst=[1], weights=[0.0], init=[0.0], final=[0.0, 0.0])
