"""Compiled transition operators for the probability-space forward-backward.

With ``W[s', s] = exp(w(s' -> s) - wmax)`` (parallel arcs summed), one forward frame is
``u = a @ W`` and one backward frame is ``W @ v``. Two layouts:

- :class:`DenseTransitions`: ``W`` as an ``S x S`` matrix (small graphs: phone bigram x loop/ctc).
- :class:`BlockTransitions`: states whose in-arcs come from the same source set form a dense
  bipartite block; self-loops become a diagonal. A fully expanded n-gram LM x loop is exactly
  ``C^(n-2)`` blocks of ``C x C`` (history ``(a, r)`` -> ``(r, c)``), so one frame is one
  batched matmul instead of a gather/scatter over every arc. A state fed by a single other
  state (a 1 x 1 block: the stay copies of a ``loop(max_stay=...)``) is a *side* arc instead,
  one gather per frame, so that such chains do not pad every block to their count.

Both also return per-arc expected counts for gradients w.r.t. the graph's arc weights.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from uasr.graph.graph import Graph

Tensor = torch.Tensor
LOOP, SIDE = -1, -2  # BlockLayout.flat of a self-loop (diagonal) and of a side arc


def _max_finite(x: Tensor) -> Tensor:
    """Largest finite entry (0 when there is none): a safe shift before ``exp``."""
    fin = x[torch.isfinite(x)]
    return fin.max() if fin.numel() else x.new_zeros(())


class DenseTransitions:
    name = "dense"

    def __init__(self, graph: Graph, weights: Tensor, dtype: torch.dtype):
        S = graph.num_states
        self.src, self.dst = graph.src, graph.dst
        w = weights.to(dtype)
        self.wmax = _max_finite(w)
        self.arc_w = torch.exp(w - self.wmax)  # per-arc share, for arc gradients
        W = torch.zeros(S * S, dtype=dtype, device=w.device)
        W.index_add_(0, self.src * S + self.dst, self.arc_w)
        self.W = W.view(S, S)

    def fwd(self, a: Tensor) -> Tensor:
        return a @ self.W

    def bwd(self, v: Tensor) -> Tensor:
        return v @ self.W.T

    def arc_counts(self, X: Tensor, Y: Tensor) -> Tensor:
        """``sum_n X[n, src] * W_arc * Y[n, dst]`` for every arc."""
        G = X.T @ Y
        return G[self.src, self.dst] * self.arc_w


def in_sets_of(src: list[int], dst: list[int]) -> tuple[dict[int, set], set, dict[int, tuple]]:
    """Per state its set of sources other than itself, the states with a self-loop, and each
    entered state's sorted in-set as a tuple (the key that groups states into blocks)."""
    in_sets: dict[int, set] = defaultdict(set)
    looped = set()
    for a, b in zip(src, dst):
        if a != b:
            in_sets[b].add(a)
        else:
            looped.add(a)
    return in_sets, looped, {b: tuple(sorted(s)) for b, s in in_sets.items()}


class BlockLayout:
    """The weight-independent part of :class:`BlockTransitions` (cached per graph)."""

    def __init__(self, graph: Graph):
        S = graph.num_states
        src, dst = graph.src.tolist(), graph.dst.tolist()
        in_sets, looped, key_of = in_sets_of(src, dst)
        n_with_key = defaultdict(int)
        for key in key_of.values():
            n_with_key[key] += 1
        # a state fed by one source that feeds no other state: a side arc, not a 1 x 1 block
        side_src = {b: key[0] for b, key in key_of.items() if len(key) == 1 and n_with_key[key] == 1
                    and b not in looped}
        for b in side_src:
            del key_of[b]
        # A self-loop usually stays on the diagonal, but if adding the state to its own
        # source set gives another group's source set (an n-gram "repeat" arc (b,b)->(b,b)),
        # it joins that block and the loop becomes an ordinary block entry.
        existing = set(key_of.values())
        for b in looped:
            with_self = tuple(sorted(in_sets.get(b, set()) | {b}))
            if with_self in existing and with_self != key_of.get(b):
                key_of[b] = with_self
        groups: dict[tuple, list[int]] = defaultdict(list)
        for b, key in key_of.items():
            groups[key].append(b)
        keys = list(groups)
        K = len(keys)
        I = max((len(k) for k in keys), default=1)
        O = max((len(groups[k]) for k in keys), default=1)
        src_idx = torch.full((max(K, 1), I), S, dtype=torch.int64)
        dst_idx = torch.full((max(K, 1), O), S, dtype=torch.int64)
        pos_in: dict[tuple[int, int], int] = {}  # (block, src state) -> row in block
        pos_out: dict[int, tuple[int, int]] = {}  # dst state -> (block, column)
        for k, key in enumerate(keys):
            for i, s in enumerate(key):
                src_idx[k, i] = s
                pos_in[(k, s)] = i
            for o, d in enumerate(groups[key]):
                dst_idx[k, o] = d
                pos_out[d] = (k, o)
        # flat position of every arc in the [K, I, O] block tensor, or LOOP / SIDE
        flat = []
        for a, b in zip(src, dst):
            k, o = pos_out.get(b, (-1, -1))
            if b in side_src:
                flat.append(SIDE)
            elif k < 0 or (k, a) not in pos_in:
                flat.append(LOOP)  # diagonal (self-loop outside every block)
            else:
                flat.append((k * I + pos_in[(k, a)]) * O + o)
        self.K, self.I, self.O, self.S = max(K, 1), I, O, S
        self.src_idx, self.dst_idx = src_idx, dst_idx
        self.flat = torch.tensor(flat, dtype=torch.int64)
        self.padded = self.K * I * O
        # side states and their single source (parallel side arcs are summed / maxed per state)
        self.side_dst = torch.tensor(sorted(side_src), dtype=torch.int64)
        self.side_src = torch.tensor([side_src[b] for b in sorted(side_src)], dtype=torch.int64)
        self.num_side = len(side_src)

    def to(self, device: torch.device) -> "BlockLayout":
        for name in ("src_idx", "dst_idx", "flat", "side_dst", "side_src"):
            setattr(self, name, getattr(self, name).to(device))
        return self


