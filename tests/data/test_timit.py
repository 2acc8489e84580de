"""TIMIT stage 0 (``uasr prepare-timit``) on a fake corpus in the official layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.data.fake_corpora import FAKE_TIMIT_SPEAKERS, make_fake_timit
from uasr.bin.prepare_timit import main
from uasr.data.timit import (EXPECTED_COUNTS, check_counts, find_timit_root, fold_segments,
                             kaldi_phone_count, kaldi_speakers, lm_phones, read_phn, scan_timit,
                             split_timit)
from uasr.lang.phones import SIL, timit_map

# The fake corpus's splits, by hand: SA sentences out, mzzz0 (TEST, neither list) out.
IDS = {
    "train": {"fcjf0-si1027", "fcjf0-sx37", "marc0-si1188", "marc0-sx108", "marc0-sx288"},
    "dev": {"fadg0-si1279", "fadg0-sx109", "mbdg0-si2093", "mbdg0-sx183"},
    "test": {"mdab0-si1039", "mdab0-sx229", "felc0-si756", "felc0-sx126"},
}
SILENT61 = {"h#", "pau", "epi", "bcl", "dcl", "gcl", "pcl", "tcl", "kcl"}  # fold to sil (39)
SMALL = {"train/dr1/fcjf0": ["sa1", "si1027"], "test/dr4/fadg0": ["sa2", "sx109"],
         "test/dr1/mdab0": ["si1039"]}


def _phn_files(corpus: Path, ids: set[str]) -> list[Path]:
    out = []
    for p in corpus.rglob("*"):
        if p.suffix.lower() == ".phn" and f"{p.parent.name.lower()}-{p.stem.lower()}" in ids:
            out.append(p)
    return out


def _labels(path: Path) -> list[str]:
    return [line.split()[2] for line in path.read_text().splitlines() if line.strip()]


def _run(*args) -> int:
    return main([str(a) for a in args])


def _errors(err: str) -> list[str]:
    """The CLI's error lines (stderr also carries tqdm's progress bars)."""
    return [line for line in err.splitlines() if line.startswith("prepare-timit:")]


@pytest.fixture(scope="module")
def timit(tmp_path_factory):
    """Fake corpus (flite speech when installed) inside a TIMIT/ folder, prepared once with
    expected counts computed here from the .PHN files."""
    root = tmp_path_factory.mktemp("timit")
    corpus = make_fake_timit(root / "ldc", subdir="TIMIT")
    expected = {}
    for split, ids in IDS.items():
        labels = [lab for f in _phn_files(corpus, ids) for lab in _labels(f)]
        expected[split] = {"speakers": len({i.split("-")[0] for i in ids}), "utterances": len(ids),
                           "kaldi_phones": sum(lab != "q" for lab in labels),
                           "phones": sum(lab not in SILENT61 and lab != "q" for lab in labels)}
    exp_file = root / "expected.json"
    exp_file.write_text(json.dumps(expected))
    out = root / "out"
    assert _run("--timit-dir", root / "ldc", "--out-dir", out, "--expected-counts", exp_file) == 0
    return {"root": root, "corpus": corpus, "out": out, "expected": expected, "exp_file": exp_file}


def test_fake_speakers_cover_every_case():
    dev, test = kaldi_speakers()
    assert len(dev) == 50 and len(test) == 24 and not dev & test
    spk = {k.split("/")[2]: k.split("/")[0] for k in FAKE_TIMIT_SPEAKERS}
    assert {"fadg0", "mbdg0"} <= dev and {"mdab0", "felc0"} <= test
    assert spk["mzzz0"] == "test" and "mzzz0" not in dev | test
    assert all({"sa1", "sa2"} <= set(s) for s in FAKE_TIMIT_SPEAKERS.values())
    assert sum(map(len, FAKE_TIMIT_SPEAKERS.values())) <= 40


def test_layout_and_splits(timit):
    corpus = timit["corpus"]
    assert (corpus / "TRAIN" / "DR1" / "FCJF0" / "SA1.WAV").is_file()
    for ext in (".PHN", ".WRD", ".TXT"):
        assert (corpus / "TEST" / "DR1" / "MDAB0" / f"SI1039{ext}").is_file()
    assert open(corpus / "TRAIN" / "DR1" / "FCJF0" / "SA1.WAV", "rb").read(7) == b"NIST_1A"
    assert find_timit_root(timit["root"] / "ldc") == corpus
    utts = scan_timit(corpus)
    assert len(utts) == sum(map(len, FAKE_TIMIT_SPEAKERS.values()))
    splits = split_timit(utts)
    assert {s: {u.id for u in v} for s, v in splits.items()} == IDS
    assert not any(u.sentence.startswith("sa") for v in splits.values() for u in v)


def test_counts_of_fake_corpus(timit):
    info = json.loads((timit["out"] / "info.json").read_text())
    assert info["count_check"] == "passed" and info["num_phones"] == 39
    assert info["timit_dir"] == str(timit["corpus"].resolve())
    for split, want in timit["expected"].items():
        have = info["counts"][split]
        assert {k: have[k] for k in want} == want
        # merged sil: at most the Kaldi count, at least the scored phones + the two h#
        assert have["phones"] + 2 * have["utterances"] <= have["phones_sil"] <= have["kaldi_phones"]


def test_manifests_load_and_alignments_cover_audio(timit):
    from lhotse import load_manifest

    man = timit["out"] / "manifests"
    allowed = set(timit_map(39).values()) - {""}
    for split, ids in IDS.items():
        recs = load_manifest(man / f"timit_recordings_{split}.jsonl.gz")
        sups = load_manifest(man / f"timit_supervisions_{split}.jsonl.gz")
        assert set(recs.ids) == ids and set(sups.ids) == ids
        for sup in sups:
            rec = recs[sup.recording_id]
            spk, sent = sup.id.split("-")
            assert sup.speaker == spk and rec.sampling_rate == 16000
            assert sup.start == 0 and abs(sup.duration - rec.duration) < 1e-6
            assert sup.custom["gender"] == spk[0] and sup.custom["dialect"].startswith("dr")
            txt = next(f for f in Path(rec.sources[0].source).parent.iterdir()
                       if f.name.lower() == f"{sent}.txt").read_text().split()
            assert int(txt[1]) == rec.num_samples  # .TXT: 0 <num_samples> Sentence.
            assert sup.text == sup.text.lower() and not set(sup.text) - set("abcdefghijklmnopqrstuvwxyz' ")
            ali = sup.alignment["phone"]
            assert ali[0].start == pytest.approx(0, abs=1e-6)
            assert abs(ali[-1].end - rec.duration) <= 0.01  # covers the recording within a frame
            for a, b in zip(ali, ali[1:]):
                assert b.start == pytest.approx(a.end, abs=1e-5)
                assert not (a.symbol == SIL and b.symbol == SIL)
            assert {a.symbol for a in ali} <= allowed and ali[0].symbol == SIL == ali[-1].symbol
        audio = recs[sorted(ids)[0]].load_audio()
        assert audio.shape[0] == 1 and audio.shape[1] > 1000


def test_lm_text_matched(timit):
    from lhotse import load_manifest

    out = timit["out"]
    assert not (out / "lm_text.txt").exists()
    lines = (out / "lm_text_phones.txt").read_text().splitlines()
    sups = sorted(load_manifest(out / "manifests" / "timit_supervisions_train.jsonl.gz"),
                  key=lambda s: s.id)
    assert len(lines) == len(IDS["train"]) == len(sups)
    for line, sup in zip(lines, sups):
        phones = line.split()
        assert phones == lm_phones([a.symbol for a in sup.alignment["phone"]])
        assert phones[0] == SIL == phones[-1] and SIL not in phones[1:-1]
    info = json.loads((out / "info.json").read_text())
    assert info["lm_text"] == {"mode": "matched", "file": "lm_text_phones.txt", "lines": len(lines)}


def test_fold_hand_written_phn(tmp_path):
    phn = tmp_path / "SX1.PHN"
    phn.write_text("0 3000 h#\n3000 3400 q\n3400 4600 ix\n4600 5200 tcl\n5200 5800 t\n5800 6400 ax-h\n"
                   "6400 7000 pau\n7000 7300 epi\n7300 7800 bcl\n7800 8200 b\n8200 9000 ao\n"
                   "9000 9300 dx\n9300 10000 zh\n10000 10500 q\n10500 11000 en\n11000 11500 nx\n"
                   "11500 12000 hv\n12000 13000 h#\n")
    segs = read_phn(phn)
    assert len(segs) == 18 and segs[1] == (3000, 3400, "q")
    assert fold_segments(segs, 39) == [
        (0, 3400, "sil"),      # h# + the q after it
        (3400, 4600, "ih"),    # ix
        (4600, 5200, "sil"),   # tcl: a closure folds to sil ...
        (5200, 5800, "t"),     # ... and the release stays: "sil t"
        (5800, 6400, "ah"),    # ax-h
        (6400, 7800, "sil"),   # pau + epi + bcl merge into one sil
        (7800, 8200, "b"),
        (8200, 9000, "aa"),    # ao
        (9000, 9300, "dx"),
        (9300, 10500, "sh"),   # zh, + the q after it
        (10500, 11000, "n"),   # en
        (11000, 11500, "n"),   # nx: repeated non-sil symbols stay separate
        (11500, 12000, "hh"),  # hv
        (12000, 13000, "sil"),
    ]
    assert kaldi_phone_count(segs) == 16  # Kaldi: q deleted, sil counted, nothing merged
    assert lm_phones([p for _, _, p in fold_segments(segs)]) == \
        "sil ih t ah b aa dx sh n n hh sil".split()
    assert fold_segments([(0, 100, "q"), (100, 200, "q"), (200, 900, "ae"), (900, 950, "h#")]) == \
        [(0, 900, "ae"), (900, 950, "sil")]  # a leading q goes to the next phone
    # 48 phones: closures and epi stay phones, only h#/pau become sil
    assert [p for _, _, p in fold_segments(segs, 48)] == \
        "sil ix cl t ax sil epi vcl b ao dx zh en n hh sil".split()
    with pytest.raises(ValueError, match="'xx' is not a TIMIT-61 phone"):
        fold_segments([(0, 10, "xx")])
    bad = tmp_path / "BAD.PHN"
    bad.write_text("0 10 h#\n10 x\n")
    with pytest.raises(ValueError, match=r"BAD\.PHN:2"):
        read_phn(bad)


def test_check_counts():
    counts = {"test": {"speakers": 24, "utterances": 192, "kaldi_phones": 7215, "phones": 5000}}
    assert check_counts(counts, {"test": EXPECTED_COUNTS["test"]}) == []
    assert check_counts(counts, None) == []
    assert check_counts(counts, {"test": {"utterances": 240}}) == ["test: utterances 192 != expected 240"]
    assert check_counts(counts, {"dev": {"utterances": 400}}) == \
        ["dev: split missing (expected {'utterances': 400})"]
    assert "unknown count 'words'" in check_counts(counts, {"test": {"words": 1}})[0]


def test_cli_count_mismatch_fails(timit, tmp_path, capsys):
    wrong = json.loads(timit["exp_file"].read_text())
    wrong["test"]["utterances"] = 5
    f = tmp_path / "wrong.json"
    f.write_text(json.dumps(wrong))
    capsys.readouterr()
    assert _run("--timit-dir", timit["corpus"], "--out-dir", tmp_path / "o", "--expected-counts", f) == 1
    cap = capsys.readouterr()
    assert _errors(cap.err) == ["prepare-timit: test: utterances 4 != expected 5"]
    assert "kaldi" in cap.out and "test" in cap.out  # the counts table is printed
    assert not (tmp_path / "o" / "info.json").exists()
    # the default expectation is the full corpus: the fake one fails it, naming the counts
    assert _run("--timit-dir", timit["corpus"], "--out-dir", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "prepare-timit: test: kaldi_phones" in err and "!= expected 7215" in err
    assert "prepare-timit: train: speakers 2 != expected 462" in err


def test_idempotent_and_unmatched_text(timit, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["--timit-dir", timit["corpus"], "--out-dir", out, "--expected-counts", "none"]
    assert _run(*args) == 0
    info = out / "info.json"
    info.write_text(info.read_text().replace('"skipped"', '"skipped" '))  # marker: not rewritten
    assert _run(*args) == 0 and info.read_text().count('"skipped" ') == 1
    assert _run(*args, "--force") == 0 and '"skipped" ' not in info.read_text()
    text = tmp_path / "words.txt"
    text.write_text("some unrelated text\nand another line\n")
    assert _run(*args, "--lm-text", text) == 0  # another LM mode: rebuilt, not skipped
    assert (out / "lm_text.txt").read_text() == text.read_text()
    assert not (out / "lm_text_phones.txt").exists()
    lm = json.loads(info.read_text())["lm_text"]
    assert lm["mode"] == "unmatched" and lm["file"] == "lm_text.txt" and lm["source"] == str(text.resolve())
    assert _run(*args, "--lm-text", tmp_path / "nope.txt") == 1
    assert "nope.txt" in capsys.readouterr().err


def test_lowercase_layout(tmp_path):
    corpus = make_fake_timit(tmp_path / "c", SMALL, lowercase=True, audio="noise")
    assert (corpus / "train" / "dr1" / "fcjf0" / "si1027.wav").is_file()
    assert (corpus / "test" / "dr1" / "mdab0" / "si1039.phn").is_file()
    assert _run("--timit-dir", corpus, "--out-dir", tmp_path / "o", "--expected-counts", "none") == 0
    counts = json.loads((tmp_path / "o" / "info.json").read_text())["counts"]
    assert [counts[s]["utterances"] for s in ("train", "dev", "test")] == [1, 1, 1]
    assert {u.id for u in scan_timit(corpus)} == {"fcjf0-sa1", "fcjf0-si1027", "fadg0-sa2",
                                                  "fadg0-sx109", "mdab0-si1039"}


def test_broken_corpus_errors_are_one_line(tmp_path, capsys):
    corpus = make_fake_timit(tmp_path / "c", SMALL, audio="noise")
    out = ["--out-dir", tmp_path / "o", "--expected-counts", "none"]
    phn = corpus / "TEST" / "DR1" / "MDAB0" / "SI1039.PHN"
    phn.unlink()
    capsys.readouterr()
    assert _run("--timit-dir", corpus, *out) == 1
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and str(phn) in err[0] and ".PHN" in err[0]
    shutil.copyfile(corpus / "TRAIN" / "DR1" / "FCJF0" / "SI1027.PHN", phn)
    wav = corpus / "TEST" / "DR4" / "FADG0" / "SX109.WAV"
    wav.write_bytes(b"not audio at all")
    assert _run("--timit-dir", corpus, *out) == 1
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and str(wav) in err[0] and "unreadable audio" in err[0]
    assert _run("--timit-dir", tmp_path / "missing", *out) == 1
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and str(tmp_path / "missing") in err[0]
    assert "TRAIN/DR1/FCJF0/SA1.WAV" in err[0]
    assert not (tmp_path / "o" / "info.json").exists()


def test_cli_discovers_command():
    from uasr.bin.cli import _commands

    assert _commands()["prepare-timit"][0] == "uasr.bin.prepare_timit"
