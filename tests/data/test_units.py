import torch

from uasr.data.units import assign, kmeans


def test_kmeans_recovers_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    x = torch.cat([c + 0.1 * torch.randn(100, 2, generator=g) for c in centres])
    c = kmeans(x, 3, seed=1)
    a = assign(x, c)
    for k in range(3):  # each true cluster maps to one unit
        assert a[100 * k:100 * (k + 1)].unique().numel() == 1
    assert a.unique().numel() == 3


def test_kmeans_deterministic():
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kmeans(x, 5, seed=2), kmeans(x, 5, seed=2))
