"""Supervised CTC baseline on frames: a small conv (or conv + BiLSTM) network, ``F.ctc_loss``.

Output classes: 0 = blank, ``k + 1`` = label ``k`` of the lang's ``phones.txt``. The training
loop works on in-memory tensors (``feats[i]: [T_i, D]``, ``targets[i]: [L_i]`` label ids without
the blank shift) so that it is testable without lhotse I/O; :mod:`uasr.bin.train_ctc` loads the
data and writes checkpoints and results.

Every epoch reseeds torch's global generator with ``(seed, epoch)`` and shuffles with its own
generator, so training from ``epoch-(N-1).pt`` (weights + Adam state) gives exactly the weights
of an uninterrupted run.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

BLANK = 0


class CtcModel(torch.nn.Module):
    """Frames ``[B, T, D]`` -> log-probabilities ``[B, T', 1 + C]`` (blank first).

    A 1-D convolution strided by ``subsample`` (kernel 5), then either ``layers`` residual
    convolution blocks (``arch="conv"``: kernel 3, dilations 1, 2, 4, 1, 2, 4, ..., LayerNorm,
    ReLU; fast on CPUs and quick to leave CTC's all-blank plateau) or a ``layers``-deep
    bidirectional LSTM with ``hidden/2`` units per direction (``arch="lstm"``), and a linear
    output layer. Padding never changes an utterance's outputs.
    """

    def __init__(self, input_dim: int, num_labels: int, hidden: int = 128, layers: int = 4,
                 subsample: int = 2, dropout: float = 0.1, arch: str = "conv"):
        super().__init__()
        if arch not in ("conv", "lstm"):
            raise ValueError(f"unknown CTC model architecture {arch!r}; use conv or lstm")
        self.config = {"input_dim": input_dim, "num_labels": num_labels, "hidden": hidden,
                       "layers": layers, "subsample": subsample, "dropout": dropout, "arch": arch}
        self.subsample, self.arch = subsample, arch
        self.conv_in = torch.nn.Conv1d(input_dim, hidden, kernel_size=5, stride=subsample, padding=2)
        self.drop = torch.nn.Dropout(dropout)
        if arch == "conv":
            dil = [(1, 2, 4)[i % 3] for i in range(layers)]
            self.blocks = torch.nn.ModuleList(
                torch.nn.Conv1d(hidden, hidden, kernel_size=3, padding=d, dilation=d) for d in dil)
            self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(hidden) for _ in range(layers))
            out_dim = hidden
        else:
            self.lstm = torch.nn.LSTM(hidden, hidden // 2, num_layers=layers, batch_first=True,
                                      bidirectional=True, dropout=dropout if layers > 1 else 0.0)
            out_dim = 2 * (hidden // 2)
        self.out = torch.nn.Linear(out_dim, num_labels + 1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames after the strided convolution (kernel 5, padding 2): ceil(T / subsample)."""
        return torch.div(lengths + 4 - 5, self.subsample, rounding_mode="floor") + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = (torch.arange(x.shape[1], device=x.device)[None] < lengths.to(x.device)[:, None])
        h = F.relu(self.conv_in((x * mask[..., None]).transpose(1, 2)))  # [B, H, T'], padding zeroed
        out_len = self.output_lengths(lengths.cpu())
        m = (torch.arange(h.shape[2])[None] < out_len[:, None]).to(h.device)[:, None]  # [B, 1, T']
        h = h * m
        if self.arch == "conv":
            for conv, norm in zip(self.blocks, self.norms):
                y = self.drop(F.relu(norm(conv(h).transpose(1, 2)))).transpose(1, 2)
                h = (h + y) * m
            h = h.transpose(1, 2)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(self.drop(h.transpose(1, 2)), out_len,
                                                             batch_first=True, enforce_sorted=False)
            h, _ = self.lstm(packed)
            h, _ = torch.nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=m.shape[2])
        return self.out(self.drop(h)).log_softmax(-1), out_len

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def collapse(ids: list[int], blank: int = BLANK) -> list[int]:
    """CTC's many-to-one map: merge runs of the same class, then drop blanks."""
    out, prev = [], None
    for i in ids:
        if i != prev and i != blank:
            out.append(i)
        prev = i
    return out


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best class per frame, collapsed; returns label ids (class - 1, blank removed)."""
    best = log_probs.argmax(-1).cpu()
    return [[c - 1 for c in collapse(best[b, :int(n)].tolist())] for b, n in enumerate(lengths)]


def pad_feats(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats])
    x = feats[0].new_zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        x[i, :len(f)] = f
    return x, lengths


def make_batches(lengths: list[int], batch_size: int, generator: torch.Generator | None = None,
                 max_frames: int = 0) -> list[list[int]]:
    """Utterance indices in batches of similar length: a random permutation (``generator``;
    none = the given order) is sorted by length inside windows of 20 batches, cut into
    batches of ``batch_size`` utterances (and at most ``max_frames`` padded frames when > 0),
    and the batch order is shuffled."""
    n = len(lengths)
    order = torch.randperm(n, generator=generator).tolist() if generator is not None else list(range(n))
    window = 20 * batch_size
    batches: list[list[int]] = []
    for s in range(0, n, window):
        chunk = sorted(order[s:s + window], key=lambda i: lengths[i])
        cur: list[int] = []
        for i in chunk:
            longest = max([lengths[j] for j in cur] + [lengths[i]])
            if cur and (len(cur) >= batch_size or (max_frames and longest * (len(cur) + 1) > max_frames)):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
    if generator is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def batch_loss(model: CtcModel, feats: list[torch.Tensor], targets: list[torch.Tensor],
               idx: list[int], device: str | torch.device) -> tuple[torch.Tensor, int]:
    """Summed CTC loss of the utterances ``idx`` (impossible ones contribute 0) and their
    number of input frames."""
    x, lengths = pad_feats([feats[i] for i in idx])
    lp, out_len = model(x.to(device), lengths)
    tgt = torch.cat([targets[i] for i in idx]).to(device) + 1  # label k -> class k + 1
    tlen = torch.tensor([len(targets[i]) for i in idx])
    loss = F.ctc_loss(lp.transpose(0, 1), tgt, out_len, tlen, blank=BLANK, reduction="sum",
                      zero_infinity=True)
    return loss, int(lengths.sum())


def train_epoch(model: CtcModel, optimizer: torch.optim.Optimizer, feats: list[torch.Tensor],
                targets: list[torch.Tensor], epoch: int, seed: int = 1, batch_size: int = 16,
                max_frames: int = 0, device: str | torch.device = "cpu", clip: float = 5.0,
                on_batch: Callable[[float, int], None] | None = None) -> float:
    """One pass over the data; returns the CTC loss per input frame. The objective of each
    step is the batch's summed loss over its number of target labels."""
    torch.manual_seed(seed * 100003 + epoch)  # dropout: reproducible per epoch (resume)
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    batches = make_batches([len(f) for f in feats], batch_size, g, max_frames)
    model.train()
    total, frames = 0.0, 0
    for idx in batches:
        loss, n = batch_loss(model, feats, targets, idx, device)
        num_labels = max(sum(len(targets[i]) for i in idx), 1)
        optimizer.zero_grad()
        (loss / num_labels).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total += float(loss.detach())
        frames += n
        if on_batch is not None:
            on_batch(float(loss.detach()) / max(n, 1), len(idx))
    return total / max(frames, 1)


@torch.no_grad()
def recognise(model: CtcModel, feats: list[torch.Tensor], batch_size: int = 32,
              device: str | torch.device = "cpu") -> list[list[int]]:
    """Greedy CTC label ids for every utterance, in input order."""
    model.eval()
    out: list[list[int]] = [[] for _ in feats]
    for idx in make_batches([len(f) for f in feats], batch_size):
        x, lengths = pad_feats([feats[i] for i in idx])
        lp, out_len = model(x.to(device), lengths)
        for i, h in zip(idx, greedy_decode(lp, out_len)):
            out[i] = h
    return out
