"""CTC topology (linear graphs, weight 0) against torch.nn.functional.ctc_loss."""

import pytest
import torch
import torch.nn.functional as F

from uasr.graph import Graph, ctc, linear_graph, total_score, viterbi


def _batch(seed: int, B: int, T: int, V: int, minimal: bool):
    g = torch.Generator().manual_seed(seed)
    U = torch.randint(1, 6, (B,), generator=g)
    targets = [torch.randint(1, V, (int(u),), generator=g) for u in U]
    if minimal:  # the fewest frames CTC allows: U + number of adjacent repeats
        lengths = torch.tensor([len(y) + int((y[1:] == y[:-1]).sum()) for y in targets])
    else:
        lengths = torch.tensor([torch.randint(int(len(y)) * 2, T + 1, (1,), generator=g).item()
                                for y in targets])
    lengths = lengths.clamp(max=T)
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64)
    return logits, lengths, targets


@pytest.mark.parametrize("minimal", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_ctc_matches_torch(seed, minimal, device):
    B, T, V = 5, 12, 6
    logits, lengths, targets = _batch(seed, B, T, V, minimal)
    graph = Graph.batch([linear_graph(y.tolist(), ctc()) for y in targets]).to(device)
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        x = logits.to(device, dtype).requires_grad_(True)
        ours = -total_score(x.log_softmax(-1), lengths.to(device), graph)
        (g_ours,) = torch.autograd.grad(ours.sum(), x)
        x2 = logits.to(device, dtype).requires_grad_(True)
        ref = F.ctc_loss(x2.log_softmax(-1).transpose(0, 1), torch.cat(targets).to(device),
                         lengths.to(device), torch.tensor([len(y) for y in targets]).to(device),
                         blank=0, reduction="none", zero_infinity=False)
        (g_ref,) = torch.autograd.grad(ref.sum(), x2)
        assert torch.allclose(ours, ref, rtol=tol, atol=tol)
        assert torch.allclose(g_ours, g_ref, rtol=tol, atol=tol)


def test_ctc_shared_graph_matches_torch(device):
    """A single transcript as a shared graph (dense backend) equals ctc_loss too."""
    g = torch.Generator().manual_seed(3)
    y = [2, 2, 3, 1]
    x = torch.randn(4, 10, 5, generator=g, dtype=torch.float64).log_softmax(-1)
    lengths = torch.tensor([10, 9, 5, 7])
    graph = linear_graph(y, ctc()).to(device)
    ref = F.ctc_loss(x.transpose(0, 1), torch.tensor([y] * 4), lengths, torch.tensor([4] * 4),
                     reduction="none")
    for backend in ("dense", "block", "sparse"):
        ours = -total_score(x.to(device), lengths.to(device), graph, backend=backend)
        assert torch.allclose(ours.cpu(), ref, rtol=1e-9), backend


def test_ctc_viterbi_labels(device):
    """Viterbi over a CTC graph returns the transcript (repeats kept via the blank)."""
    y = [3, 3, 1]
    graph = linear_graph(y, ctc()).to(device)
    em = torch.full((1, 6, 4), -5.0)
    for t, v in enumerate([3, 0, 3, 3, 1, 0]):
        em[0, t, v] = 0.0
    res = viterbi(em.to(device), torch.tensor([6], device=device), graph)
    assert res.labels[0] == y
    assert res.alignments[0].tolist() == [3, 0, 3, 3, 1, 0]
