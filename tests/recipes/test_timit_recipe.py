"""recipes/timit end to end (stages 0-5) on a tiny corpus in the official LDC layout
(:func:`tests.data.fake_corpora.make_fake_timit`): matched and unmatched LM text, the count
check failing cleanly, and the split/fold conventions reaching the results."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from tests.data.fake_corpora import make_fake_timit

ROOT = Path(__file__).resolve().parents[2]
COUNTS = {"train": {"speakers": 2, "utterances": 5}, "dev": {"speakers": 2, "utterances": 4},
          "test": {"speakers": 2, "utterances": 4}}


def _run(timit: Path, work: Path, counts: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = ["./run.sh", "--recipe", "timit", "--timit-dir", str(timit), "--work-dir", str(work),
           "--expected-counts", str(counts), "--nj", "1", "--num-units", "12", "--num-restarts", "1",
           "--restart-iters", "3", "--num-epochs", "1", "--lm-order", "2", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_timit_recipe_matched_and_unmatched(tmp_path, flite):
    timit = make_fake_timit(tmp_path / "ldc", audio="flite")
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps(COUNTS))
    work = tmp_path / "work"
    proc = _run(timit, work, counts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((work / "exp/lang_matched/results.json").read_text())["rows"]
    assert {r["tokens"] for r in rows} == {"oracle-segments", "unsupervised-segments"}
    assert {r["supervision"] for r in rows} == {"unsup", "sup", "lm-only"}
    for r in rows:
        assert math.isfinite(r["per_test"]) and r["per_test"] >= 0
    syms = (work / "data/lang_matched/phones.txt").read_text().split()[::2]
    assert len(syms) == 39 and "dx" in syms and "ao" not in syms  # TIMIT-39 scoring set
    info = json.loads((work / "data/corpus/info.json").read_text())
    assert info["count_check"] == "passed"
    # unmatched: an external word text, phonemized with CMUdict + G2P and folded to TIMIT-39
    text = tmp_path / "text.txt"
    text.write_text("she had your dark suit in greasy wash water all year\ndon't ask me to carry an oily rag\n" * 30)
    proc = _run(timit, work, counts, "--lm-text", str(text))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "exp/lang_unmatched/results.json").is_file()
    phones = (work / "data/lang_unmatched/lm_text_phones.txt").read_text().split()
    assert "ao" not in phones and "aa" in phones  # "all", "water": ao folds to aa


def test_count_mismatch_stops_stage_0(tmp_path):
    timit = make_fake_timit(tmp_path / "ldc", audio="noise")
    work = tmp_path / "work"
    proc = _run(timit, work, Path("default"), "--stage", "0", "--stop-stage", "0")
    assert proc.returncode != 0
    assert "test: utterances 4 != expected 192" in proc.stderr
    assert not (work / "data/corpus/info.json").exists()
