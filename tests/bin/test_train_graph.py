"""The training graph of ``uasr train``: ``--lm-scale`` scales the LM's log-probabilities only."""

import math
from pathlib import Path

import pytest
import torch

from uasr.bin.train import build_graph
from uasr.lm.arpa import write_arpa
from uasr.lm.ngram import train_ngram


@pytest.fixture()
def lang(tmp_path: Path) -> Path:
    text = [["a", "b", "c"], ["b", "a"], ["c", "c", "a", "b"], ["a", "a", "c"]]
    write_arpa(train_ngram(text, 2, vocab=["a", "b", "c"]), tmp_path / "lm_2gram.arpa")
    return tmp_path


SYMBOLS = {"a": 1, "b": 2, "c": 3}


def test_one_to_one_weights_scale(lang: Path):
    g1 = build_graph(lang, 2, SYMBOLS, "one_to_one", 0.5)
    g = build_graph(lang, 2, SYMBOLS, "one_to_one", 0.5, lm_scale=0.6)
    assert torch.equal(g.src, g1.src) and torch.equal(g.dst, g1.dst)
    assert torch.allclose(g.weights, 0.6 * g1.weights)
    for new, old in ((g.init, g1.init), (g.final, g1.final)):
        fin = torch.isfinite(old)
        assert torch.equal(torch.isfinite(new), fin)
        assert torch.allclose(new[fin], 0.6 * old[fin])


def test_loop_stay_weights_are_not_scaled(lang: Path):
    stay = 0.3
    g1 = build_graph(lang, 2, SYMBOLS, "loop", stay)
    g = build_graph(lang, 2, SYMBOLS, "loop", stay, lm_scale=0.5)
    new = g1.new_token
    assert torch.allclose(g.weights[~new], g1.weights[~new])
    assert torch.allclose(g.weights[~new], torch.full_like(g.weights[~new], math.log(stay)))
    leave = math.log(1 - stay)
    assert torch.allclose(g.weights[new] - leave, 0.5 * (g1.weights[new] - leave))