class BlockTransitions:
    name = "block"

    def __init__(self, graph: Graph, weights: Tensor, dtype: torch.dtype, layout: BlockLayout):
        self.L = L = layout
        w = weights.to(dtype)
        self.wmax = _max_finite(w)
        self.arc_w = torch.exp(w - self.wmax)
        is_loop, is_side, in_block = L.flat == LOOP, L.flat == SIDE, L.flat >= 0
        self.loop = torch.zeros(L.S, dtype=dtype, device=w.device)
        self.loop.index_add_(0, graph.src[is_loop], self.arc_w[is_loop])
        Wb = torch.zeros(L.K * L.I * L.O, dtype=dtype, device=w.device)
        Wb.index_add_(0, L.flat[in_block], self.arc_w[in_block])
        self.Wb = Wb.view(L.K, L.I, L.O)
        side = torch.zeros(L.S, dtype=dtype, device=w.device)  # per side state, by its dst
        side.index_add_(0, graph.dst[is_side], self.arc_w[is_side])
        self.side = side[L.side_dst]
        self.is_loop, self.is_side, self.in_block = is_loop, is_side, in_block
        self.src, self.dst = graph.src, graph.dst

    def _pad(self, a: Tensor) -> Tensor:
        return torch.cat([a, a.new_zeros(a.shape[0], 1)], dim=1)

    def fwd(self, a: Tensor) -> Tensor:
        L = self.L
        B = a.shape[0]
        x = self._pad(a)[:, L.src_idx]  # [B, K, I]
        y = torch.bmm(x.transpose(0, 1), self.Wb)  # [K, B, O]
        u = a.new_zeros(B, L.S + 1)
        u.index_copy_(1, L.dst_idx.reshape(-1), y.transpose(0, 1).reshape(B, -1))
        if L.num_side:  # side states are in no block: their column is still 0
            u.index_copy_(1, L.side_dst, a[:, L.side_src] * self.side)
        return u[:, :L.S] + a * self.loop

    def bwd(self, v: Tensor) -> Tensor:
        L = self.L
        B = v.shape[0]
        y = self._pad(v)[:, L.dst_idx]  # [B, K, O]
        x = torch.bmm(y.transpose(0, 1), self.Wb.transpose(1, 2))  # [K, B, I]
        out = v.new_zeros(B, L.S + 1)
        out.index_add_(1, L.src_idx.reshape(-1), x.transpose(0, 1).reshape(B, -1))
        if L.num_side:
            out.index_add_(1, L.side_src, v[:, L.side_dst] * self.side)
        return out[:, :L.S] + v * self.loop

    def arc_counts(self, X: Tensor, Y: Tensor) -> Tensor:
        L = self.L
        xb = self._pad(X)[:, L.src_idx]  # [N, K, I]
        yb = self._pad(Y)[:, L.dst_idx]  # [N, K, O]
        G = torch.bmm(xb.permute(1, 2, 0), yb.transpose(0, 1)).reshape(-1)  # [K*I*O]
        out = torch.empty_like(self.arc_w)
        out[self.in_block] = G[L.flat[self.in_block]]
        lp = self.src[self.is_loop]
        out[self.is_loop] = (X[:, lp] * Y[:, lp]).sum(0)
        out[self.is_side] = (X[:, self.src[self.is_side]] * Y[:, self.dst[self.is_side]]).sum(0)
        return out * self.arc_w


def block_layout(graph: Graph) -> BlockLayout:
    key = ("block_layout", graph.device)
    if key not in graph._cache:
        graph._cache[key] = BlockLayout(graph.to("cpu")).to(graph.device)
    return graph._cache[key]


def choose_backend(graph: Graph) -> str:
    """``dense`` for small graphs, ``block`` when the block layout wastes little, else ``sparse``."""
    if graph.is_batch:
        return "sparse"
    S = graph.num_states
    if S <= 512:
        return "dense"
    key = ("backend_choice",)
    if key not in graph._cache:
        L = block_layout(graph)
        graph._cache[key] = "block" if L.padded <= 3 * max(graph.num_arcs, 1) else "sparse"
    return graph._cache[key]


def make_transitions(graph: Graph, backend: str, dtype: torch.dtype):
    if backend == "dense":
        return DenseTransitions(graph, graph.weights.detach(), dtype)
    if backend == "block":
        return BlockTransitions(graph, graph.weights.detach(), dtype, block_layout(graph))
    raise ValueError(f"no probability-space transitions for backend {backend!r}")

