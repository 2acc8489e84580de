"""uasr prepare-custom: Kaldi dirs and TSVs into the stage-0 manifest contract."""

import json
import logging
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, RecordingSet, SupervisionSet
from lhotse.qa import validate_recordings_and_supervisions

from uasr.bin.prepare_custom import main
from uasr.data.custom import filter_lm_text, manifest_paths

RATE = 8000  # flite's default voice and the fallback noise: resampled to 16 kHz on load


def speak(text, path, seconds=None, seed=0):
    """A mono 8 kHz wav: flite speaking ``text`` when installed, else quiet noise;
    padded/cut to ``seconds`` when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("flite"):
        tmp = path.with_suffix(".flite.wav")
        subprocess.run(["flite", "-t", text, "-o", str(tmp)], check=True, capture_output=True)
        x, rate = sf.read(tmp, dtype="float32")
        tmp.unlink()
    else:
        rng = np.random.default_rng(seed)
        rate = RATE
        x = (0.01 * rng.standard_normal(int(rate * rng.uniform(0.5, 1.5)))).astype(np.float32)
    if seconds is not None:
        n = round(seconds * rate)
        x = np.pad(x[:n], (0, max(0, n - len(x))))
    sf.write(path, x, rate, subtype="PCM_16")
    return rate


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    # train: Kaldi dir with segments, two utterances cut out of one 2 s recording; partial text
    rate = speak("the quick brown fox", root / "audio" / "rec1a.wav", seconds=1.0)
    speak("jumps over the dog", root / "audio" / "rec1b.wav", seconds=1.0, seed=1)
    x = np.concatenate([sf.read(root / "audio" / f"rec1{c}.wav", dtype="float32")[0] for c in "ab"])
    sf.write(root / "audio" / "rec1.wav", x, rate, subtype="PCM_16")
    train = root / "train"
    write(train / "wav.scp", [f"rec1 {root / 'audio' / 'rec1.wav'}"])
    write(train / "segments", ["spk1-a rec1 0.00 0.80", "spk1-b rec1 1.00 1.90"])
    write(train / "utt2spk", ["spk1-a spk1", "spk1-b spk1"])
    write(train / "spk2gender", ["spk1 f"])
    write(train / "text", ["spk1-a The quick brown fox."])
    # dev: Kaldi dir without segments; one recording read through a piped command
    dev = root / "dev"
    speak("hello world", root / "audio" / "d1.wav", seed=2)
    speak("good morning", root / "audio" / "d2.wav", seed=3)
    write(dev / "wav.scp", [f"spk2-d1 {root / 'audio' / 'd1.wav'}",
                            f"spk2-d2 cat {root / 'audio' / 'd2.wav'} |"])
    write(dev / "utt2spk", ["spk2-d1 spk2", "spk2-d2 spk2"])
    write(dev / "text", ["spk2-d1 Hello, world!", "spk2-d2 good   morning"])
    # test: TSV with a header, relative paths, no speaker column (speaker = parent folder)
    speak("seven ships", root / "tsv" / "alice" / "t1.wav", seed=4)
    speak("three trees", root / "tsv" / "bob" / "t2.wav", seed=5)
    test = write(root / "tsv" / "test.tsv", ["audio_path\ttranscript", "alice/t1.wav\t7 ships",
                                             "bob/t2.wav\tThree trees"])
    lm = write(root / "lm.txt", ["HELLO WORLD", "", "the quick brown fox", "a new sentence here",
                                 "  ", "Seven ships!", "another one"])
    return {"root": root, "train": train, "dev": dev, "test": test, "lm": lm, "rate": rate}


def args(c, out, *extra, **over):
    d = {"train": c["train"], "dev": c["dev"], "test": c["test"], "lm-text": c["lm"], "out-dir": out, **over}
    return [x for k, v in d.items() if v is not None for x in (f"--{k}", str(v))] + list(extra)


def load(out, split):
    rec_f, sup_f = manifest_paths(out, split)
    recs, sups = RecordingSet.from_file(rec_f), SupervisionSet.from_file(sup_f)
    validate_recordings_and_supervisions(recs, sups)
    return recs, sups, CutSet.from_manifests(recs, sups).trim_to_supervisions()


def test_kaldi_and_tsv_to_manifests(corpus, tmp_path, caplog):
    out = tmp_path / "out"
    assert main(args(corpus, out)) == 0

    recs, sups, cuts = load(out, "train")
    assert len(recs) == 1 and recs[0].sampling_rate == 16000 and recs[0].duration == pytest.approx(2.0)
    assert recs[0].transforms[0].source_sampling_rate == corpus["rate"]
    by_id = {c.supervisions[0].id: c for c in cuts}
    assert sorted(by_id) == ["spk1-a", "spk1-b"]
    assert all(len(c.supervisions) == 1 and c.id == c.supervisions[0].id for c in cuts)  # cut id = utt id
    assert by_id["spk1-a"].duration == pytest.approx(0.8) and by_id["spk1-b"].duration == pytest.approx(0.9)
    assert by_id["spk1-b"].start == pytest.approx(1.0)
    assert by_id["spk1-a"].supervisions[0].text == "the quick brown fox"
    assert by_id["spk1-b"].supervisions[0].text == ""  # untranscribed train utterance
    assert {c.supervisions[0].speaker for c in cuts} == {"spk1"}
    assert by_id["spk1-a"].supervisions[0].gender == "f"
    audio = by_id["spk1-b"].load_audio()
    assert by_id["spk1-b"].sampling_rate == 16000 and audio.shape == (1, round(0.9 * 16000))

    recs, sups, cuts = load(out, "dev")
    assert {c.supervisions[0].id: c.supervisions[0].text for c in cuts} == \
        {"spk2-d1": "hello world", "spk2-d2": "good morning"}
    piped = next(c for c in cuts if c.supervisions[0].id == "spk2-d2")
    assert piped.recording.sources[0].type == "command"
    assert piped.load_audio().shape[1] == piped.num_samples and piped.sampling_rate == 16000

    recs, sups, cuts = load(out, "test")
    got = {c.supervisions[0].id: (c.supervisions[0].speaker, c.supervisions[0].text) for c in cuts}
    assert got == {"alice-t1": ("alice", "seven ships"), "bob-t2": ("bob", "three trees")}
    assert all(r.sources[0].source.startswith("/") for r in recs)

    info = json.loads((out / "info.json").read_text())
    assert info["normalize"] == "english" and info["sample_rate"] == 16000
    assert info["splits"]["train"]["utterances"] == 2 and info["splits"]["train"]["transcribed_utterances"] == 1
    assert info["splits"]["train"]["native_sampling_rates"] == [corpus["rate"]]
    assert info["splits"]["test"]["source_format"] == "tsv" and info["splits"]["dev"]["source_format"] == "kaldi"
    assert info["splits"]["test"]["speakers"] == 2
    assert info["splits"]["train"]["hours"] == pytest.approx(1.7 / 3600, abs=1e-4)
    # LM text: normalised, empty lines dropped, dev/test sentences removed, train overlap kept
    assert (out / "lm_text.txt").read_text().splitlines() == \
        ["the quick brown fox", "a new sentence here", "another one"]
    lm = info["lm_text"]
    assert (lm["sentences"], lm["empty_dropped"], lm["dev_test_overlap_removed"], lm["train_overlap_kept"]) == \
        (3, 2, 2, 1)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # temp dir cleaned up

    # idempotent: a second run is a no-op; --force rebuilds
    stamp = (out / "info.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        assert main(args(corpus, out)) == 0
    assert "already done" in caplog.text and (out / "info.json").stat().st_mtime_ns == stamp
    assert main(args(corpus, out, "--force", dev=None)) == 0
    assert not manifest_paths(out, "dev")[0].exists()  # stale split removed
    assert list(json.loads((out / "info.json").read_text())["splits"]) == ["train", "test"]


def test_tsv_no_header_speaker_column_verbatim(tmp_path):
    d = tmp_path / "de"
    for i, t in enumerate(["Grüße aus Köln", "Über den Fluß"]):
        speak(t, d / "wavs" / f"u{i}.wav", seed=i)
    tsv = write(d / "all.tsv", ["wavs/u0.wav\tGrüße   aus Köln\tanna", "wavs/u1.wav\tÜber den Fluß!\tjörg"])
    train = write(d / "train.txt", ["wavs/u0.wav", "wavs/u1.wav"])  # no transcript column at all
    lm = write(d / "lm.txt", ["Über den Fluß!", "Schöne Grüße"])
    out = tmp_path / "out"
    assert main(["--train", str(train), "--test", str(tsv), "--lm-text", str(lm), "--out-dir", str(out),
                 "--normalize", "none", "--sample-rate", "0"]) == 0
    recs, sups, cuts = load(out, "test")
    assert {(s.id, s.speaker, s.text) for s in sups} == \
        {("anna-u0", "anna", "Grüße aus Köln"), ("jörg-u1", "jörg", "Über den Fluß!")}
    assert {r.sampling_rate for r in recs} == {sf.info(d / "wavs" / "u0.wav").samplerate}  # native
    assert cuts[0].load_audio().shape[1] == cuts[0].num_samples
    recs, sups, _ = load(out, "train")
    assert {(s.speaker, s.text) for s in sups} == {("wavs", "")}  # speaker = parent folder
    assert (out / "lm_text.txt").read_text(encoding="utf-8").splitlines() == ["Schöne Grüße"]


def fails(argv, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("prepare-custom: ") and "\n" not in err
    return err


def test_errors(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    c = dict(corpus)
    # missing --test
    assert "--test is missing" in fails(args(c, out, test=None), capsys)
    # missing wav in a Kaldi dir: names the file and wav.scp line
    bad = tmp_path / "bad_kaldi"
    shutil.copytree(c["dev"], bad)
    write(bad / "wav.scp", [f"spk2-d1 {c['root'] / 'audio' / 'd1.wav'}", f"spk2-d2 {tmp_path / 'nope.wav'}"])
    err = fails(args(c, out, dev=bad), capsys)
    assert "nope.wav" in err and f"{bad / 'wav.scp'}:2" in err and err.startswith("prepare-custom: dev:")
    # a failing piped command
    write(bad / "wav.scp", [f"spk2-d1 {c['root'] / 'audio' / 'd1.wav'}", "spk2-d2 false |"])
    assert "cannot read audio command 'false'" in fails(args(c, out, dev=bad), capsys)
    # missing wav in a TSV: names the file and the TSV line
    tsv = write(c["root"] / "tsv" / "bad.tsv", ["alice/t1.wav\tseven", "carol/t9.wav\tnine"])
    err = fails(args(c, out, test=tsv), capsys)
    assert "t9.wav" in err and f"{tsv}:2" in err
    # unreadable audio
    (c["root"] / "tsv" / "carol").mkdir()
    (c["root"] / "tsv" / "carol" / "t9.wav").write_text("not audio")
    assert "cannot read audio file" in fails(args(c, out, test=tsv), capsys)
    # test split without transcripts: names the missing text file
    notext = tmp_path / "notext"
    shutil.copytree(c["dev"], notext)
    (notext / "text").unlink()
    err = fails(args(c, out, test=notext), capsys)
    assert str(notext / "text") in err and "score" in err
    # empty transcript (after normalisation) in dev: names the utterance
    write(notext / "text", ["spk2-d1 hello", "spk2-d2 ?!"])
    assert "spk2-d2" in fails(args(c, out, dev=notext), capsys)
    # duplicate ids: Kaldi table, TSV rows, across splits
    dup = tmp_path / "dup"
    shutil.copytree(c["dev"], dup)
    write(dup / "wav.scp", [f"spk2-d1 {c['root'] / 'audio' / 'd1.wav'}", f"spk2-d1 {c['root'] / 'audio' / 'd2.wav'}"])
    assert "duplicate ids: spk2-d1" in fails(args(c, out, dev=dup), capsys)
    tsv = write(c["root"] / "tsv" / "dup.tsv", ["alice/t1.wav\tseven", "alice/t1.wav\tseven again"])
    assert "duplicate ids: alice-t1" in fails(args(c, out, test=tsv), capsys)
    assert "across splits" in fails(args(c, out, test=c["dev"]), capsys)
    # nothing was written by any failed run
    assert not out.exists() or not any(out.iterdir())


def test_filter_lm_text():
    kept, st = filter_lm_text(["A b.", "", "c d", "e f", "c d"], {"c d"}, {"a b"}, "english")
    assert kept == ["a b", "e f"]
    assert st == {"input_lines": 5, "empty_dropped": 1, "dev_test_overlap_removed": 2,
                  "train_overlap_kept": 1, "sentences": 2}
