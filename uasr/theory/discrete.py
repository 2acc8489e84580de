"""Exact quantities of the theory for small discrete problems, by enumeration.

Label sequences ``c`` (``K = |C|^N``) and observation sequences ``x`` (``M = |X|^N``) are
indexed row-major (:func:`uasr.theory.pc.sequence_index`). A joint is an array
``[..., K, M]`` of ``p(x, c)``; leading dimensions batch independent problems (trials), so a
simulation of 10^4 trials is a few array operations.

Error definitions (sequence level, paper-notes §1.2/§6):
- ``E*  = 1 - sum_x max_c p_r(x, c)``: the Bayes error under the truth;
- ``E_q = 1 - sum_x p_r(x, ĉ_q(x))`` with ``ĉ_q(x) = argmax_c q(x, c)`` (ties: lowest index):
  the error of the model's Bayes rule, measured under the truth;
- ``Delta_q = E_q - E*``.

Candidate definitions of ``D_q`` (the paper's exact one was not recovered):
- ``posterior`` (primary): ``sum_x p_r(x) sum_c |p_r(c|x) - q(c|x)|``; ``Delta_q <= D_q`` holds;
- ``joint``: ``sum_{x,c} |p_r(x, c) - q(x, c)|``;
- ``position``: ``sum_x p_r(x) sum_n sum_c |p_r(c_n = c | x) - q(c_n = c | x)|``.
"""

from __future__ import annotations

import numpy as np

from uasr.theory.pc import pc_from_prior, pinv_norms, sequence_index

D_DEFINITIONS = ("posterior", "joint", "position")


def factorised_likelihood(E: np.ndarray, N: int) -> np.ndarray:
    """``[..., K, M]`` likelihoods ``prod_n E[c_n, x_n]`` of emission matrices ``E`` ``[..., C, X]``
    (rows ``p(x | c)``): paper condition 1."""
    E = np.asarray(E, np.float64)
    C, X = E.shape[-2:]
    ci, xi = sequence_index(C, N), sequence_index(X, N)
    L = np.ones(E.shape[:-2] + (C ** N, X ** N))
    for n in range(N):
        L = L * E[..., ci[:, n][:, None], xi[:, n][None, :]]
    return L


def joint(prior: np.ndarray, likelihood: np.ndarray) -> np.ndarray:
    """``p(x, c) = p(c) p(x | c)``: prior ``[..., K]``, likelihood ``[..., K, M]``."""
    return np.asarray(prior, np.float64)[..., :, None] * likelihood


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b > 0)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``KL(p || q)`` over the last axis (natural log); ``inf`` where q = 0 < p."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
    return t.sum(-1)


def compare(joint_r: np.ndarray, joint_q: np.ndarray, C: int, N: int) -> dict[str, np.ndarray]:
    """All enumeration quantities for true and model joints ``[..., K, M]``.

    Returns a dict of ``[...]`` arrays: ``delta``, ``kl``, ``E_star``, ``E_q``, ``Delta_q`` and
    ``D_<definition>`` for each of :data:`D_DEFINITIONS`.
    """
    jr, jq = np.asarray(joint_r, np.float64), np.asarray(joint_q, np.float64)
    if jr.shape != jq.shape or jr.shape[-2] != C ** N:
        raise ValueError(f"joints must both be [..., C^N={C ** N}, M], got {jr.shape} and "
                         f"{jq.shape}")
    pr, q = jr.sum(-2), jq.sum(-2)  # marginals over x
    out = {"delta": np.abs(pr - q).sum(-1), "kl": kl_divergence(pr, q)}
    out["E_star"] = 1.0 - jr.max(-2).sum(-1)
    chat = jq.argmax(-2)  # model decision per x
    out["E_q"] = 1.0 - np.take_along_axis(jr, chat[..., None, :], -2)[..., 0, :].sum(-1)
    out["Delta_q"] = out["E_q"] - out["E_star"]
    post_r, post_q = _safe_div(jr, pr[..., None, :]), _safe_div(jq, q[..., None, :])
    out["D_posterior"] = (pr * np.abs(post_r - post_q).sum(-2)).sum(-1)
    out["D_joint"] = np.abs(jr - jq).sum((-2, -1))
    onehot = np.zeros((C ** N, N, C))
    onehot[np.arange(C ** N)[:, None], np.arange(N)[None, :], sequence_index(C, N)] = 1.0
    pos_r = np.einsum("...km,knc->...mnc", post_r, onehot)
    pos_q = np.einsum("...km,knc->...mnc", post_q, onehot)
    out["D_position"] = (pr * np.abs(pos_r - pos_q).sum((-2, -1))).sum(-1)
    return out


def bound_terms(P: np.ndarray, delta: np.ndarray, kl: np.ndarray) -> dict[str, np.ndarray]:
    """Right-hand sides of Theorem 1 and its Pinsker corollary for ``P_C`` ``[..., N, C]``.

    ``bound_<norm> = N^2 ||P_C^+||_1 delta`` and ``pinsker_<norm> = 2 N^4 ||P_C^+||_1^2 KL``
    for ``norm`` in (``induced``, ``entrywise``).
    """
    N = np.shape(P)[-2]
    out = {}
    for name, v in pinv_norms(P).items():
        out[f"pinv_{name}"] = v
        out[f"bound_{name}"] = N ** 2 * v * delta
        out[f"pinsker_{name}"] = 2.0 * N ** 4 * v ** 2 * kl
    return out


def analyse(prior_r: np.ndarray, E_r: np.ndarray, E_q: np.ndarray, N: int,
            prior_q: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Everything for factorised true and model emissions ``[..., C, X]`` sharing a prior
    ``[..., C^N]`` (the theorem's setting; ``prior_q`` may differ for experiments)."""
    C = np.shape(E_r)[-2]
    jr = joint(prior_r, factorised_likelihood(E_r, N))
    jq = joint(prior_r if prior_q is None else prior_q, factorised_likelihood(E_q, N))
    out = compare(jr, jq, C, N)
    out.update(bound_terms(pc_from_prior(prior_r, C, N), out["delta"], out["kl"]))
    return out
