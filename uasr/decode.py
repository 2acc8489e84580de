"""Viterbi decoding over the LM x topology graph and phone error rates (kaldialign)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from kaldialign import align, edit_distance

from uasr.graph import Graph, viterbi


def decode(emissions: torch.Tensor, lengths: torch.Tensor, graph: Graph, lm_scale: float = 1.0,
           batch_size: int = 256) -> list[list[int]]:
    """Best label sequence per utterance with score ``lm_scale * log p_LM + log q``.

    Implemented as emissions / lm_scale over the unscaled graph (same argmax).
    """
    out: list[list[int]] = []
    for s in range(0, len(lengths), batch_size):
        em, L = emissions[s:s + batch_size], lengths[s:s + batch_size]
        em = em[:, :int(L.max())] / lm_scale
        res = viterbi(em, L, graph)
        out += res.labels
    return out


def error_counts(refs: list[list[str]], hyps: list[list[str]]) -> dict[str, int]:
    """Summed ins/del/sub/ref-length over utterances."""
    tot = {"ins": 0, "del": 0, "sub": 0, "ref": 0}
    for r, h in zip(refs, hyps):
        e = edit_distance(r, h)
        for k in ("ins", "del", "sub"):
            tot[k] += e[k]
        tot["ref"] += len(r)
    tot["err"] = tot["ins"] + tot["del"] + tot["sub"]
    return tot


def per(refs: list[list[str]], hyps: list[list[str]]) -> float:
    """Phone error rate in percent."""
    c = error_counts(refs, hyps)
    return 100.0 * c["err"] / max(c["ref"], 1)


def write_results(out_dir: Path, name: str, ids: list[str], refs: list[list[str]],
                  hyps: list[list[str]], metric: str = "PER") -> dict:
    """``recogs-<name>.txt`` (ref/hyp per utterance) and ``errs-<name>.txt`` (icefall style,
    first line ``%PER p [ err / ref, ins, del, sub ]``), written atomically. ``metric`` names
    the rate in that line and in the returned dict (``"WER"`` -> ``"%WER"``, key ``"wer"``)."""
    c = error_counts(refs, hyps)
    p = 100.0 * c["err"] / max(c["ref"], 1)
    rec = "".join(f"{u}:\tref={' '.join(r)}\n{u}:\thyp={' '.join(h)}\n" for u, r, h in zip(ids, refs, hyps))
    lines = [f"%{metric} {p:.2f} [ {c['err']} / {c['ref']}, {c['ins']} ins, {c['del']} del, {c['sub']} sub ]",
             "", f"{metric}_UTT_ALIGNMENTS (ref->hyp, * = empty):"]
    for u, r, h in zip(ids, refs, hyps):
        ali = align(r, h, "*")
        lines.append(f"{u}:\t" + " ".join(a if a == b else f"({a}->{b})" for a, b in ali))
    for fname, text in ((f"recogs-{name}.txt", rec), (f"errs-{name}.txt", "\n".join(lines) + "\n")):
        tmp = out_dir / (fname + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out_dir / fname)
    return {metric.lower(): round(p, 2), **c}
