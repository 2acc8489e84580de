"""The necessity constructions: delta = 0 (and KL = 0) yet Delta_q > 0."""

from __future__ import annotations

import numpy as np
import pytest

from uasr.theory.necessity import iid_nullspace, iid_swap, nonfactorised, run_controls


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_controls_match_marginals_but_not_decisions(seed):
    rows = run_controls(seed)
    assert [r["control"] for r in rows] == ["iid_swap", "iid_nullspace", "nonfactorised"]
    for r in rows:
        assert abs(r["delta"]) < 1e-12 and abs(r["kl"]) < 1e-12
        assert r["Delta_q"] > 1e-3
        assert r["Delta_q"] <= r["D_posterior"] + 1e-12
    assert rows[0]["sigma_min"] < 1e-12 and rows[1]["sigma_min"] < 1e-12  # condition 2 fails
    assert rows[2]["sigma_min"] > 1e-3  # condition 2 holds; condition 1 fails


def test_rank_deficient_constructions_always_match_marginals():
    for d in range(10):
        for f in (iid_swap, iid_nullspace, nonfactorised):
            assert abs(f(np.random.default_rng(d))["delta"]) < 1e-12
