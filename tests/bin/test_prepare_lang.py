"""The lang stage: unit kinds, lexicons, symbol inventories, word LMs, references."""

from pathlib import Path

import pytest
from lhotse import SupervisionSegment, SupervisionSet

from uasr.bin.prepare_lang import main
from uasr.lang.langdir import LangDir, read_symbols
from uasr.lm.arpa import read_arpa


def _text(tmp_path: Path, lines: list[str], name: str = "lm.txt") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _manifests(tmp_path: Path, texts: list[str]) -> Path:
    d = tmp_path / "manifests"
    d.mkdir()
    sups = [SupervisionSegment(id=f"u{i}", recording_id=f"u{i}", start=0, duration=1, text=t)
            for i, t in enumerate(texts)]
    SupervisionSet.from_segments(sups).to_file(d / "c_supervisions_test.jsonl.gz")
    return d


def test_graphemes_any_language(tmp_path):
    lm = _text(tmp_path, ["Grüße aus Köln", "schöne Grüße"])
    man = _manifests(tmp_path, ["köln grüßt"])
    out = tmp_path / "lang"
    assert main(["--lm-text", str(lm), "--out-dir", str(out), "--units", "graphemes", "--normalize", "none",
                 "--manifest-dir", str(man), "--manifest-prefix", "c", "--orders", "2"]) == 0
    lang = LangDir.load(out)
    assert lang.units == "graphemes"
    assert {"ü", "ß", "ö", "sil"} <= set(lang.symbols)
    assert lang.transcribe("köln grüßt") == list("kölngrüßt")
    # --normalize none keeps case: "G" and "g" are different units
    assert (out / "lm_text_phones.txt").read_text().splitlines()[0] == "sil G r ü ß e a u s K ö l n sil"
    assert set(read_arpa(out / "lm_2gram.arpa").vocab) >= set(lang.symbols)


def test_user_lexicon_without_cmudict(tmp_path):
    lex = _text(tmp_path, ["hallo h a l o", "welt v E l t"], "lex.txt")
    lm = _text(tmp_path, ["hallo welt", "welt hallo welt"])
    out = tmp_path / "lang"
    assert main(["--lm-text", str(lm), "--out-dir", str(out), "--base-lexicon", "none", "--lexicon", str(lex),
                 "--normalize", "none", "--orders", "2"]) == 0
    lang = LangDir.load(out)
    assert sorted(lang.symbols) == sorted(["E", "a", "h", "l", "o", "t", "v", "sil"])
    assert lang.transcribe("welt hallo") == ["v", "E", "l", "t", "h", "a", "l", "o"]
    with pytest.raises(KeyError, match="tschüss"):
        lang.transcribe("tschüss welt")


def test_user_lexicon_oov_without_g2p_is_one_line_error(tmp_path, capsys):
    lex = _text(tmp_path, ["hallo h a l o"], "lex.txt")
    lm = _text(tmp_path, ["hallo welt"])
    rc = main(["--lm-text", str(lm), "--out-dir", str(tmp_path / "lang"), "--base-lexicon", "none",
               "--lexicon", str(lex), "--normalize", "none", "--orders", "2"])
    err = capsys.readouterr().err
    assert rc == 1 and "welt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "lang" / "lm.json").exists()


def test_given_units_with_timit39_inventory(tmp_path):
    lm = _text(tmp_path, ["sil dh ih s sil", "dx ah sil"])
    out = tmp_path / "lang"
    assert main(["--units", "given", "--lm-units", str(lm), "--symbols", "timit39", "--out-dir", str(out),
                 "--orders", "2,3"]) == 0
    syms = read_symbols(out)
    assert len(syms) == 39 and "dx" in syms and "ao" not in syms and "sil" in syms
    assert (out / "lm_text_phones.txt").read_text().splitlines()[1] == "sil dx ah sil"
    assert (out / "lm_3gram.arpa").is_file()


def test_cmu_phones_fold_to_timit39(tmp_path):
    lm = _text(tmp_path, ["all measure"])  # ao l / m eh zh er
    out = tmp_path / "lang"
    assert main(["--lm-text", str(lm), "--symbols", "timit39", "--out-dir", str(out), "--orders", "2"]) == 0
    assert (out / "lm_text_phones.txt").read_text().split() == "sil aa l m eh sh er sil".split()


def test_cmudict_default_inventory_and_word_lm(tmp_path):
    lm = _text(tmp_path, ["the cat sat.", "the dog sat, then ran"])
    man = _manifests(tmp_path, ["the cat ran"])
    out = tmp_path / "lang"
    assert main(["--lm-text", str(lm), "--out-dir", str(out), "--manifest-dir", str(man), "--manifest-prefix",
                 "c", "--orders", "2", "--word-orders", "2"]) == 0
    from uasr.lang.phones import PHONES
    assert list(read_symbols(out)) == list(PHONES)
    lang = LangDir.load(out)
    assert lang.transcribe("the cat ran") == "dh ah k ae t r ae n".split()
    words = read_arpa(out / "lm_words_2gram.arpa")
    assert {"the", "cat", "dog", "sat", "then", "ran"} <= set(words.vocab)
    # clause punctuation becomes sil, as where TTS voices pause
    assert (out / "lm_text_phones.txt").read_text().splitlines()[1].count("sil") == 3


def test_missing_text_is_named(tmp_path, capsys):
    assert main(["--lm-text", str(tmp_path / "nope.txt"), "--out-dir", str(tmp_path / "l")]) == 1
    assert "nope.txt is missing" in capsys.readouterr().err
