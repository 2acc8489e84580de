"""k-means units (k-means++ init, Lloyd iterations) in torch; fitted on training data only."""

from __future__ import annotations

import torch


def kmeans(x: torch.Tensor, k: int, iters: int = 30, seed: int = 0) -> torch.Tensor:
    """Centroids ``[k, D]`` of ``x [N, D]`` (empty clusters are reseeded from far points)."""
    if len(x) < k:
        raise ValueError(f"k-means: {len(x)} points for {k} clusters; lower --num-units")
    g = torch.Generator().manual_seed(seed)
    x = x.float()
    c = x[torch.randint(len(x), (1,), generator=g)]
    d2 = torch.cdist(x, c).squeeze(1) ** 2
    for _ in range(1, k):  # k-means++
        i = torch.multinomial(d2 / d2.sum(), 1, generator=g)
        c = torch.cat([c, x[i]])
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    for _ in range(iters):
        a = assign(x, c)
        counts = torch.bincount(a, minlength=k).float()
        sums = torch.zeros_like(c).index_add_(0, a, x)
        empty = counts == 0
        c = torch.where(empty[:, None], c, sums / counts.clamp(min=1)[:, None])
        if empty.any():  # reseed empty clusters at the points worst served
            far = ((x - c[a]) ** 2).sum(1).topk(int(empty.sum())).indices
            c[empty] = x[far]
    return c


def assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Nearest centroid of every row of ``x``."""
    out = [torch.cdist(x[i:i + chunk].float(), centroids).argmin(1) for i in range(0, len(x), chunk)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)
