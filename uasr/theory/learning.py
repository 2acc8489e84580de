"""Learning check: does minimising the sequence-level cross-entropy drive the bound to 0?

Sample ``S`` sequences from a true model (prior over ``C^N`` label sequences, factorised
emissions ``E_r``), train a table emission ``q_theta(x|c) = softmax_x(theta)[c, x]`` by
minimising ``-(1/S) sum_s log sum_c p(c) prod_n q_theta(x_{s,n} | c_n)`` through
:func:`uasr.graph.total_score` (the true prior as a prefix-tree acceptor, ``one_to_one``
topology), and record ``KL(p_r(x) || q_theta(x))``, ``Delta_q``, ``D_q`` and the bound
``N^2 ||P_C^+||_1 delta`` over training steps, all exact by enumeration.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from uasr.graph import Acceptor, compose, one_to_one, total_score
from uasr.theory.discrete import analyse
from uasr.theory.pc import sequence_index


def prefix_tree_acceptor(prior: np.ndarray, C: int, N: int) -> Acceptor:
    """The prior over ``C^N`` sequences as a tree acceptor: states are prefixes, an arc adds
    label ``c`` with weight ``log p(c | prefix)``, final weight 0 at depth ``N``."""
    prior = np.asarray(prior, np.float64).reshape((C,) * N)
    states: dict[tuple[int, ...], int] = {(): 0}
    src, dst, lab, w = [], [], [], []
    frontier = [()]
    for depth in range(N):
        nxt = []
        for pre in frontier:
            mass = prior[pre].sum()
            for c in range(C):
                m = prior[pre + (c,)].sum()
                if m <= 0:
                    continue
                s = states[pre + (c,)] = len(states)
                src.append(states[pre])
                dst.append(s)
                lab.append(c)
                w.append(math.log(m / mass))
                nxt.append(pre + (c,))
        frontier = nxt
    final = torch.full((len(states),), -math.inf, dtype=torch.float64)
    for pre in frontier:
        final[states[pre]] = 0.0
    return Acceptor(num_states=len(states), src=torch.tensor(src), dst=torch.tensor(dst),
                    label=torch.tensor(lab), weights=torch.tensor(w, dtype=torch.float64),
                    final=final)


def sample_sequences(rng: np.random.Generator, prior: np.ndarray, E_r: np.ndarray, N: int,
                     S: int) -> np.ndarray:
    """``[S, N]`` observation sequences drawn from the true model."""
    C, X = E_r.shape
    c = sequence_index(C, N)[rng.choice(C ** N, size=S, p=prior)]
    u = rng.random((S, N, 1))
    return (u > np.cumsum(E_r[c], axis=-1)).sum(-1).clip(max=X - 1)


def train_table(x: np.ndarray, prior: np.ndarray, E_r: np.ndarray, N: int, *, steps: int = 300,
                lr: float = 0.05, eval_every: int = 5, seed: int = 0,
                init: np.ndarray | None = None) -> dict:
    """Train ``theta`` on sequences ``x [S, N]``; returns the curves and the final state.

    Identical sequences are scored once and weighted by their count (the loss is the same;
    at most ``|X|^N`` distinct sequences exist).
    """
    C, X = E_r.shape
    graph = compose(prefix_tree_acceptor(prior, C, N), one_to_one())
    uniq, counts = np.unique(x, axis=0, return_counts=True)
    xs = torch.as_tensor(uniq, dtype=torch.int64)
    wts = torch.as_tensor(counts / counts.sum(), dtype=torch.float64)
    lengths = torch.full((len(uniq),), N, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    theta = (0.1 * torch.randn(C, X, generator=gen, dtype=torch.float64) if init is None
             else torch.as_tensor(init, dtype=torch.float64).clone()).requires_grad_()
    opt = torch.optim.Adam([theta], lr=lr)
    curves: dict[str, list[float]] = {k: [] for k in ("step", "loss", "kl", "Delta_q",
                                                      "D_posterior", "delta", "bound")}
    t0 = time.time()
    for step in range(steps + 1):
        logq = torch.log_softmax(theta, dim=1)  # normalised over x: a generative emission
        em = logq.t()[xs]  # [B, N, C]: emissions[b, n, c] = log q(x_{b,n} | c)
        loss = -(wts * total_score(em, lengths, graph, dtype=torch.float64)).sum()
        if step % eval_every == 0 or step == steps:
            E_q = logq.detach().exp().numpy()
            m = analyse(prior, E_r, E_q, N)
            curves["step"].append(step)
            curves["loss"].append(loss.item())
            for k in ("kl", "Delta_q", "D_posterior", "delta"):
                curves[k].append(float(m[k]))
            curves["bound"].append(float(m["bound_induced"]))
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"curves": curves, "E_q": torch.softmax(theta, 1).detach().numpy(),
            "distinct_sequences": int(len(uniq)), "seconds": time.time() - t0}


def _fit(x, prior, E_r, N, steps, lr, seed, restarts, eval_every) -> dict:
    best, finals = None, []
    for r in range(restarts):
        res = train_table(x, prior, E_r, N, steps=steps, lr=lr, seed=1000 * seed + r,
                          eval_every=eval_every)
        res["restart"] = r
        finals.append(res["curves"]["loss"][-1])
        if best is None or finals[-1] < best["curves"]["loss"][-1]:
            best = res
    best["E_q"] = best["E_q"].tolist()
    best["restart_final_losses"] = finals
    # The loss the true emissions reach on the same sample: a perfect fit's reference.
    best["loss_true_emissions"] = train_table(x, prior, E_r, N, steps=0,
                                              init=np.log(E_r))["curves"]["loss"][0]
    return best


def run_learning_check(sizes=(100, 1000, 10000), C: int = 3, X: int = 4, N: int = 3,
                       seed: int = 0, steps: int = 300, lr: float = 0.05,
                       restarts: int = 2, eval_every: int = 10, iid_control: bool = True) -> dict:
    """One true model (Dirichlet prior over sequences, Dirichlet emission rows; seeded), one
    training run per ``S`` and restart; per ``S`` the restart with the lowest final training
    loss is kept (an unsupervised choice: no labels are used).

    ``iid_control``: also train with the largest ``S`` under an i.i.d. prior (rank-1
    ``P_C``, condition 2 fails) with the same emissions, stored as run ``"iid-<S>"``: the
    marginal can be fitted while the labels stay unidentified.
    """
    rng = np.random.default_rng(seed)
    prior = rng.dirichlet(np.ones(C ** N))
    E_r = rng.dirichlet(np.ones(X), size=C)
    truth = analyse(prior, E_r, E_r, N)
    out: dict = {"C": C, "X": X, "N": N, "seed": seed, "steps": steps, "lr": lr,
                 "restarts": restarts, "prior": prior.tolist(), "E_r": E_r.tolist(),
                 "pinv_induced": float(truth["pinv_induced"]), "E_star": float(truth["E_star"]),
                 "runs": {}}
    for S in sizes:
        x = sample_sequences(rng, prior, E_r, N, S)
        out["runs"][str(S)] = _fit(x, prior, E_r, N, steps, lr, seed, restarts, eval_every)
    if iid_control:
        pi = rng.dirichlet(np.ones(C))
        iid = pi
        for _ in range(N - 1):
            iid = np.multiply.outer(iid, pi)
        iid = iid.reshape(-1)
        S = max(sizes)
        x = sample_sequences(rng, iid, E_r, N, S)
        run = _fit(x, iid, E_r, N, steps, lr, seed, restarts, eval_every)
        run["iid_prior_unigram"] = pi.tolist()
        run["E_star"] = float(analyse(iid, E_r, E_r, N)["E_star"])
        out["runs"][f"iid-{S}"] = run
    return out
