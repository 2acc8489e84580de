import numpy as np

from uasr.data.segments import (boundary_f1, frame_labels, oracle_boundaries, pool_segments,
                                segment_labels, spectral_change_boundaries)

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


def test_spectral_change_finds_steps():
    x = np.concatenate([np.full((12, 4), v, dtype=np.float32) for v in (0.0, 3.0, -2.0, 1.0)])
    x += np.random.default_rng(0).normal(0, 0.01, x.shape).astype(np.float32)
    b = spectral_change_boundaries(x, min_len=3, threshold=0.5)
    hits, nh, nr = boundary_f1(np.array([0, 12, 24, 36, 48]), b, tol=1)
    assert hits == 3 and nr == 3 and nh == 3


def test_boundary_f1_counts_each_ref_once():
    assert boundary_f1(np.array([0, 10, 20]), np.array([0, 9, 10, 11, 20]), tol=2) == (1, 3, 1)


def test_pool_segments_shape():
    x = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    p = pool_segments(x, np.array([0, 1, 10, 40]))
    assert p.shape == (3, 16)
    np.testing.assert_allclose(p[0, :5], x[0])
    np.testing.assert_allclose(p[2, -1], np.log(30), rtol=1e-6)
