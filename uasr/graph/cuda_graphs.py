"""Replay the pruned forward/backward as CUDA graphs.

The pruned path runs ~20 small kernels per frame; on a GPU, eager PyTorch then spends its
time launching them (Python + driver overhead per op). Capturing a whole pass once per
(graph, batch shape, beam) and replaying it removes that overhead. The capture is keyed and
cached on the :class:`Graph`; if capture fails (old driver, unsupported op) we fall back to
eager execution with a warning, so results never depend on it.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable, Sequence

import torch

Tensor = torch.Tensor


def _flatten(x) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if x is None:
        return []
    if isinstance(x, (tuple, list)):
        return [t for item in x for t in _flatten(item)]
    return [t for v in vars(x).values() for t in _flatten(v)]  # dataclasses


def _rebuild(template, flat: list[Tensor]):
    """``template``'s structure with its tensors replaced, in order, by ``flat``."""
    it = iter(flat)

    def go(x):
        if isinstance(x, Tensor):
            return next(it)
        if x is None:
            return None
        if isinstance(x, (tuple, list)):
            return type(x)(go(v) for v in x)
        return type(x)(**{k: go(v) for k, v in vars(x).items()})

    return go(template)


class CapturedCall:
    """``fn(*tensors)`` captured once; calls copy inputs in, replay, and clone outputs out."""

    def __init__(self, fn: Callable, args: Sequence[Tensor]):
        self.static_in = [a.detach().clone() for a in args]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn(*self.static_in)  # warm-up: builds cached tables, initialises kernels
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = fn(*self.static_in)
        self.flat_out = _flatten(self.out)

    def __call__(self, *args: Tensor):
        for dst, src in zip(self.static_in, args):
            dst.copy_(src)
        self.graph.replay()
        return _rebuild(self.out, [t.clone() for t in self.flat_out])


def enabled(t: Tensor) -> bool:
    return t.is_cuda and os.environ.get("UASR_CUDA_GRAPHS", "1") != "0"


def run_captured(cache: dict, key: tuple, fn: Callable, args: Sequence[Tensor]):
    """Run ``fn(*args)`` through a cached capture (eager if capturing fails)."""
    call = cache.get(key)
    if call is None:
        try:
            call = CapturedCall(fn, args)
        except Exception as err:  # noqa: BLE001 - any capture failure means "run eagerly"
            warnings.warn(f"CUDA graph capture failed ({err}); running eagerly")
            call = fn
        cache[key] = call
    return call(*args)
