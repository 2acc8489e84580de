"""``hybrid`` emission (DESIGN §1): a neural posterior turned into a normalised generative score.

An MLP over the standardised pooled segment features gives log q(c | x_n). The score fed to
the graph is

    s(x_n, c) = log q(c | x_n) - log q̄(c),    q̄(c) = mean of q(c | x_m) over the batch's segments,

with q̄ computed inside the autograd graph. It is log q(x | c) - log p̂(x) of the generative
model q(x | c) = p̂(x) q(c | x) / q̄(c), which sums to 1 over the batch's empirical
distribution p̂; the ``- log p̂(x)`` offset does not depend on c (a constant of the loss). An
input-independent network (q(c | x) = q̄(c)) therefore scores exactly 0 for every label: the
loss is then the LM-only loss, so collapsing onto the LM is not optimal.

Decoding uses the prior of the whole training set (``log_prior``, a buffer refreshed by
:func:`update_prior` after training), so an utterance's scores do not depend on its batch.
"""

from __future__ import annotations

import torch


class HybridEmission(torch.nn.Module):
    """``[B, N, D]`` pooled features -> ``[B, N, C]`` prior-normalised posteriors."""

    def __init__(self, num_labels: int, dim: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.config = {"num_labels": num_labels, "dim": dim, "hidden": hidden, "layers": layers}
        mods: list[torch.nn.Module] = []
        d = dim
        for _ in range(layers):
            mods += [torch.nn.Linear(d, hidden), torch.nn.ReLU()]
            d = hidden
        mods.append(torch.nn.Linear(d, num_labels))
        self.net = torch.nn.Sequential(*mods)
        self.register_buffer("log_prior", torch.full((num_labels,), -torch.log(torch.tensor(float(num_labels)))))

    def log_posteriors(self, x: torch.Tensor) -> torch.Tensor:
        """log q(c | x) ``[..., C]``."""
        return self.net(x).log_softmax(-1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, batch_prior: bool = True) -> torch.Tensor:
        """Scores ``log q(c|x) - log q̄(c)`` (0 on padding). ``batch_prior``: q̄ from this batch's
        valid segments (training, differentiable); else the stored training-set prior."""
        logq = self.log_posteriors(x)
        mask = (torch.arange(x.shape[1], device=x.device)[None] < lengths.to(x.device)[:, None])
        if batch_prior:
            prior = batch_log_prior(logq, mask)
        else:
            prior = self.log_prior
        return (logq - prior) * mask[..., None]

    @torch.no_grad()
    def random_init(self, generator: torch.Generator) -> None:
        """Fresh weights (PyTorch's default Linear initialisation, drawn from ``generator``)."""
        for m in self.net:
            if isinstance(m, torch.nn.Linear):
                bound = 1.0 / m.in_features ** 0.5
                m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1) * bound)
                m.bias.copy_((torch.rand(m.bias.shape, generator=generator) * 2 - 1) * bound)
        self.log_prior.fill_(-torch.log(torch.tensor(float(self.log_prior.numel()))))


def batch_log_prior(logq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log of the average posterior over the valid positions: ``[C]`` (differentiable)."""
    valid = logq[mask]  # [M, C]
    return torch.logsumexp(valid, 0) - torch.log(torch.tensor(float(len(valid)), dtype=logq.dtype))


def _mask(b: dict) -> torch.Tensor:
    x = b["pooled"]
    return torch.arange(x.shape[1], device=x.device)[None] < b["lengths"].to(x.device)[:, None]


@torch.no_grad()
def update_prior(model: HybridEmission, batches: list[dict]) -> None:
    """Store the average posterior over all valid segments of ``batches`` as ``log_prior``."""
    acc, n = None, 0
    for b in batches:
        mask = _mask(b)
        q = model.log_posteriors(b["pooled"])[mask].exp().double().sum(0)
        acc = q if acc is None else acc + q
        n += int(mask.sum())
    model.log_prior.copy_((acc / n).log().float())


def log_likelihood(model: HybridEmission, batches: list[dict], graph) -> float:
    """Sum of ``log p(x)`` per token (up to the constant ``log p̂(x)``) under the training-set
    prior; comparable between restarts on the same data."""
    from uasr.losses import sequence_ce
    update_prior(model, batches)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for b in batches:
            em = model(b["pooled"], b["lengths"], batch_prior=False)
            total -= float(sequence_ce(em, b["lengths"], graph).sum())
            tokens += int(b["lengths"].sum())
    return total / max(tokens, 1)


def train_passes(model: HybridEmission, optimizer: torch.optim.Optimizer, batches: list[dict],
                 graph, passes: int = 1, generator: torch.Generator | None = None,
                 beta: float = 1.0) -> float:
    """``passes`` sweeps over ``batches`` (shuffled by ``generator``), one Adam step per batch on
    ``sequence_ce(beta * scores).sum() / tokens``; returns the last sweep's loss per token.

    ``beta < 1`` (deterministic annealing, as the table's EM): pass ``graph`` with its weights
    already multiplied by ``beta``; the loss is then that of the flattened path distribution.
    """
    from uasr.losses import sequence_ce
    model.train()
    last = 0.0
    for _ in range(passes):
        order = torch.randperm(len(batches), generator=generator).tolist() if generator else range(len(batches))
        tot, tokens = 0.0, 0
        for i in order:
            b = batches[i]
            n = int(b["lengths"].sum())
            loss = sequence_ce(beta * model(b["pooled"], b["lengths"]), b["lengths"], graph)
            loss = loss[torch.isfinite(loss)].sum()  # an utterance without a path drops out
            optimizer.zero_grad()
            (loss / n).backward()
            optimizer.step()
            tot += float(loss.detach())
            tokens += n
        last = tot / max(tokens, 1)
    return last


def train_supervised(model: HybridEmission, optimizer: torch.optim.Optimizer, batches: list[dict],
                     passes: int = 50, generator: torch.Generator | None = None,
                     targets: list[torch.Tensor] | None = None) -> float:
    """Cross-entropy on the tokens' reference labels (``b["labels"]``), or on soft ``targets``
    (``[B, N, C]`` occupancies per batch, e.g. another model's posteriors); returns the last loss."""
    model.train()
    last = 0.0
    for _ in range(passes):
        order = torch.randperm(len(batches), generator=generator).tolist() if generator else range(len(batches))
        tot, n_all = 0.0, 0
        for i in order:
            b = batches[i]
            mask = _mask(b)
            logq = model.log_posteriors(b["pooled"][mask])
            if targets is None:
                loss = torch.nn.functional.nll_loss(logq, b["labels"].to(logq.device)[mask],
                                                    reduction="sum")
            else:
                loss = -(targets[i].to(logq.device)[mask] * logq).sum()
            optimizer.zero_grad()
            (loss / int(mask.sum())).backward()
            optimizer.step()
            tot += float(loss.detach())
            n_all += int(mask.sum())
        last = tot / max(n_all, 1)
    update_prior(model, batches)
    return last
