"""recipes/librispeech end to end (stages 0-5) on a tiny corpus in the official layout (FLAC +
``*.trans.txt``, LM corpus file, official-style lexicon): PER from transcripts through the
lexicon, and word decoding with WER."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from tests.data.fake_corpora import make_fake_librispeech

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_librispeech_recipe_end_to_end(tmp_path, flite):
    fake = make_fake_librispeech(tmp_path / "ls", parts=("train-clean-5", "dev-clean-2", "test-clean"),
                                 speakers_per_part=2, utts=4, audio="flite", lexicon=True)
    work = tmp_path / "work"
    cmd = ["./run.sh", "--recipe", "librispeech", "--corpus-dir", str(tmp_path / "ls"), "--work-dir", str(work),
           "--nj", "1", "--num-units", "12", "--num-restarts", "1", "--restart-iters", "3", "--num-epochs", "1",
           "--lm-order", "2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((work / "exp/results.json").read_text())["rows"]
    assert {r["supervision"] for r in rows} == {"unsup", "sup", "lm-only"}
    for r in rows:
        for key in ("per_dev", "per_test", "wer_dev", "wer_test"):
            assert math.isfinite(r[key]) and r[key] >= 0
    # the official lexicon takes precedence over CMUdict ("the" -> dh ah, its first entry)
    lex = dict(line.split(" ", 1) for line in (work / "data/lang/lexicon.txt").read_text().splitlines())
    assert lex["the"] == "dh ah"
    # word references are the lower-cased transcripts
    first_id, first_text = next(iter(fake["transcripts"]["test-clean"].items()))
    recogs = (work / "exp/r3_unsup-seg_table_sup/recogs-words-test.txt").read_text()
    assert f"ref={first_text.lower()}" in recogs
    errs = (work / "exp/r3_unsup-seg_table_sup/errs-words-test.txt").read_text()
    assert errs.startswith("%WER")
