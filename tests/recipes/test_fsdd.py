"""recipes/fsdd: the FSDD digit-string builder (composition, tiling alignments, speaker split,
LM text, lang, errors) and an end-to-end run at --size tiny (stages 0-5) in a temp work dir.

The end-to-end run uses the shared FSDD copy when this machine has it, otherwise a synthetic
corpus in FSDD's layout (:func:`make_fake_fsdd`), so the pipeline is exercised everywhere.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from uasr.data.fsdd import (DIGITS, FSDD_RATE, RATE, DigitLM, build_corpus, scan_fsdd, split_takes,
                            write_lang)

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "fsdd"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def make_fake_fsdd(root: Path, takes: int = 3, speakers=SPEAKERS) -> Path:
    """An FSDD-layout corpus of short two-tone 'digits' (8 kHz int16 wav)."""
    rec = root / "recordings"
    rec.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for si, s in enumerate(speakers):
        for d in range(10):
            for t in range(takes):
                n = int(FSDD_RATE * (0.2 + 0.02 * d + 0.01 * t))
                tt = np.arange(n) / FSDD_RATE
                x = 0.3 * np.sin(2 * np.pi * (300 + 80 * d + 7 * si) * tt) \
                    + 0.2 * np.sin(2 * np.pi * (1200 + 150 * d) * tt) + 0.01 * rng.standard_normal(n)
                sf.write(rec / f"{d}_{s}_{t}.wav", x.astype(np.float32), FSDD_RATE, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("fsdd")
    fsdd = make_fake_fsdd(root / "fsdd")
    info = build_corpus(fsdd, root / "corpus", num_strings={"train": 8, "dev": 2, "test": 4}, lm_sentences=300,
                        test_speakers=["nicolas", "theo"], dev_takes=1, seed=3, alpha=0.2, min_len=10,
                        max_len=12, pause=(0.1, 0.3), max_isolated={"train": 20, "dev": 0, "test": 0},
                        progress=False)
    return root / "corpus", info


def _sups(corpus_dir: Path, kind: str, split: str):
    from lhotse import SupervisionSet
    return list(SupervisionSet.from_file(corpus_dir / kind / "manifests" / f"synth_supervisions_{split}.jsonl.gz"))


def _recs(corpus_dir: Path, kind: str, split: str):
    from lhotse import RecordingSet
    return {r.id: r for r in RecordingSet.from_file(corpus_dir / kind / "manifests" / f"synth_recordings_{split}.jsonl.gz")}


def test_strings_are_one_speaker_and_match_their_takes(corpus):
    cdir, info = corpus
    for split in ("train", "dev", "test"):
        sups = _sups(cdir, "strings", split)
        assert len(sups) == info["strings"][split]["utterances"]
        for s in sups:
            words = s.text.split()
            assert 10 <= len(words) <= 12
            takes = s.custom["takes"]
            assert [DIGITS[int(t.split("_")[0])] for t in takes] == words
            assert {t.split("_")[1] for t in takes} == {s.speaker}


def test_alignments_tile_the_audio_and_contain_each_recording(corpus, tmp_path):
    cdir, _ = corpus
    for kind in ("strings", "isolated"):
        recs = _recs(cdir, kind, "train")
        for s in _sups(cdir, kind, "train"):
            rec = recs[s.recording_id]
            assert rec.sampling_rate == RATE and Path(rec.sources[0].source).is_file()
            ali = s.alignment["phone"]
            assert [a.symbol for a in ali] == s.text.split()
            assert ali[0].start == 0.0
            for a, b in zip(ali, ali[1:]):
                assert abs(a.start + a.duration - b.start) < 2e-4
            assert abs(ali[-1].start + ali[-1].duration - rec.duration) < 2e-4
            for a, (lo, hi) in zip(ali, s.custom.get("spans", [])):
                assert a.start - 1e-4 <= lo < hi <= a.start + a.duration + 1e-4
            if kind == "strings":  # each span is exactly its 8 kHz recording
                for t, (lo, hi) in zip(s.custom["takes"], s.custom["spans"]):
                    d = sf.info(cdir.parent / "fsdd" / "recordings" / f"{t}.wav").duration
                    assert abs((hi - lo) - d) < 2e-3


def test_speaker_split_is_disjoint(corpus):
    cdir, info = corpus
    for kind in ("strings", "isolated"):
        train = {s.speaker for s in _sups(cdir, kind, "train")}
        held = {s.speaker for sp in ("dev", "test") for s in _sups(cdir, kind, sp)}
        assert len(train) == 4 and held == {"nicolas", "theo"} and not train & held
    dev = {t for s in _sups(cdir, "isolated", "dev") for t in s.custom["takes"]}
    test = {t for s in _sups(cdir, "isolated", "test") for t in s.custom["takes"]}
    assert dev and test and not dev & test


def test_lm_text_is_disjoint_and_isolated_is_single_digits(corpus):
    cdir, _ = corpus
    spoken = {s.text for sp in ("train", "dev", "test") for s in _sups(cdir, "strings", sp)}
    lm = (cdir / "strings" / "lm_text.txt").read_text().splitlines()
    assert len(lm) == 300 and not spoken & set(lm)
    iso = (cdir / "isolated" / "lm_text.txt").read_text().splitlines()
    assert all(len(line.split()) == 1 and line in DIGITS for line in iso)
    assert all(len(s.text.split()) == 1 for s in _sups(cdir, "isolated", "test"))


def test_condition_2_holds_for_strings_only(corpus):
    _, info = corpus
    assert info["pc_strings"]["full_column_rank"] and info["pc_strings"]["rank"] == 10
    assert info["pc_isolated"]["rank"] == 1 and not info["pc_isolated"]["full_column_rank"]
    lm = DigitLM.random_sparse(3, 0.2, 10, 12, candidates=4)
    P = lm.position_unigrams(10)
    np.testing.assert_allclose(P.sum(1), 1.0)
    assert np.linalg.matrix_rank(P) == 10


def test_lang_symbols_and_ngram_files(corpus, tmp_path):
    cdir, _ = corpus
    info = write_lang(cdir / "strings" / "lm_text.txt", tmp_path / "lang", [1, 2, 3], 10)
    assert (tmp_path / "lang" / "phones.txt").read_text().split()[:4] == ["zero", "0", "one", "1"]
    from uasr.lm.arpa import read_arpa
    for n in (1, 2, 3):
        assert read_arpa(tmp_path / "lang" / f"lm_{n}gram.arpa").order == n
    assert info["pc"]["rank"] == 10 and json.loads((tmp_path / "lang" / "lm.json").read_text())["ppl"]
    bad = tmp_path / "bad.txt"
    bad.write_text("one two banana\n")
    with pytest.raises(ValueError, match="non-digit words"):
        write_lang(bad, tmp_path / "lang2", [2], 10)


def test_missing_corpus_is_a_one_line_error(tmp_path, capsys):
    from uasr.bin import prepare_fsdd
    with pytest.raises(FileNotFoundError, match="--fsdd-dir"):
        scan_fsdd(tmp_path / "nope")
    rc = prepare_fsdd.main(["corpus", "--fsdd-dir", str(tmp_path / "nope"), "--out-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and str(tmp_path / "nope") in err and "--fsdd-dir" in err
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.partial").exists()


def test_split_rejects_unknown_test_speaker(tmp_path):
    takes = scan_fsdd(make_fake_fsdd(tmp_path / "f", takes=2))
    with pytest.raises(ValueError, match="--test-speakers"):
        split_takes(takes, ["bob"], 1)
    s = split_takes(takes, ["theo"], 1)
    assert {t.speaker for t in s["dev"]} == {"theo"} and all(t.take == 0 for t in s["dev"])


@pytest.mark.skipif(not (REAL / "recordings").is_dir(), reason="the shared FSDD copy is not on this machine")
def test_real_fsdd_layout():
    takes = scan_fsdd(REAL)
    assert len(takes) == 3000 and len({t.speaker for t in takes}) == 6
    s = split_takes(takes, ["nicolas", "theo"], 10)
    assert (len(s["train"]), len(s["dev"]), len(s["test"])) == (2000, 200, 800)



def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "run.sh"), "--recipe", "fsdd", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_missing_fsdd_dir_is_named(tmp_path):
    res = _run("--stage", "0", "--stop-stage", "0", "--work-dir", str(tmp_path), "--fsdd-dir", str(tmp_path / "nope"))
    assert res.returncode == 1
    assert f"{tmp_path / 'nope'} is missing" in res.stderr and "--fsdd-dir" in res.stderr
    res = _run("--stage", "3", "--stop-stage", "3", "--work-dir", str(tmp_path), "--size", "tiny")
    assert res.returncode == 1 and "run stage 1 first" in res.stderr


@pytest.mark.slow
def test_tiny_end_to_end(tmp_path):
    fsdd = REAL if (REAL / "recordings").is_dir() else make_fake_fsdd(tmp_path / "fsdd", takes=12)
    t0 = time.time()
    res = _run("--size", "tiny", "--work-dir", str(tmp_path / "w"), "--fsdd-dir", str(fsdd))
    assert res.returncode == 0, res.stderr[-3000:]
    assert time.time() - t0 < 240  # CI budget (about 100 s on 2 shared cores)
    exp = tmp_path / "w" / "exp" / "tiny"
    for f in ("RESULTS.md", "results.json", "der.png"):
        assert (exp / f).is_file()
    assert not (tmp_path / "w" / "RESULTS.md").exists()  # tiny never writes the committed results
    res_json = json.loads((exp / "results.json").read_text())
    rows = res_json["rows"]
    assert {r["condition"] for r in rows} == {"strings", "isolated"}
    assert {r["supervision"] for r in rows} == {"unsup", "sup", "lm-only"}
    md = (exp / "RESULTS.md").read_text()
    for r in rows:
        for k in ("der_dev", "der_test"):
            assert math.isfinite(r[k]) and r[k] >= 0
        d = exp / r["condition"] / r["system"]
        dec = json.loads((d / "decode.json").read_text())["test"]
        assert dec["err"] == dec["ins"] + dec["del"] + dec["sub"]
        assert abs(100 * dec["err"] / dec["ref"] - r["der_test"]) < 0.01
        first = (d / "errs-test.txt").read_text().splitlines()[0]
        assert float(re.match(r"%PER ([\d.]+)", first)[1]) == pytest.approx(r["der_test"], abs=0.01)
        assert f"{r['der_test']:.2f}" in md
    # isolated test utterances hold one digit each, strings 10-12
    iso = [r for r in rows if r["condition"] == "isolated"][0]
    dec = json.loads((exp / "isolated" / iso["system"] / "decode.json").read_text())["test"]
    n_iso = res_json["corpus"]["isolated"]["test"]["utterances"]
    assert dec["ref"] == n_iso
    # idempotent: a second run skips every stage's work
    res = _run("--size", "tiny", "--work-dir", str(tmp_path / "w"), "--fsdd-dir", str(fsdd), "--stop-stage", "2")
    assert res.returncode == 0 and res.stderr.count("skipping") >= 3
