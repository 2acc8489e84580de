"""Phone-sized segments: oracle (TTS boundaries), unsupervised (spectral change), pooling, F1,
and oracle boundaries with injected segmenter errors (a diagnostic).

A segmentation of an utterance of T frames is a sorted int tensor of boundaries
``[0, b_1, ..., T]``; segment i spans frames ``[b_i, b_{i+1})``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from uasr.data.features import FRAME_SHIFT


def oracle_boundaries(alignment: list[tuple[str, float, float]], num_frames: int) -> np.ndarray:
    """Boundaries from TTS phone (symbol, start, duration) items; every segment >= 1 frame."""
    b = [0]
    for _, start, dur in alignment[:-1]:
        f = int(round((start + dur) / FRAME_SHIFT))
        f = min(max(f, b[-1] + 1), num_frames - 1)
        if f > b[-1]:
            b.append(f)
    b.append(num_frames)
    return np.asarray(b, dtype=np.int64)


def frame_labels(alignment: list[tuple[str, float, float]], num_frames: int) -> list[str]:
    """The phone of every frame (frame centre inside the item)."""
    lab = [alignment[-1][0]] * num_frames
    j = 0
    for t in range(num_frames):
        c = (t + 0.5) * FRAME_SHIFT
        while j < len(alignment) - 1 and c >= alignment[j][1] + alignment[j][2]:
            j += 1
        lab[t] = alignment[j][0]
    return lab


def segment_labels(bounds: np.ndarray, frame_lab: list[str]) -> list[str]:
    """Majority phone of each segment (the supervised target of a segment)."""
    return [Counter(frame_lab[s:e]).most_common(1)[0][0] for s, e in zip(bounds[:-1], bounds[1:])]


def spectral_change(x: np.ndarray, window: int = 3) -> np.ndarray:
    """Change score per frame t: ``|mean(x[t:t+w]) - mean(x[t-w:t])|`` (windows clipped at the
    edges; 0 at t = 0). Averaging ``w`` frames each side suppresses within-phone jitter that a
    one-frame difference turns into spurious peaks."""
    T = len(x)
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, 0, dtype=np.float64)])
    t = np.arange(1, T)
    lo, hi = np.maximum(0, t - window), np.minimum(T, t + window)
    right = (c[hi] - c[t]) / (hi - t)[:, None]
    left = (c[t] - c[lo]) / (t - lo)[:, None]
    return np.concatenate([[0.0], np.linalg.norm(right - left, axis=1)])


def spectral_change_boundaries(x: np.ndarray, min_len: int = 3, threshold: float = 0.0,
                               window: int = 3) -> np.ndarray:
    """Unsupervised boundaries at peaks of :func:`spectral_change` (no labels are used).

    A peak must be a local maximum over ``±min_len`` frames, lie ``min_len`` frames after the
    previous boundary, and exceed the utterance's median change by ``threshold`` std devs.
    """
    T = len(x)
    if T < 2 * min_len + 1:
        return np.asarray([0, T], dtype=np.int64)
    d = spectral_change(x, window)
    thr = np.median(d) + threshold * d.std()
    b = [0]
    for t in range(min_len, T - min_len + 1):
        lo, hi = max(0, t - min_len), min(T, t + min_len + 1)
        if d[t] >= thr and d[t] == d[lo:hi].max() and t - b[-1] >= min_len:
            b.append(t)
    b.append(T)
    return np.asarray(b, dtype=np.int64)


SEGMENT_ERRORS = ("jitter", "delete", "insert")


def perturb_boundaries(bounds: np.ndarray, error: str, amount: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Reference boundaries with one kind of segmenter error injected (a diagnostic: how much
    of the gap between oracle and unsupervised segments each error type explains).

    ``jitter``: every inner boundary moves by up to ``amount`` frames either way (uniform,
    integer), clipped so that every segment keeps >= 1 frame; ``delete``: each inner boundary
    is dropped with probability ``amount`` (two phones become one segment); ``insert``: each
    segment of >= 2 frames is split at its middle with probability ``amount``.
    """
    T = int(bounds[-1])
    inner = [int(b) for b in bounds[1:-1]]
    if error == "jitter":
        k = int(amount)
        moved, prev = [], 0
        for i, b in enumerate(inner):
            hi = (inner[i + 1] if i + 1 < len(inner) else T) - 1
            moved.append(min(max(b + int(rng.integers(-k, k + 1)), prev + 1), hi))
            prev = moved[-1]
        inner = moved
    elif error == "delete":
        inner = [b for b in inner if rng.random() >= amount]
    elif error == "insert":
        edges = [0] + inner + [T]
        splits = [(s + e) // 2 for s, e in zip(edges[:-1], edges[1:]) if e - s >= 2 and rng.random() < amount]
        inner = sorted(inner + splits)
    else:
        raise ValueError(f"segment error must be one of {', '.join(SEGMENT_ERRORS)}, got {error!r}")
    return np.asarray([0] + inner + [T], dtype=np.int64)


def boundary_f1(ref: np.ndarray, hyp: np.ndarray, tol: int = 2) -> tuple[int, int, int]:
    """(hits, #hyp, #ref) over inner boundaries, matching each ref at most once within ``tol``."""
    r, h = list(ref[1:-1]), list(hyp[1:-1])
    used = [False] * len(r)
    hits = 0
    j = 0
    for b in h:
        while j < len(r) and r[j] < b - tol:
            j += 1
        k = j
        while k < len(r) and r[k] <= b + tol:
            if not used[k]:
                used[k] = True
                hits += 1
                break
            k += 1
    return hits, len(h), len(r)


def pool_segments(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per segment: means of its three thirds (start/middle/end dynamics) + log duration."""
    out = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        seg = x[s:e]
        n = len(seg)
        cuts = [0, max(1, n // 3), max(1, (2 * n) // 3), n]
        parts = [seg[cuts[i]:max(cuts[i + 1], cuts[i] + 1)].mean(0) if cuts[i] < n else seg[-1]
                 for i in range(3)]
        out.append(np.concatenate(parts + [np.asarray([np.log(n)], dtype=x.dtype)]))
    return np.stack(out).astype(np.float32)
