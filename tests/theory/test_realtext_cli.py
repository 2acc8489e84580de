"""Real-text helpers on toy input, and the `uasr simulate` CLI (small, skip logic, errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from uasr.bin import simulate
from uasr.theory.pc import chain_from_table, pc_from_chain
from uasr.theory.realtext import addk_table, empirical_pc, pc_stats, phonemize

LEX = {"the": [["DH", "AH0"]], "lord": [["L", "AO1", "R", "D"]], "god": [["G", "AA1", "D"]]}


def test_phonemize_strips_stress_and_counts_oov():
    sents, stats = phonemize(["The LORD God", "And God saith"], LEX)
    assert sents == [["DH", "AH", "L", "AO", "R", "D", "G", "AA", "D"], ["G", "AA", "D"]]
    assert stats["oov_tokens"] == 2 and stats["oov_types"] == 2 and stats["word_tokens"] == 6


def test_addk_table_and_empirical_pc():
    phones = ["a", "b", "c"]
    sents = [["a", "b", "c", "a"], ["b", "b", "a"], ["c", "a"]]
    t = addk_table(sents, phones, 3, k=0.1)
    np.testing.assert_allclose(t.sum(-1), 1.0)
    P = pc_from_chain(chain_from_table(t), 4)
    assert P.shape == (4, 3) and np.allclose(P.sum(1), 1.0)
    E, used = empirical_pc(sents, phones, 3)
    assert used == 2 and E[0].tolist() == [0.5, 0.5, 0.0]
    with pytest.raises(ValueError, match="no sentence has 9 phones"):
        empirical_pc(sents, phones, 9)
    assert pc_stats(E)["rank"] == 3


def test_cli_bound_writes_skips_and_redoes(tmp_path, capsys):
    args = ["bound", "--trials", "200", "--exp-dir", str(tmp_path)]
    assert simulate.main(args) == 0
    res = json.loads((tmp_path / "bound.json").read_text())
    assert res["trials"] == 200 and res["command"].startswith("uasr simulate bound")
    assert all(c["violations"] == 0 for c in res["checks"])
    assert simulate.main(args) == 0
    assert "skipping" in capsys.readouterr().out
    assert simulate.main(args + ["--force"]) == 0


def test_cli_bad_input_gives_one_line_errors(tmp_path):
    with pytest.raises(SystemExit, match="use --N >= --C"):
        simulate.main(["bound", "--N", "2", "--exp-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="does not exist"):
        simulate.main(["report", "--exp-dir", str(tmp_path / "nope")])
    with pytest.raises(SystemExit, match="too large to enumerate"):
        simulate.main(["controls", "--C", "9", "--X", "9", "--N", "6", "--exp-dir", str(tmp_path)])
