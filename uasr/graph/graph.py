"""The state-emitting weighted graph that every algorithm in :mod:`uasr.graph` runs on.

Every state ``s`` emits ``labels[s]`` on each frame it occupies. A path of ``T`` frames is a
state sequence ``s_0 .. s_{T-1}`` with score::

    init[s_0] + sum_t arc_weight(s_{t-1} -> s_t) + final[s_{T-1}] + sum_t emissions[t, labels[s_t]]

All weights are log-weights; ``-inf`` means "not allowed". A :class:`Graph` is shared by a whole
batch (e.g. an LM prior) or, through :meth:`Graph.batch`, one graph per utterance (e.g.
supervised linear graphs of different lengths) packed as a disjoint union.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Optional, Sequence

import torch

Tensor = torch.Tensor


@dataclass
class Graph:
    """A state-emitting graph (one graph, or a disjoint union of per-utterance graphs).

    Attributes:
        labels: ``[S]`` int64, label emitted by each state (an index into the emissions' last dim).
        src, dst: ``[A]`` int64 arc end points.
        weights: ``[A]`` float arc log-weights (may require grad).
        init, final: ``[S]`` float initial and final log-weights (may require grad).
        new_token: ``[A]`` bool, whether taking the arc starts a new output token (False for
            self-loops that extend the current token). Used by Viterbi to turn an alignment
            into a label sequence.
        blank: a label whose states emit no token (CTC blank), or None.
        batch_offsets: for a packed batch of ``N`` graphs, ``[N + 1]`` state offsets (graph i
            owns states ``batch_offsets[i]:batch_offsets[i+1]``); None for a single graph.
    """

    labels: Tensor
    src: Tensor
    dst: Tensor
    weights: Tensor
    init: Tensor
    final: Tensor
    new_token: Optional[Tensor] = None
    blank: Optional[int] = None
    batch_offsets: Optional[Tensor] = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        dev = self.labels.device
        self.src = torch.as_tensor(self.src, dtype=torch.int64, device=dev)
        self.dst = torch.as_tensor(self.dst, dtype=torch.int64, device=dev)
        self.weights = _as_float(self.weights, dev)
        self.init = _as_float(self.init, dev)
        self.final = _as_float(self.final, dev)
        if self.new_token is None:
            self.new_token = self.src != self.dst
        self.new_token = torch.as_tensor(self.new_token, dtype=torch.bool, device=dev)
        S, A = self.labels.numel(), self.src.numel()
        for name, t, n in (("src", self.src, A), ("dst", self.dst, A), ("weights", self.weights, A),
                           ("new_token", self.new_token, A), ("init", self.init, S),
                           ("final", self.final, S)):
            if t.dim() != 1 or t.numel() != n:
                raise ValueError(f"Graph.{name} must have shape [{n}], got {tuple(t.shape)}")
        if A and (int(self.src.min()) < 0 or int(self.src.max()) >= S
                  or int(self.dst.min()) < 0 or int(self.dst.max()) >= S):
            raise ValueError(f"Graph arcs must connect states in [0, {S})")
        if S and int(self.labels.min()) < 0:
            raise ValueError("Graph.labels must be >= 0")

    # ------------------------------------------------------------------ basic properties
    @property
    def num_states(self) -> int:
        return self.labels.numel()

    @property
    def num_arcs(self) -> int:
        return self.src.numel()

    @property
    def num_graphs(self) -> int:
        """1 for a shared graph, N for a packed batch of N graphs."""
        return 1 if self.batch_offsets is None else self.batch_offsets.numel() - 1

    @property
    def is_batch(self) -> bool:
        return self.batch_offsets is not None

    @property
    def device(self) -> torch.device:
        return self.labels.device

    @property
    def requires_grad(self) -> bool:
        return self.weights.requires_grad or self.init.requires_grad or self.final.requires_grad

    def to(self, device: torch.device | str) -> "Graph":
        """A copy on ``device`` (weights keep their autograd history)."""
        device = torch.device(device)
        if device == self.device:
            return self
        return replace(
            self, labels=self.labels.to(device), src=self.src.to(device), dst=self.dst.to(device),
            weights=self.weights.to(device), init=self.init.to(device), final=self.final.to(device),
            new_token=self.new_token.to(device),
            batch_offsets=None if self.batch_offsets is None else self.batch_offsets.to(device),
            _cache={})

    def detach(self) -> "Graph":
        return replace(self, weights=self.weights.detach(), init=self.init.detach(),
                       final=self.final.detach(), _cache={})

    def requires_grad_(self, flag: bool = True) -> "Graph":
        """Make arc, initial and final weights leaf tensors that require grad (in place)."""
        self.weights = self.weights.detach().requires_grad_(flag)
        self.init = self.init.detach().requires_grad_(flag)
        self.final = self.final.detach().requires_grad_(flag)
        return self

    def used_labels(self) -> Tensor:
        """Sorted distinct labels that the states emit (cached)."""
        if "used_labels" not in self._cache:
            self._cache["used_labels"] = torch.unique(self.labels)
        return self._cache["used_labels"]

    def state_batch_index(self) -> Tensor:
        """``[S]`` index of the graph (within a packed batch) that owns each state."""
        if self.batch_offsets is None:
            return torch.zeros(self.num_states, dtype=torch.int64, device=self.device)
        sizes = self.batch_offsets[1:] - self.batch_offsets[:-1]
        return torch.repeat_interleave(torch.arange(sizes.numel(), device=self.device), sizes)

    # ------------------------------------------------------------------ batching
    @staticmethod
    def batch(graphs: Sequence["Graph"]) -> "Graph":
        """Pack per-utterance graphs into one disjoint union (graph i scores utterance i)."""
        if not graphs:
            raise ValueError("Graph.batch needs at least one graph")
        if any(g.is_batch for g in graphs):
            raise ValueError("Graph.batch takes single graphs, not packed batches")
        blanks = {g.blank for g in graphs}
        if len(blanks) > 1:
            raise ValueError(f"graphs in one batch must share the blank label, got {blanks}")
        offsets = [0]
        for g in graphs:
            offsets.append(offsets[-1] + g.num_states)
        shift = [torch.full_like(g.src, off) for g, off in zip(graphs, offsets)]
        return Graph(
            labels=torch.cat([g.labels for g in graphs]),
            src=torch.cat([g.src + s for g, s in zip(graphs, shift)]),
            dst=torch.cat([g.dst + s for g, s in zip(graphs, shift)]),
            weights=torch.cat([g.weights for g in graphs]),
            init=torch.cat([g.init for g in graphs]),
            final=torch.cat([g.final for g in graphs]),
            new_token=torch.cat([g.new_token for g in graphs]),
            blank=graphs[0].blank,
            batch_offsets=torch.tensor(offsets, dtype=torch.int64, device=graphs[0].device),
        )

    # ------------------------------------------------------------------ files
    _FIELDS: ClassVar[tuple[str, ...]] = ("labels", "src", "dst", "weights", "init", "final", "new_token", "batch_offsets")

    def save(self, path: str | os.PathLike) -> None:
        """Write the graph (tensors on the CPU) atomically with ``torch.save``."""
        path = Path(path)
        state = {k: getattr(self, k) for k in self._FIELDS}
        state = {k: (v.detach().cpu() if v is not None else None) for k, v in state.items()}
        state["blank"] = self.blank
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    @staticmethod
    def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> "Graph":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such graph file (write one with Graph.save)")
        state = torch.load(path, map_location=device, weights_only=True)
        return Graph(**state)

    # ------------------------------------------------------------------ k2 interop
    def to_k2_str(self) -> str:
        """k2's arc-list text of an equivalent acceptor (``src dst label score`` per line).

        k2 state 0 is a fresh start state, state ``s + 1`` is our state ``s``, and the last
        state is the final state, entered by label ``-1`` arcs carrying our final weights.
        Every arc with a label >= 0 consumes one frame, as in k2's ``intersect_dense``.
        """
        if self.is_batch:
            raise ValueError("to_k2_str takes a single graph, not a packed batch")
        S = self.num_states
        lines = []
        lab, init, fin = self.labels.tolist(), self.init.tolist(), self.final.tolist()
        for s in range(S):
            if init[s] > -math.inf:
                lines.append(f"0 {s + 1} {lab[s]} {_fmt(init[s])}")
        for a, b, w in zip(self.src.tolist(), self.dst.tolist(), self.weights.tolist()):
            if w > -math.inf:
                lines.append(f"{a + 1} {b + 1} {lab[b]} {_fmt(w)}")
        for s in range(S):
            if fin[s] > -math.inf:
                lines.append(f"{s + 1} {S + 1} -1 {_fmt(fin[s])}")
        lines.append(str(S + 1))
        return "\n".join(lines) + "\n"

    @staticmethod
    def from_k2_str(text: str, device: torch.device | str = "cpu") -> "Graph":
        """Read k2's arc-list text of an acceptor into an equivalent state-emitting graph.

        k2 semantics (``intersect_dense``): each arc with label >= 0 consumes one frame and adds
        ``emissions[t, label]``; a label ``-1`` arc enters the final state and consumes nothing
        else. The conversion makes one of our states per label >= 0 arc: its label is the arc's
        label, and it can follow any arc that ends where it starts. Start state is k2 state 0.
        """
        rows: list[tuple[int, int, int, float]] = []
        final_state = None
        for lineno, line in enumerate(text.strip().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) == 1:
                final_state = int(parts[0])
                continue
            if len(parts) not in (3, 4):
                raise ValueError(f"k2 text line {lineno}: expected 'src dst label [score]', got {line!r}")
            score = float(parts[3]) if len(parts) == 4 else 0.0
            rows.append((int(parts[0]), int(parts[1]), int(parts[2]), score))
        if final_state is None:
            final_state = max((max(r[0], r[1]) for r in rows), default=0)
        emitting = [r for r in rows if r[2] >= 0]
        for r in rows:
            if r[2] < 0 and r[1] != final_state:
                raise ValueError(f"k2 text: a -1 arc must enter the final state {final_state}: {r}")
            if r[2] >= 0 and r[1] == final_state:
                raise ValueError(f"k2 text: only -1 arcs may enter the final state: {r}")
        # exit weight of a k2 state = logsumexp of its -1 arcs
        exit_w: dict[int, float] = {}
        for a, _, lab, w in rows:
            if lab < 0:
                exit_w[a] = float(torch.logaddexp(torch.tensor(exit_w.get(a, -math.inf),
                                                               dtype=torch.float64),
                                                  torch.tensor(w, dtype=torch.float64)))
        by_src: dict[int, list[int]] = {}
        for i, (a, _, _, _) in enumerate(emitting):
            by_src.setdefault(a, []).append(i)
        src, dst, w = [], [], []
        for i, (_, b, _, _) in enumerate(emitting):
            for j in by_src.get(b, []):
                src.append(i)
                dst.append(j)
                w.append(emitting[j][3])
        return Graph(
            labels=torch.tensor([r[2] for r in emitting], dtype=torch.int64, device=device),
            src=torch.tensor(src, dtype=torch.int64, device=device),
            dst=torch.tensor(dst, dtype=torch.int64, device=device),
            weights=torch.tensor(w, dtype=torch.float32, device=device),
            init=torch.tensor([r[3] if r[0] == 0 else -math.inf for r in emitting], device=device),
            final=torch.tensor([exit_w.get(r[1], -math.inf) for r in emitting], device=device),
        )


def _as_float(x, device) -> Tensor:
    t = torch.as_tensor(x, device=device)
    return t if t.is_floating_point() else t.to(torch.float32)


def _fmt(x: float) -> str:
    return repr(float(x))
