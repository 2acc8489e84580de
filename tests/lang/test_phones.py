import pytest

from uasr.lang.phones import ARPABET39, PHONES, SIL, fold_timit, strip_stress, timit61, to_arpabet39


def test_arpabet39():
    assert len(ARPABET39) == 39 == len(set(ARPABET39))
    assert PHONES == ARPABET39 + (SIL,) and SIL == "sil"
    assert all(p == p.lower() and p.isalpha() for p in ARPABET39)


def test_strip_stress():
    assert strip_stress("AH0") == "ah" and strip_stress("ey1") == "ey" and strip_stress("K") == "k"


def test_g2p_phones_map_to_arpabet39():
    assert to_arpabet39(["pau", "hh", "ax", "l", "ow1", "pau"]) == ["hh", "ah", "l", "ow"]
    with pytest.raises(ValueError, match="xx"):
        to_arpabet39(["xx"])


def test_timit_folding_uses_lhotse_tables():
    assert len(timit61()) == 61
    folded48 = {p for p in (fold_timit([q], 48) for q in timit61()) for p in p}
    folded39 = {p for p in (fold_timit([q], 39) for q in timit61()) for p in p}
    assert len(folded48) == 48 and len(folded39) == 39
    assert fold_timit(["h#", "q", "ax-h", "zh", "kcl"], 39) == ["sil", "ah", "sh", "sil"]
    assert fold_timit(["kcl", "ix"], 48) == ["cl", "ix"]
    with pytest.raises(ValueError, match="not a TIMIT-61 phone"):
        fold_timit(["foo"])
