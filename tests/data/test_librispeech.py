"""Stage 0 of recipes/librispeech on a tiny fake corpus in the official layout."""

import json
import urllib.error

import pytest
from lhotse import RecordingSet, SupervisionSet, validate_recordings_and_supervisions

from tests.data.fake_corpora import make_fake_librispeech
from uasr.bin.prepare_librispeech import main
from uasr.data.librispeech import read_lm_text, sentence_key


def run(corpus, out, *extra) -> int:
    return main(["--corpus-dir", str(corpus), "--out-dir", str(out), *map(str, extra)])


def load(out, split):
    m = out / "manifests"
    return (RecordingSet.from_file(m / f"librispeech_recordings_{split}.jsonl.gz"),
            SupervisionSet.from_file(m / f"librispeech_supervisions_{split}.jsonl.gz"))


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("libri")
    return root, make_fake_librispeech(root, lexicon=True)


def test_manifests_lm_text_and_lexicon(fake, tmp_path):
    root, made = fake
    out = tmp_path / "corpus"
    assert run(root, out) == 0
    for split, part in (("train", "train-clean-5"), ("dev", "dev-clean-2"), ("test", "dev-clean-2")):
        recs, sups = load(out, split)
        validate_recordings_and_supervisions(recs, sups)
        ref = made["transcripts"][part]
        assert sorted(sups.ids) == sorted(ref) and len(recs) == len(ref) == 6
        dur = {r.id: r.duration for r in recs}
        for s in sups:
            assert s.text == ref[s.id].lower() and s.alignment is None
            assert s.speaker == s.id.split("-")[0] and s.start == 0 and s.duration == dur[s.id]
        assert {s.speaker for s in sups} == set(made["speakers"][part])
        assert all(r.sampling_rate == 16000 and r.sources[0].source.startswith("/") for r in recs)
    info = json.loads((out / "info.json").read_text())
    assert info["parts"] == {"train": "train-clean-5", "dev": "dev-clean-2", "test": "dev-clean-2"}
    assert info["splits"]["train"]["utterances"] == 6 and info["splits"]["dev"]["speakers"] == 2
    assert info["splits"]["train"]["hours"] > 0
    # LM text: lowercase, the two spoken sentences removed and counted
    lm = (out / "lm_text.txt").read_text().splitlines()
    spoken = {t.lower() for p in made["transcripts"].values() for t in p.values()}
    assert lm == [s.lower() for s in made["lm_sentences"] if s.lower() not in spoken]
    assert info["lm_removed_overlaps"] == made["overlaps"] == 2 and info["lm_sentences"] == len(lm)
    # the official lexicon is copied as is; the lang stage's reader takes it
    assert (out / "lexicon_extra.txt").read_text() == (root / "librispeech-lexicon.txt").read_text()
    assert info["lexicon_extra"]["entries"] == 6
    from uasr.lang.lexicon import Lexicon
    assert Lexicon.from_file(out / "lexicon_extra.txt", g2p=None).entries["the"] == [["dh", "ah"], ["dh", "iy"]]
    assert not list(out.rglob("*.tmp*"))


def test_idempotent_force_and_changed_options(fake, tmp_path, caplog):
    root, _ = fake
    out = tmp_path / "corpus"
    assert run(root, out) == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    stamp = {p: p.stat().st_mtime_ns for p in files}
    caplog.set_level("INFO")
    assert run(root, out) == 0
    assert "skipping stage 0" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in files} == stamp
    assert run(root, out, "--force") == 0
    assert (out / "info.json").stat().st_mtime_ns != stamp[out / "info.json"]
    assert run(root, out, "--max-lm-sentences", 3) == 0  # other options: redone
    assert len((out / "lm_text.txt").read_text().splitlines()) == 3
    assert json.loads((out / "info.json").read_text())["lm_text"]["max_sentences"] == 3


