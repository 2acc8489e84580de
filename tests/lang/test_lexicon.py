import pytest

from uasr.lang.lexicon import Lexicon, OOVError
from uasr.lang.phones import ARPABET39


@pytest.fixture(scope="module")
def cmu() -> Lexicon:
    return Lexicon.from_cmudict(g2p=None)


def test_cmudict(cmu):
    assert len(cmu) > 100_000
    assert cmu.pronounce("Hello") == ["hh", "ah", "l", "ow"]
    assert cmu.phonemize("the lord's day") == ["dh", "ah", "l", "ao", "r", "d", "z", "d", "ey"]
    assert {p for prons in list(cmu.entries.values())[:5000] for pr in prons for p in pr} \
        <= set(ARPABET39)


def test_oov_error_lists_all_and_says_how_to_fix(cmu):
    with pytest.raises(OOVError) as e:
        cmu.phonemize("hello zqxjv blorpt zqxjv")
    assert e.value.words == ["zqxjv", "blorpt"]
    assert "flite" in str(e.value) and "lexicon file" in str(e.value)


def test_lexicon_file_roundtrip(tmp_path, cmu):
    f = tmp_path / "lex.txt"
    f.write_text("# comment\nzqxjv Z IH1 K S\nzqxjv z ay k s\nfoo f uw\n")
    lex = Lexicon.from_file(f, g2p=None)
    assert lex.pronounce("ZQXJV") == ["z", "ih", "k", "s"] and len(lex.entries["zqxjv"]) == 2
    lex.write(tmp_path / "out.txt")
    assert Lexicon.from_file(tmp_path / "out.txt").entries == lex.entries
    merged = Lexicon(dict(cmu.entries), g2p=None).update(lex)
    assert merged.phonemize("foo hello") == ["f", "uw", "hh", "ah", "l", "ow"]


def test_bad_lexicon_file(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_text("ok k ow\nbad q x\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: unknown phone"):
        Lexicon.from_file(f)
    with pytest.raises(FileNotFoundError, match="no such lexicon file"):
        Lexicon.from_file(tmp_path / "missing.txt")


def test_flite_g2p_for_oovs(cmu, flite):
    lex = Lexicon(dict(cmu.entries), g2p="auto")
    phones = lex.phonemize("hello zqxjv")
    assert phones[:4] == ["hh", "ah", "l", "ow"] and len(phones) > 5
    assert set(phones) <= set(ARPABET39) and "zqxjv" in lex.generated
