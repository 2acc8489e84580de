import numpy as np
import pytest

from uasr.data.segments import (boundary_f1, frame_labels, oracle_boundaries, perturb_boundaries,
                                pool_segments, segment_labels, spectral_change,
                                spectral_change_boundaries)

ALI = [("sil", 0.0, 0.1), ("k", 0.1, 0.05), ("ae", 0.15, 0.12), ("t", 0.27, 0.03), ("sil", 0.3, 0.1)]


def test_oracle_boundaries_and_labels():
    b = oracle_boundaries(ALI, 40)
    assert list(b) == [0, 10, 15, 27, 30, 40]
    lab = frame_labels(ALI, 40)
    assert segment_labels(b, lab) == ["sil", "k", "ae", "t", "sil"]


def test_oracle_boundaries_keep_segments_nonempty():
    ali = [("a", 0.0, 0.004), ("b", 0.004, 0.003), ("c", 0.007, 0.02)]
    b = oracle_boundaries(ali, 3)
    assert b[0] == 0 and b[-1] == 3 and np.all(np.diff(b) >= 1)


def _steps(noise: float, seed: int = 0) -> np.ndarray:
    x = np.concatenate([np.full((12, 4), v, dtype=np.float32) for v in (0.0, 3.0, -2.0, 1.0)])
    return x + np.random.default_rng(seed).normal(0, noise, x.shape).astype(np.float32)


def test_spectral_change_finds_steps():
    b = spectral_change_boundaries(_steps(0.01), min_len=3, threshold=0.5)
    hits, nh, nr = boundary_f1(np.array([0, 12, 24, 36, 48]), b, tol=1)
    assert hits == 3 and nr == 3 and nh == 3


def test_spectral_change_is_the_two_window_mean_difference():
    x = _steps(0.5)
    d = spectral_change(x, window=3)
    for t in range(1, len(x)):  # direct definition, windows clipped at the edges
        ref = np.linalg.norm(x[t:t + 3].mean(0) - x[max(0, t - 3):t].mean(0))
        assert abs(d[t] - ref) < 1e-5
    assert d[0] == 0


def test_wider_window_suppresses_noise_peaks():
    ref = np.array([0, 12, 24, 36, 48])
    for seed in range(3):
        x = _steps(0.8, seed)
        assert boundary_f1(ref, spectral_change_boundaries(x, 2, 0.5, window=3), tol=1) == (3, 3, 3)
        assert boundary_f1(ref, spectral_change_boundaries(x, 2, 0.5, window=1), tol=1)[1] > 3


def test_boundary_f1_counts_each_ref_once():
    assert boundary_f1(np.array([0, 10, 20]), np.array([0, 9, 10, 11, 20]), tol=2) == (1, 3, 1)


def test_pool_segments_shape():
    x = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    p = pool_segments(x, np.array([0, 1, 10, 40]))
    assert p.shape == (3, 16)
    np.testing.assert_allclose(p[0, :5], x[0])
    np.testing.assert_allclose(p[2, -1], np.log(30), rtol=1e-6)


def _bounds(rng, n=40):
    return np.concatenate([[0], np.cumsum(rng.integers(1, 9, n))]).astype(np.int64)


def test_perturb_jitter_moves_each_boundary_at_most_k_and_keeps_segments():
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = _bounds(rng)
        j = perturb_boundaries(b, "jitter", 2, rng)
        assert len(j) == len(b) and j[0] == 0 and j[-1] == b[-1]
        assert (np.diff(j) >= 1).all()
        assert (np.abs(j - b) <= 2).all()
    assert not (perturb_boundaries(b, "jitter", 2, rng) == b).all()


def test_perturb_delete_and_insert_rates():
    rng = np.random.default_rng(1)
    b = _bounds(rng, 4000)
    assert (perturb_boundaries(b, "delete", 0.0, rng) == b).all()
    assert perturb_boundaries(b, "delete", 1.0, rng).tolist() == [0, b[-1]]
    kept = len(perturb_boundaries(b, "delete", 0.25, rng)) - 2
    assert abs(kept / (len(b) - 2) - 0.75) < 0.03
    full = perturb_boundaries(b, "insert", 1.0, rng)
    splittable = int((np.diff(b) >= 2).sum())
    assert len(full) == len(b) + splittable and set(b.tolist()) <= set(full.tolist())
    assert (np.diff(full) >= 1).all()
    with pytest.raises(ValueError, match="jitter, delete, insert"):
        perturb_boundaries(b, "shift", 1.0, rng)
