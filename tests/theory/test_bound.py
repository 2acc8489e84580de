"""Enumeration quantities: a hand-computed 2x2x2 example and Theorem 1 on random instances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from uasr.theory.discrete import analyse, compare, factorised_likelihood, joint
from uasr.theory.pc import pc_from_prior, sigma_min
from uasr.theory.simulation import bigram_prior, run_bound_simulation, summarise


def test_hand_computed_2x2x2():
    """|C| = |X| = N = 2; sequences ordered 00, 01, 10, 11. Truth: label = symbol (E_r = I);
    model: label 1 emits either symbol with 1/2. Values worked out by hand:
    p_r(x) = prior = (.4, .1, .2, .3); q(x) = (.625, .125, .175, .075); delta = .5;
    E* = 0; the model decides x=01 as c=11 (q .075 > .05), all else correctly: E_q = .1;
    D_posterior = sum_x p_r(x) * 2 (1 - q(c=x | x)) = .4*.72 + .1*1.2 + .2*6/7 + 0;
    D_joint = 2 * (off-diagonal q mass .375) = .75;
    D_position = .4*(.56+.4) + .1*1.2 + .2*6/7;
    P_C = [[.5, .5], [.6, .4]], P_C^-1 = [[-4, 5], [6, -5]]: ||.||_1 = 10 (induced), 20."""
    prior = np.array([0.4, 0.1, 0.2, 0.3])
    r = analyse(prior, np.eye(2), np.array([[1.0, 0.0], [0.5, 0.5]]), N=2)
    assert r["delta"] == pytest.approx(0.5)
    assert r["kl"] == pytest.approx(0.4 * math.log(0.64) + 0.1 * math.log(0.8)
                                    + 0.2 * math.log(8 / 7) + 0.3 * math.log(4))
    assert r["E_star"] == pytest.approx(0.0, abs=1e-15)
    assert r["E_q"] == pytest.approx(0.1)
    assert r["Delta_q"] == pytest.approx(0.1)
    assert r["D_posterior"] == pytest.approx(0.288 + 0.12 + 6 / 35)
    assert r["D_joint"] == pytest.approx(0.75)
    assert r["D_position"] == pytest.approx(0.384 + 0.12 + 6 / 35)
    assert r["pinv_induced"] == pytest.approx(10.0)
    assert r["pinv_entrywise"] == pytest.approx(20.0)
    assert r["bound_induced"] == pytest.approx(4 * 10 * 0.5)
    assert r["pinsker_induced"] == pytest.approx(2 * 16 * 100 * r["kl"])


def test_identical_models_give_zero_everything():
    rng = np.random.default_rng(0)
    prior, E = rng.dirichlet(np.ones(27)), rng.dirichlet(np.ones(4), size=3)
    r = analyse(prior, E, E, 3)
    for k in ("delta", "kl", "Delta_q", "D_posterior", "D_joint", "D_position"):
        assert abs(r[k]) < 1e-12


def test_batched_equals_single():
    rng = np.random.default_rng(1)
    prior = rng.dirichlet(np.ones(8), size=4)
    Er, Eq = rng.dirichlet(np.ones(3), size=(4, 2)), rng.dirichlet(np.ones(3), size=(4, 2))
    batch = analyse(prior, Er, Eq, 3)
    for i in range(4):
        one = analyse(prior[i], Er[i], Eq[i], 3)
        for k, v in one.items():
            assert batch[k][i] == pytest.approx(v)


def _dist(n: int):
    return st.lists(st.floats(1e-3, 1.0), min_size=n, max_size=n).map(
        lambda v: np.array(v) / sum(v))


@st.composite
def instances(draw):
    C = draw(st.integers(2, 3))
    X = draw(st.integers(2, 4))
    N = draw(st.integers(C, 3))
    prior = draw(_dist(C ** N))
    E_r = np.stack([draw(_dist(X)) for _ in range(C)])
    lam = draw(st.floats(0.0, 1.0))
    E_new = np.stack([draw(_dist(X)) for _ in range(C)])
    return prior, E_r, (1 - lam) * E_r + lam * E_new, N


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_theorem1_holds_on_random_instances(inst):
    prior, E_r, E_q, N = inst
    C = E_r.shape[0]
    assume(sigma_min(pc_from_prior(prior, C, N)) > 1e-6)  # condition 2
    r = analyse(prior, E_r, E_q, N)
    tol = 1e-9
    assert r["Delta_q"] <= r["D_posterior"] + tol
    for name in ("D_posterior", "D_joint", "D_position"):
        assert r[name] <= r["bound_induced"] * (1 + tol) + tol, name
        assert r[name] <= r["bound_entrywise"] * (1 + tol) + tol, name
    assert r["Delta_q"] ** 2 <= r["pinsker_induced"] * (1 + tol) + tol


def test_compare_rejects_mismatched_joints():
    with pytest.raises(ValueError, match="joints must both be"):
        compare(np.ones((8, 4)), np.ones((8, 5)), 2, 3)


def test_factorised_likelihood_rows_are_distributions():
    E = np.random.default_rng(2).dirichlet(np.ones(3), size=2)
    L = factorised_likelihood(E, 3)
    np.testing.assert_allclose(L.sum(-1), 1.0)
    assert joint(np.full(8, 1 / 8), L).sum() == pytest.approx(1.0)


def test_simulation_small_run_has_no_violations():
    r = run_bound_simulation(trials=300, seed=3, chunk=100)
    s = summarise(r)
    assert s["trials"] == 300 and s["kept"] + s["rank_deficient_set_aside"] == 300
    assert all(c["violations"] == 0 for c in s["checks"])
    assert s["Delta_q_le_D_posterior_violations"] == 0


def test_bigram_prior_is_normalised():
    rng = np.random.default_rng(4)
    p = bigram_prior(rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3), size=3), 4)
    assert p.shape == (81,) and p.sum() == pytest.approx(1.0)


def test_simulation_rejects_short_sequences():
    with pytest.raises(ValueError, match="full column rank"):
        run_bound_simulation(trials=10, C=3, N=2)
