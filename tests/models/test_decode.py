import re

import torch

from uasr.decode import decode, error_counts, per, write_results
from uasr.graph import loop, ngram_graph
from uasr.lm.ngram import train_ngram


def test_per_and_errs_file_agree(tmp_path):
    refs = [["a", "b", "c"], ["d", "e"]]
    hyps = [["a", "x", "c", "y"], ["e"]]
    c = error_counts(refs, hyps)
    assert (c["ins"], c["del"], c["sub"], c["ref"]) == (1, 1, 1, 5)
    assert per(refs, hyps) == 60.0
    res = write_results(tmp_path, "dev", ["u1", "u2"], refs, hyps)
    first = (tmp_path / "errs-dev.txt").read_text().splitlines()[0]
    m = re.match(r"%PER ([\d.]+) \[ (\d+) / (\d+),", first)
    assert float(m.group(1)) == res["per"] == 60.0 and m.group(2) == "3" and m.group(3) == "5"
    assert "ref=a b c" in (tmp_path / "recogs-dev.txt").read_text()


def test_viterbi_decode_follows_emissions_and_lm_scale():
    lm = train_ngram([["a", "b"], ["a", "b"], ["b", "a"]], 2)
    g = ngram_graph(lm, ["a", "b"], loop(stay_prob=0.5))
    em = torch.log(torch.tensor([[[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]]]))
    out = decode(em, torch.tensor([4]), g, lm_scale=1.0)
    assert out == [[0, 1]]
