import pytest

from uasr.data.tts import Speaker, flite_synthesize, map_phone, to_alignment
from uasr.lang.phones import PHONES


def test_map_phone():
    assert map_phone("pau") == ["sil"]
    assert map_phone("ax") == ["ah"]
    assert map_phone("AH0") == ["ah"]
    assert map_phone("el") == ["ah", "l"]
    with pytest.raises(ValueError, match="no ARPAbet-39 mapping"):
        map_phone("qq")


def test_alignment_covers_audio_and_merges_silence():
    ends = [("pau", 0.2), ("hh", 0.3), ("el", 0.5), ("pau", 0.6), ("pau", 0.7), ("z", 0.9), ("pau", 1.2)]
    ali = to_alignment(ends, duration=1.1)  # the last pause overruns the audio: clipped
    assert ali[0][1] == 0.0
    assert abs(ali[-1][1] + ali[-1][2] - 1.1) < 1e-3
    for (_, s0, d0), (_, s1, _) in zip(ali, ali[1:]):
        assert abs(s0 + d0 - s1) < 1e-3  # contiguous
    assert [p for p, _, _ in ali] == ["sil", "hh", "ah", "l", "sil", "z", "sil"]


def test_flite_alignment_matches_text(tmp_path, flite):
    from uasr.lang.lexicon import Lexicon
    import soundfile as sf
    wav = tmp_path / "a.wav"
    ali = flite_synthesize("And God saw the light.", Speaker("kal16", 1.1, 120), wav)
    info = sf.info(str(wav))
    assert info.samplerate == 16000
    assert abs(ali[-1][1] + ali[-1][2] - info.frames / 16000) < 1e-3
    assert all(p in PHONES for p, _, _ in ali)
    phones = [p for p, _, _ in ali if p != "sil"]
    expect = Lexicon.from_cmudict().phonemize("and god saw the light".split())
    assert len(phones) == len(expect)
    assert not list(tmp_path.glob("*.tmp*"))
