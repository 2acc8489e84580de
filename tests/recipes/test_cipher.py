"""Cipher recipe: the decipherment backends agree with the graph engine, and the tiny recipe
runs end to end (``./run.sh --recipe cipher --size tiny``)."""

import json
import math
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from uasr.bin.decipher import DenseTrigram, Preselect, batches
from uasr.graph import ngram_graph, one_to_one, total_score, viterbi
from uasr.lang import ARPABET39
from uasr.lm import train_ngram

ROOT = Path(__file__).resolve().parents[2]


def phone_lm(order: int):
    rng = random.Random(order)
    P = list(ARPABET39)
    return train_ngram([[rng.choice(P[:12] if i % 3 else P) for i in range(rng.randint(2, 9))]
                        for _ in range(300)], order, vocab=P)


@pytest.mark.parametrize("order", [2, 3])
def test_dense_and_preselect_match_the_graph_engine(order):
    torch.manual_seed(order)
    lm = phone_lm(order)
    C, K = len(ARPABET39), 20
    logq = torch.randn(C, K).log_softmax(1)
    sents = [torch.randint(0, K, (n,)).tolist() for n in (1, 4, 7, 2)]
    (x, lengths), = batches(sents, 10 ** 6)
    em = logq.t()[x].double()
    graph = ngram_graph(lm, list(ARPABET39), one_to_one())
    ref_em = em.clone().requires_grad_()
    ref = total_score(ref_em, lengths, graph, dtype=torch.float64)
    ref_post, = torch.autograd.grad(ref.sum(), ref_em)
    ref_best = [a.tolist() for a in viterbi(em, lengths, graph).alignments]

    dense = DenseTrigram(lm, ARPABET39)
    z, post = dense(em.float(), lengths)
    assert torch.allclose(z.double(), ref, atol=1e-4)
    assert torch.allclose(post.double(), ref_post, atol=1e-5)
    assert dense.viterbi(em.float(), lengths) == ref_best

    full = Preselect(lm, ARPABET39, logq, m=C)  # every phone a candidate: exact
    z, post = full.forward_backward(em.float(), lengths, x)
    assert torch.allclose(z.double(), ref, atol=1e-4)
    assert torch.allclose(post.double(), ref_post, atol=1e-5)
    assert full.viterbi(em.float(), lengths, x) == ref_best


@pytest.mark.slow
def test_tiny_recipe_end_to_end(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    t0 = time.time()
    proc = subprocess.run(["./run.sh", "--recipe", "cipher", "--size", "tiny", "--data",
                           str(data), "--exp", str(exp)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    seconds = time.time() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    for f in ("results.json", "RESULTS.md", "ser_vs_size.png"):
        assert (exp / f).is_file(), f
    rows = json.loads((exp / "results.json").read_text())["rows"]
    assert {(r["text"], r["optimizer"], r["lm_order"]) for r in rows} == \
        {(t, o, n) for t in ("matched", "unmatched") for o in ("em", "adam") for n in (2, 3)}
    for r in rows:
        for key in ("lm_order", "symbols", "optimizer", "text", "ser", "seconds", "command"):
            assert key in r
        assert 0.0 <= r["ser"] <= 1.0 and math.isfinite(r["seconds"])
    # a trigram prior deciphers even 4000 symbols well (measured ~1-5 % SER)
    best = min(r["ser"] for r in rows if r["lm_order"] == 3 and r["symbols"] == 4000)
    assert best < 0.2
    # stages are idempotent: a second run skips everything and is quick
    again = subprocess.run(["./run.sh", "--recipe", "cipher", "--size", "tiny", "--data",
                            str(data), "--exp", str(exp), "--stage", "3", "--stop-stage", "4"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "trained" in again.stderr
    print(f"tiny cipher recipe: {seconds:.0f} s")
