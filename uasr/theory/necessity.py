"""Constructions showing that each condition of Theorem 1 is needed: the observation
marginals agree exactly (delta = 0, KL = 0) and yet the model decides worse (Delta_q > 0).

(i) rank-deficient ``P_C`` (condition 2 fails): an i.i.d. label prior, where every row of
    ``P_C`` is the same unigram ``pi`` (rank 1). ``q(x) = prod_n (pi^T E)(x_n)`` only sees the
    mixture ``pi^T E``, so any ``E_q`` with ``pi^T E_q = pi^T E_r`` matches the marginal:
    - ``iid_swap``: uniform ``pi``, two emission rows exchanged;
    - ``iid_nullspace``: random ``pi``, ``E_q = E_r + t v w^T`` with ``pi . v = 0`` and
      ``sum(w) = 0`` (a move along the null space of ``P_C``), as large as positivity allows.
(ii) non-factorised emission (condition 1 fails) with a full-rank ``P_C``:
    ``q(x | c) = p_r(x | s(c))`` for a bijection ``s`` of label sequences with
    ``p(s(c)) = p(c)`` (a prior with ties in pairs): ``q(x) = p_r(x)`` exactly.
"""

from __future__ import annotations

import numpy as np

from uasr.theory.discrete import compare, factorised_likelihood, joint
from uasr.theory.pc import pc_from_prior, pinv_norms, sigma_min


def _report(name: str, prior: np.ndarray, jr: np.ndarray, jq: np.ndarray, C: int, N: int,
            what: str) -> dict:
    P = pc_from_prior(prior, C, N)
    m = compare(jr, jq, C, N)
    out = {"control": name, "what": what, "sigma_min": float(sigma_min(P)),
           "pinv_induced": float(pinv_norms(P)["induced"])}
    out.update({k: float(v) for k, v in m.items()})
    return out


def iid_swap(rng: np.random.Generator, C: int = 3, X: int = 4, N: int = 3) -> dict:
    """(i) uniform i.i.d. prior, model = truth with emission rows 0 and 1 exchanged."""
    prior = np.full(C ** N, 1.0 / C ** N)
    E_r = rng.dirichlet(np.ones(X), size=C)
    E_q = E_r.copy()
    E_q[[0, 1]] = E_r[[1, 0]]
    return _report("iid_swap", prior, joint(prior, factorised_likelihood(E_r, N)),
                   joint(prior, factorised_likelihood(E_q, N)), C, N,
                   "rank-deficient P_C (uniform i.i.d. prior), emission rows 0<->1 swapped")


def iid_nullspace(rng: np.random.Generator, C: int = 3, X: int = 4, N: int = 3) -> dict:
    """(i') random i.i.d. prior ``pi``; ``E_q`` moved along the null space of ``P_C``."""
    pi = rng.dirichlet(np.ones(C))
    prior = pi
    for _ in range(N - 1):
        prior = np.multiply.outer(prior, pi)
    prior = prior.reshape(-1)
    E_r = rng.dirichlet(np.ones(X), size=C)
    # Move mass of label 0 from symbol a to b and of label 1 from b to a, weighted by 1/pi so
    # that pi^T E is unchanged; a, b = the two most likely symbols of labels 0 and 1.
    a, b = int(E_r[0].argmax()), int(E_r[1].argmax())
    if a == b:
        b = int(np.argsort(E_r[1])[-2])
    t = min(E_r[0, a] * pi[0], E_r[1, b] * pi[1])
    w = np.zeros(X)
    w[a], w[b] = -1.0, 1.0
    E_q = E_r.copy()
    E_q[0] += t / pi[0] * w
    E_q[1] -= t / pi[1] * w
    E_q = np.clip(E_q, 0.0, None)  # removes -1e-17 round-off only
    return _report("iid_nullspace", prior, joint(prior, factorised_likelihood(E_r, N)),
                   joint(prior, factorised_likelihood(E_q, N)), C, N,
                   "rank-deficient P_C (random i.i.d. prior), E_q = E_r + t v w^T with P_C v = 0")


def nonfactorised(rng: np.random.Generator, C: int = 3, X: int = 4, N: int = 3) -> dict:
    """(ii) full-rank prior with ties in pairs; ``q(x|c) = p_r(x | s(c))``, ``s`` swaps pairs."""
    K = C ** N
    base = rng.dirichlet(np.ones(K))
    perm = rng.permutation(K)
    s = np.arange(K)
    prior = base.copy()
    for i in range(0, K - 1, 2):  # pair up sequences, give each pair its mean probability
        a, b = perm[i], perm[i + 1]
        prior[a] = prior[b] = (base[a] + base[b]) / 2
        s[a], s[b] = b, a
    E_r = rng.dirichlet(np.ones(X), size=C)
    lik_r = factorised_likelihood(E_r, N)
    out = _report("nonfactorised", prior, joint(prior, lik_r), joint(prior, lik_r[s]), C, N,
                  "full-rank P_C, non-factorised q(x|c) = p_r(x|s(c)), s a prior-preserving "
                  "swap of sequence pairs")
    return out


def run_controls(seed: int = 0, C: int = 3, X: int = 4, N: int = 3,
                 max_draws: int = 50) -> list[dict]:
    """All controls, deterministic given ``seed``. Each is an existence construction, so for
    each the first of up to ``max_draws`` seeded draws with ``Delta_q > 0`` is kept
    (``draws`` says how many were needed)."""
    out = []
    for i, f in enumerate((iid_swap, iid_nullspace, nonfactorised)):
        for d in range(max_draws):
            r = f(np.random.default_rng([seed, i, d]), C, X, N)
            if r["Delta_q"] > 1e-9:
                break
        r["draws"] = d + 1
        out.append(r)
    return out
