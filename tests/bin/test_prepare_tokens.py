"""prepare-tokens option errors: one line naming the option, nothing written."""

import pytest

from uasr.bin import prepare_tokens


@pytest.mark.parametrize("bad", ["shift:2", "delete", "delete:lots"])
def test_bad_oracle_errors_fail_before_any_work(bad, tmp_path, capsys):
    out = tmp_path / "tokens"
    rc = prepare_tokens.main(["--manifest-dir", str(tmp_path / "manifests"), "--feat-dir",
                              str(tmp_path / "feats"), "--out-dir", str(out), "--oracle-errors", bad])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--oracle-errors" in err and "delete:0.15" in err
    assert not out.exists() and not (tmp_path / "feats").exists()


def test_bad_whiten_shrinkage_fails_before_any_work(tmp_path, capsys):
    rc = prepare_tokens.main(["--manifest-dir", str(tmp_path / "manifests"), "--feat-dir",
                              str(tmp_path / "feats"), "--out-dir", str(tmp_path / "tokens"),
                              "--whiten-shrinkage", "2"])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--whiten-shrinkage" in err
    assert not (tmp_path / "tokens").exists() and not (tmp_path / "feats").exists()


def _corpus(root, rng):
    """Two speakers per split, two 1-s utterances each: noise through a speaker-specific
    colouring filter, so the speakers differ in spectral shape (what whitening removes)."""
    import numpy as np
    import soundfile as sf
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
    root.mkdir()
    for split in ("train", "dev", "test"):
        recs, sups = [], []
        for s in range(2):
            taps = rng.normal(size=8)
            for u in range(2):
                uid = f"{split}-s{s}-u{u}"
                x = np.convolve(rng.normal(size=16000), taps, mode="same") * np.repeat(
                    rng.uniform(0.2, 1.0, 20), 800)  # loudness steps: something to segment
                sf.write(root / f"{uid}.wav", (0.05 * x).astype(np.float32), 16000)
                recs.append(Recording.from_file(root / f"{uid}.wav", recording_id=uid))
                sups.append(SupervisionSegment(uid, uid, 0.0, 1.0, speaker=f"{split}-s{s}", text="a"))
        RecordingSet.from_recordings(recs).to_file(root / f"x_recordings_{split}.jsonl.gz")
        SupervisionSet.from_segments(sups).to_file(root / f"x_supervisions_{split}.jsonl.gz")


def test_speaker_norm_changes_the_units_features_not_the_segments(tmp_path):
    """The segmenter reads CMVN features under either --speaker-norm; the pooled features (what
    the units and the hybrid see) are whitened per speaker with ``whiten``."""
    import numpy as np
    import torch
    _corpus(tmp_path / "m", np.random.default_rng(0))
    out = {}
    for norm in ("cmvn", "whiten"):
        rc = prepare_tokens.main(["--manifest-dir", str(tmp_path / "m"), "--manifest-prefix", "x",
                                  "--feat-dir", str(tmp_path / "feats"), "--out-dir", str(tmp_path / norm),
                                  "--num-units", "4", "--frame-units", "4", "--nj", "1",
                                  "--speaker-norm", norm])
        assert rc == 0
        out[norm] = torch.load(tmp_path / norm / "unsup" / "train.pt", weights_only=False)
        assert (tmp_path / norm / "speaker_norm.txt").read_text().strip() == norm
    for a, b in zip(out["cmvn"]["bounds"], out["whiten"]["bounds"]):
        assert torch.equal(a, b)
    assert sum(len(b) for b in out["cmvn"]["bounds"]) > 2 * len(out["cmvn"]["bounds"])  # real segments
    diff = [float((a.float() - b.float()).abs().max())
            for a, b in zip(out["cmvn"]["pooled"], out["whiten"]["pooled"])]
    assert min(diff) > 0.1
