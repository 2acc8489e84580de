"""``table`` emission: log q(unit | phone) as a C x K table normalised over units (DESIGN §1)."""

from __future__ import annotations

import torch


class TableEmission(torch.nn.Module):
    """Discrete emission model; ``logits`` are normalised over units (dim 1)."""

    def __init__(self, num_labels: int, num_units: int):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(num_labels, num_units))

    def log_q(self) -> torch.Tensor:
        return self.logits.log_softmax(dim=1)

    def forward(self, units: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` unit ids -> ``[B, N, C]`` emissions ``log q(x_n | c)`` (0 on padding)."""
        em = self.log_q().t()[units]
        mask = torch.arange(units.shape[1])[None, :] < lengths[:, None]
        return em * mask[..., None]

    @torch.no_grad()
    def random_init(self, generator: torch.Generator) -> None:
        """Rows drawn from a flat Dirichlet (a random restart): normalised exponentials."""
        g = torch.empty_like(self.logits).exponential_(generator=generator)
        self.logits.copy_(g.clamp_min(1e-8).log())

    @torch.no_grad()
    def m_step(self, counts: torch.Tensor, smoothing: float = 0.01) -> None:
        """MAP update from expected counts ``[C, K]`` under a symmetric Dirichlet(1 + smoothing).

        Positive ``smoothing`` adds pseudo-counts; negative is a sparse prior (alpha < 1, as in
        Bayesian decipherment): cells whose count falls below ``-smoothing`` get a tiny floor
        instead of zero, so that no unit becomes impossible for a phone.
        """
        self.logits.copy_((counts + smoothing).clamp_min(1e-6).log())

    @staticmethod
    def counts(units: torch.Tensor, lengths: torch.Tensor, occupancy: torch.Tensor,
               num_units: int) -> torch.Tensor:
        """Expected counts ``[C, K]``: sum of ``occupancy[b, n, c]`` at unit ``units[b, n]``."""
        mask = torch.arange(units.shape[1])[None, :] < lengths[:, None]
        x = units[mask]
        g = occupancy[mask]  # [M, C]
        return torch.zeros(num_units, g.shape[1], dtype=g.dtype).index_add_(0, x, g).t()
