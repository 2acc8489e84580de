import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, Recording, SupervisionSegment, SupervisionSet, RecordingSet

from uasr.data.features import compute_features, speaker_cmvn, speaker_whiten


def test_speaker_cmvn_normalises_per_speaker():
    rng = np.random.default_rng(0)
    feats = {"a1": rng.normal(3, 2, (50, 4)), "a2": rng.normal(3, 2, (30, 4)), "b1": rng.normal(-1, 5, (40, 4))}
    out = speaker_cmvn(feats, {"a1": "A", "a2": "A", "b1": "B"})
    a = np.concatenate([out["a1"], out["a2"]])
    np.testing.assert_allclose(a.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(a.std(0), 1, atol=1e-3)
    np.testing.assert_allclose(out["b1"].mean(0), 0, atol=1e-5)


def test_speaker_whiten_decorrelates_per_speaker():
    rng = np.random.default_rng(0)
    mix = np.array([[1.0, 0.8, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 2.0]])
    feats = {"a1": rng.normal(size=(400, 3)) @ mix + 3, "a2": rng.normal(size=(300, 3)) @ mix + 3,
             "b1": rng.normal(size=(500, 3)) @ mix.T - 1}
    spk = {"a1": "A", "a2": "A", "b1": "B"}
    out = speaker_whiten(feats, spk, shrinkage=0.0)
    for x in (np.concatenate([out["a1"], out["a2"]]), out["b1"]):
        np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(np.cov(x, rowvar=False), np.eye(3), atol=1e-3)
    # full shrinkage towards the diagonal is plain per-speaker CMVN (up to ddof)
    cm, wh = speaker_cmvn(feats, spk), speaker_whiten(feats, spk, shrinkage=1.0)
    np.testing.assert_allclose(wh["b1"], cm["b1"], rtol=2e-3, atol=2e-3)
    with pytest.raises(ValueError, match="shrinkage"):
        speaker_whiten(feats, spk, shrinkage=1.5)


def test_lhotse_fbank_frames(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    sf.write(tmp_path / "x.wav", (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    rec = Recording.from_file(tmp_path / "x.wav", recording_id="x")
    sup = SupervisionSegment("x", "x", 0.0, 1.0, speaker="s")
    cuts = CutSet.from_manifests(RecordingSet.from_recordings([rec]), SupervisionSet.from_segments([sup]))
    cuts = compute_features(cuts, tmp_path / "feats", "fbank", nj=1)
    f = cuts[0].load_features()
    assert f.shape == (100, 40)
    assert np.isfinite(f).all()
