"""``gaussian`` emission: one diagonal Gaussian per phone over pooled segment features."""

from __future__ import annotations

import math

import torch


class GaussianEmission(torch.nn.Module):
    """log N(x; mu_c, diag(var_c)), a proper density over x (normalised over x)."""

    def __init__(self, num_labels: int, dim: int, var_floor: float = 0.05):
        super().__init__()
        self.mean = torch.nn.Parameter(torch.zeros(num_labels, dim))
        self.log_var = torch.nn.Parameter(torch.zeros(num_labels, dim))
        self.var_floor = var_floor

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, N, D]`` features -> ``[B, N, C]`` log densities (0 on padding)."""
        prec = (-self.log_var).exp()  # [C, D]
        # expanded square: x^2 . prec - 2 x . (mu prec) + mu^2 . prec, as matmuls (no [B,N,C,D])
        quad = (x * x) @ prec.t() - 2 * x @ (self.mean * prec).t() + (self.mean ** 2 * prec).sum(-1)
        ll = -0.5 * (quad + self.log_var.sum(-1) + x.shape[-1] * math.log(2 * math.pi))
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        return ll * mask[..., None]

    @torch.no_grad()
    def random_init(self, generator: torch.Generator, data: torch.Tensor) -> None:
        """Means at random data points, variances at the global variance."""
        idx = torch.randint(len(data), (self.mean.shape[0],), generator=generator)
        self.mean.copy_(data[idx])
        self.log_var.copy_(data.var(0).clamp_min(self.var_floor).log().expand_as(self.log_var))

    @staticmethod
    def stats(x: torch.Tensor, lengths: torch.Tensor, occupancy: torch.Tensor) -> torch.Tensor:
        """Sufficient statistics ``[C, 1 + 2D]``: (sum gamma, sum gamma x, sum gamma x^2)."""
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        xv, g = x[mask].double(), occupancy[mask].double()
        return torch.cat([g.sum(0)[:, None], g.t() @ xv, g.t() @ (xv * xv)], dim=1)

    @torch.no_grad()
    def m_step(self, stats: torch.Tensor, prior: float = 1.0) -> None:
        """ML update; ``prior`` pseudo-counts pull unused phones toward the global moments."""
        D = self.mean.shape[1]
        n, s1, s2 = stats[:, :1], stats[:, 1:1 + D], stats[:, 1 + D:]
        tot = stats.sum(0)
        g1, g2 = tot[1:1 + D] / tot[0], tot[1 + D:] / tot[0]
        mean = (s1 + prior * g1) / (n + prior)
        var = (s2 + prior * g2) / (n + prior) - mean * mean
        self.mean.copy_(mean.float())
        self.log_var.copy_(var.clamp_min(self.var_floor).log().float())