def test_test_part_and_external_lm_text(tmp_path):
    root = tmp_path / "dl"
    made = make_fake_librispeech(root, ("train-clean-100", "dev-clean", "test-clean"), 1, 2,
                                 audio="noise", lm_text=False)
    text = tmp_path / "my_lm.txt"
    first_test = next(iter(made["transcripts"]["test-clean"].values()))
    text.write_text(f"{first_test.capitalize()}.\n\nSome Other sentence, here!\n")
    out = tmp_path / "corpus"
    assert run(root, out, "--train-part", "train-clean-100", "--dev-part", "dev-clean", "--lm-text", text) == 0
    info = json.loads((out / "info.json").read_text())
    assert info["parts"]["test"] == "test-clean"  # auto: dev-clean -> test-clean
    assert sorted(load(out, "test")[1].ids) == sorted(made["transcripts"]["test-clean"])
    assert info["lm_removed_overlaps"] == 1 and info["lexicon_extra"] is None
    assert (out / "lm_text.txt").read_text() == "some other sentence, here!\n"


def test_errors_are_one_line(tmp_path, capsys, monkeypatch):
    def err() -> str:  # the error is one line (progress bars may precede it on stderr)
        lines = [ln for ln in capsys.readouterr().err.replace("\r", "\n").splitlines() if ln.strip()]
        assert lines and lines[-1].startswith("prepare-librispeech: "), lines
        assert not any(ln.startswith("prepare-librispeech") for ln in lines[:-1]), lines
        return lines[-1]

    assert run(tmp_path / "nothing", tmp_path / "o") == 1
    assert "LibriSpeech/<part>/<speaker>/<chapter>" in err()
    root = tmp_path / "c"
    make_fake_librispeech(root, ("train-clean-5", "dev-clean-2"), 1, 1, audio="noise", lm_text=False)
    assert run(root, tmp_path / "o", "--dev-part", "dev-clean") == 1
    e = err()
    assert "LibriSpeech/dev-clean is missing" in e and "--download" in e
    assert run(root, tmp_path / "o") == 1  # no LM text
    e = err()
    assert "librispeech-lm-norm.txt(.gz)" in e and "--lm-text FILE" in e
    # --download without network: the message says which layout to provide instead
    import lhotse.recipes.librispeech as ls

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(ls, "resumable_download", offline)
    assert run(root, tmp_path / "o", "--dev-part", "dev-clean", "--download") == 1
    e = err()
    assert "could not download dev-clean" in e and f"under {root.resolve()} as LibriSpeech/<part>" in e
    assert "rerun without --download" in e
    # a transcript line without audio, and one without text
    (root / "librispeech-lm-norm.txt").write_text("HELLO THERE\n")
    trans = next((root / "LibriSpeech" / "dev-clean-2").rglob("*.trans.txt"))
    uid = trans.read_text().split()[0]
    (trans.parent / f"{uid}.flac").rename(tmp_path / "x.flac")
    assert run(root, tmp_path / "o") == 1
    assert f"{uid}.flac is missing (listed in {trans.resolve()})" in err()
    (tmp_path / "x.flac").rename(trans.parent / f"{uid}.flac")
    trans.write_text(trans.read_text() + f"{uid[:-1]}9\n")
    assert run(root, tmp_path / "o") == 1
    assert f"{trans.name}:2: empty transcript" in err()
    assert not (tmp_path / "o" / "info.json").exists()


def test_lm_sample_is_uniform_and_ordered(tmp_path):
    path = tmp_path / "lm.txt"
    path.write_text("".join(f"SENTENCE NUMBER {i}\n" for i in range(5000)) + "SPOKEN ONE\n")
    sents, removed, n = read_lm_text(path, {sentence_key("spoken one")}, 500, seed=3, progress=False)
    assert removed == 1 and n == 5000 and len(sents) == 500
    idx = [int(s.split()[-1]) for s in sents]
    assert idx == sorted(idx) and len(set(idx)) == 500
    assert sum(i < 2500 for i in idx) in range(200, 301)  # not just the head of the file
    assert read_lm_text(path, set(), 500, seed=3, progress=False)[0] == sents
    assert len(read_lm_text(path, set(), 0, progress=False)[0]) == 5001
