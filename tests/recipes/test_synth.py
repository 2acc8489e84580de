"""End to end: ``./run.sh --size tiny --stage 0 --stop-stage 5`` (the CI-sized default recipe).

Stages are idempotent, so a second run reuses outputs; set UASR_SYNTH_FORCE=1 to redo all.
"""

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXP = ROOT / "recipes/synth/exp/tiny"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("flite") is None and os.geteuid() != 0,
                    reason="flite missing and cannot apt-get install it")
def test_tiny_recipe_end_to_end():
    cmd = ["./run.sh", "--size", "tiny", "--stage", "0", "--stop-stage", "5"]
    if os.environ.get("UASR_SYNTH_FORCE"):
        cmd += ["--force", "true"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for f in ("results.json", "RESULTS.md", "per.png"):
        assert (EXP / f).is_file(), f
    rows = json.loads((EXP / "results.json").read_text())["rows"]
    assert {r["tokens"] for r in rows} >= {"oracle-units", "oracle-segments", "unsupervised-segments", "frames"}
    assert {r["supervision"] for r in rows} >= {"unsup", "sup", "lm-only"}
    assert any(r["emission"] == "ctc-nn" and r["tokens"] == "frames" for r in rows)  # the CTC baseline row
    for r in rows:
        for key in ("system", "tokens", "emission", "supervision", "lm_order", "per_dev", "per_test",
                    "train_seconds", "command"):
            assert key in r
        for split in ("dev", "test"):
            p = r[f"per_{split}"]
            assert math.isfinite(p) and p >= 0
            first = (EXP / r["system"] / f"errs-{split}.txt").read_text().splitlines()[0]
            m = re.match(r"%PER ([\d.]+) \[ (\d+) / (\d+),", first)
            assert m, first
            assert abs(float(m.group(1)) - p) < 0.01
            assert abs(100 * int(m.group(2)) / int(m.group(3)) - p) < 0.01
    # the oracle-unit rung must work (one token per phone with perfect units)
    r1 = [r for r in rows if r["tokens"] == "oracle-units"][0]
    floor = [r for r in rows if r["supervision"] == "lm-only" and r["tokens"] == "oracle-segments"][0]
    assert r1["per_test"] < 0.5 * floor["per_test"]
    # stage 1 refuses to reuse tokens built with another --speaker-norm (one line, nothing redone)
    tokens = ROOT / "recipes/synth/data/tokens_tiny"
    assert (tokens / "speaker_norm.txt").read_text().strip() == "cmvn"
    before = (tokens / "unsup/train.pt").stat().st_mtime_ns
    proc = subprocess.run(["./run.sh", "--size", "tiny", "--stage", "1", "--stop-stage", "1",
                           "--speaker-norm", "whiten"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode != 0
    assert "--speaker-norm cmvn', not '--feature fbank" in proc.stderr and "--speaker-norm whiten'" in proc.stderr
    assert "--force true" in proc.stderr
    assert (tokens / "unsup/train.pt").stat().st_mtime_ns == before


def test_stage_before_inputs_fails_with_one_line(tmp_path):
    proc = subprocess.run(["./run.sh", "--size", "large", "--stage", "3", "--stop-stage", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    if (ROOT / "recipes/synth/data/tokens_large").exists():
        pytest.skip("a large-size run exists here")
    assert proc.returncode != 0
    assert "run stage 1 first" in proc.stderr
