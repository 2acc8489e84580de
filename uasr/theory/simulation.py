"""The paper's bound simulation (|X| = 4, |C| = 3, N = 3 by default), vectorised over trials.

Per trial (the paper's sampling scheme was not recovered; paper-notes §4.2 is followed):
- a prior over the ``C^N`` label sequences, either Dirichlet(1) over all sequences
  (family ``dirichlet``) or a random bigram LM with Dirichlet(1) start and transition rows
  (family ``bigram``), alternating between trials;
- true emissions ``E_r``: every row Dirichlet(1) over ``X``;
- model emissions ``E_q = (1 - lam) E_r + lam E_new`` with ``E_new`` a fresh Dirichlet draw and
  ``lam`` log-uniform in ``[lam_min, 1]``: from a tiny perturbation to total mismatch
  (``lam = 1``: an unrelated emission model);
- the same prior in truth and model (the theorem assumes a perfect LM).
Trials whose ``sigma_min(P_C) < rank_tol`` are set aside and counted (condition 2 fails).
"""

from __future__ import annotations

import numpy as np

from uasr.theory.discrete import analyse
from uasr.theory.pc import pc_from_chain, chain_from_bigram, pc_from_prior, sequence_index, \
    sigma_min

FAMILIES = ("dirichlet", "bigram")


def bigram_prior(start: np.ndarray, trans: np.ndarray, N: int) -> np.ndarray:
    """``[..., C^N]`` sequence probabilities of bigram priors ``start [..., C]``,
    ``trans [..., C, C]`` (no sentence end: every sequence has length N)."""
    C = start.shape[-1]
    idx = sequence_index(C, N)
    p = start[..., idx[:, 0]]
    for n in range(1, N):
        p = p * trans[..., idx[:, n - 1], idx[:, n]]
    return p


def sample_trials(rng: np.random.Generator, trials: int, C: int, X: int, N: int,
                  lam_min: float) -> dict[str, np.ndarray]:
    """Draw ``trials`` problems (see the module docstring); alternates prior families."""
    K = C ** N
    family = np.arange(trials) % 2  # 0 dirichlet, 1 bigram
    prior = rng.dirichlet(np.ones(K), size=trials)
    start = rng.dirichlet(np.ones(C), size=trials)
    trans = rng.dirichlet(np.ones(C), size=(trials, C))
    big = family == 1
    prior[big] = bigram_prior(start[big], trans[big], N)
    E_r = rng.dirichlet(np.ones(X), size=(trials, C))
    E_new = rng.dirichlet(np.ones(X), size=(trials, C))
    lam = np.exp(rng.uniform(np.log(lam_min), 0.0, size=trials))
    E_q = (1 - lam[:, None, None]) * E_r + lam[:, None, None] * E_new
    return {"family": family, "prior": prior, "start": start, "trans": trans, "E_r": E_r,
            "E_q": E_q, "lam": lam}


def run_bound_simulation(trials: int = 10_000, C: int = 3, X: int = 4, N: int = 3,
                         seed: int = 0, lam_min: float = 1e-4, rank_tol: float = 1e-6,
                         chunk: int = 1000) -> dict[str, np.ndarray]:
    """Run the simulation; returns per-trial arrays (all trials, rank-deficient ones flagged
    by ``kept == False`` and left without bound terms)."""
    if N < C:
        raise ValueError(f"N={N} < |C|={C}: P_C cannot have full column rank; use N >= |C|")
    rng = np.random.default_rng(seed)
    parts: list[dict[str, np.ndarray]] = []
    for lo in range(0, trials, chunk):
        t = sample_trials(rng, min(chunk, trials - lo), C, X, N, lam_min)
        P = pc_from_prior(t["prior"], C, N)
        # The bigram P_C also comes from the forward recursion: check it on the first trial.
        b = np.nonzero(t["family"] == 1)[0]
        if b.size:
            i = b[0]
            Pr = pc_from_chain(chain_from_bigram(t["trans"][i], t["start"][i]), N)
            if not np.allclose(Pr, P[i], atol=1e-12):
                raise AssertionError("P_C recursion disagrees with enumeration")
        smin = sigma_min(P)
        kept = smin >= rank_tol
        res = analyse(t["prior"][kept], t["E_r"][kept], t["E_q"][kept], N)
        full = {k: np.full(len(kept), np.nan) for k in res}
        for k, v in res.items():
            full[k][kept] = v
        full.update(family=t["family"], lam=t["lam"], sigma_min=smin, kept=kept)
        parts.append(full)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def summarise(r: dict[str, np.ndarray]) -> dict:
    """Counts, violations and ratio statistics of a :func:`run_bound_simulation` result."""
    kept = r["kept"].astype(bool)
    out: dict = {"trials": int(kept.size), "kept": int(kept.sum()),
                 "rank_deficient_set_aside": int((~kept).sum()),
                 "per_family": {f: int((r["family"][kept] == i).sum())
                                for i, f in enumerate(FAMILIES)}}
    eps = 1e-12  # relative slack for round-off when both sides are ~0
    rows = []
    for lhs in ("D_posterior", "D_joint", "D_position", "Delta_q"):
        for norm in ("induced", "entrywise"):
            for form in ("bound", "pinsker"):
                a = r[lhs][kept] ** (2 if form == "pinsker" else 1)
                b = r[f"{form}_{norm}"][kept]
                pos = b > 0
                ratio = a[pos] / b[pos]
                viol = int((a > b * (1 + eps) + 1e-15).sum())
                rows.append({"lhs": lhs + ("^2" if form == "pinsker" else ""), "norm": norm,
                             "form": form, "violations": viol,
                             "ratio_median": float(np.median(ratio)),
                             "ratio_max": float(np.max(ratio)),
                             "zero_rhs": int((~pos).sum())})
    out["checks"] = rows
    out["Delta_q_le_D_posterior_violations"] = int(
        (r["Delta_q"][kept] > r["D_posterior"][kept] + 1e-12).sum())
    out["sigma_min_range"] = [float(r["sigma_min"][kept].min()), float(r["sigma_min"][kept].max())]
    out["delta_range"] = [float(r["delta"][kept].min()), float(r["delta"][kept].max())]
    out["trials_with_Delta_q_positive"] = int((r["Delta_q"][kept] > 1e-12).sum())
    return out
