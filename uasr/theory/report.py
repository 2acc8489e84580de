"""Figures, RESULTS.md and results.json of ``recipes/simulation`` from the step results.

Every number written comes from a JSON/NPZ file of the exp dir, each of which records the
command that produced it; RESULTS.md prints that command beside its table.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

PAPER_LIBRISPEECH_SIGMA_MIN = 3e-4  # paper-notes §1.4 (N and label set not recovered)
FIGURES = {"bound": "figures/bound.png", "pinsker": "figures/pinsker.png",
           "learning": "figures/learning.png", "realtext": "figures/realtext_pc.png"}


def _g(x: float, digits: int = 3) -> str:
    """Compact number formatting for tables."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def _load(exp: Path, name: str) -> dict:
    p = exp / f"{name}.json"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: run 'uasr simulate {name} --exp-dir {exp}' "
                                f"(or ./run.sh --recipe simulation) first")
    return json.loads(p.read_text())


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def fig_bound(r: dict, path: Path, N: int) -> None:
    plt = _plt()
    k = r["kept"].astype(bool)
    fam = r["family"][k]
    d, D, B = r["delta"][k], r["D_posterior"][k], r["bound_induced"][k]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    for i, (name, col) in enumerate((("Dirichlet prior", "C0"), ("bigram prior", "C1"))):
        m = fam == i
        ax[0].scatter(d[m], D[m], s=2, alpha=0.3, color=col, label=f"$D_q$ ({name})")
    ax[0].scatter(d, B, s=2, alpha=0.15, color="0.5", label=r"bound $N^2\|P_C^+\|_1\delta$")
    ax[0].set(xscale="log", yscale="log", xlabel=r"$\delta=\sum_x|p_r(x)-q(x)|$",
              ylabel="value", title=r"$D_q$ (posterior $\ell_1$) and its bound per trial")
    ax[0].legend(markerscale=4, fontsize=8)
    ax[1].scatter(B, D, s=2, alpha=0.3)
    lim = [min(B.min(), D[D > 0].min()), max(B.max(), D.max())]
    ax[1].plot(lim, lim, "k--", lw=1, label="$D_q$ = bound")
    ax[1].set(xscale="log", yscale="log", xlabel=r"bound $N^2\|P_C^+\|_1\delta$ (induced norm)",
              ylabel=r"$D_q$", title="every point below the line = bound holds")
    ax[1].legend(fontsize=8)
    bins = np.linspace(-8, 0.5, 86)
    for name in ("D_posterior", "D_joint", "D_position"):
        ratio = r[name][k] / B
        ax[2].hist(np.log10(ratio[ratio > 0]), bins=bins, histtype="step", label=name)
    pos = r["Delta_q"][k] > 0
    ax[2].hist(np.log10(r["Delta_q"][k][pos] / B[pos]), bins=bins, histtype="step",
               label=f"Delta_q (>0 in {pos.sum()} trials)")
    ax[2].axvline(0, color="k", ls="--", lw=1)
    ax[2].set(xlabel=r"$\log_{10}$(lhs / bound)", ylabel="trials",
              title=f"ratio to the bound ({k.sum()} trials, N={N})")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_pinsker(r: dict, path: Path) -> None:
    plt = _plt()
    k = r["kept"].astype(bool)
    P = r["pinsker_induced"][k]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4.5))
    for a, name, lab in ((ax[0], "Delta_q", r"$\Delta_q^2$"), (ax[1], "D_posterior", r"$D_q^2$")):
        y = r[name][k] ** 2
        m = y > 0
        a.scatter(P[m], y[m], s=2, alpha=0.3)
        lim = [P[m].min(), P[m].max()]
        a.plot(lim, lim, "k--", lw=1, label=lab + " = bound")
        a.set(xscale="log", yscale="log", xlabel=r"$2N^4\|P_C^+\|_1^2\,KL(p_r\|q)$",
              ylabel=lab, title=f"{lab} vs the Pinsker bound ({m.sum()} trials with {lab}>0)")
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_learning(lr: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3))
    for S, run in lr["runs"].items():
        c = run["curves"]
        iid = S.startswith("iid")
        lab = f"S={S.split('-')[-1]}, i.i.d. prior (rank 1)" if iid else f"S={S}"
        ls = "--" if iid else "-"
        ax[0].plot(c["step"], c["kl"], ls, label=lab)
        ax[1].plot(c["step"], c["Delta_q"], ls, label=lab)
        if not iid:  # with rank(P_C) = 1 the theorem does not apply
            ax[2].plot(c["step"], c["bound"], ls, label=lab)
    ax[0].set(yscale="log", xlabel="Adam step", ylabel=r"$KL(p_r(x)\|q_\theta(x))$",
              title="marginal KL (exact)")
    ax[1].set(xlabel="Adam step", ylabel=r"$\Delta_q=E_q-E^*$", title="error mismatch")
    ax[2].set(yscale="log", xlabel="Adam step", ylabel=r"$N^2\|P_C^+\|_1\delta$",
              title="Theorem 1 bound")
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_realtext(rt: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.3))
    sources = list(dict.fromkeys(row["source"] for row in rt["rows"]))
    for s in sources:
        rows = [row for row in rt["rows"] if row["source"] == s]
        Ns = [row["N"] for row in rows]
        ax[0].plot(Ns, [max(row["sigma_min"], 1e-20) for row in rows], "o-", label=s)
        ax[1].plot(Ns, [row["pinv_induced"] for row in rows], "o-", label=s)
    ax[0].axhline(PAPER_LIBRISPEECH_SIGMA_MIN, color="k", ls=":", label="paper, LibriSpeech (~3e-4)")
    ax[0].axvline(len(rt["phones"]), color="0.6", lw=1)
    ax[0].set(xscale="log", yscale="log", xlabel="N", ylabel=r"$\sigma_{min}(P_C)$ ($10^{-20}$ = 0)",
              title=f"KJV phones (|C|={len(rt['phones'])}; N<|C| cannot be full rank)")
    ax[1].set(xscale="log", yscale="log", xlabel="N", ylabel=r"$\|P_C^+\|_1$ (induced)",
              title="pseudo-inverse norm")
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _md_bound(b: dict) -> list[str]:
    L = ["| lhs | norm of P_C^+ | form | violations | median ratio | max ratio |",
         "|---|---|---|---:|---:|---:|"]
    for c in b["checks"]:
        rhs = "N² ‖P_C⁺‖₁ δ" if c["form"] == "bound" else "2 N⁴ ‖P_C⁺‖₁² KL"
        L.append(f"| {c['lhs']} ≤ {rhs} | {c['norm']} | {c['form']} | {c['violations']} | "
                 f"{_g(c['ratio_median'])} | {_g(c['ratio_max'])} |")
    return L


def write_report(exp: Path, out: Path) -> dict:
    """Write ``out/RESULTS.md``, ``out/results.json`` and ``out/figures/*.png``."""
    t0 = time.time()
    exp, out = Path(exp), Path(out)
    b, ctl, lr, rt = (_load(exp, n) for n in ("bound", "controls", "learn", "realtext"))
    r = dict(np.load(exp / b["trials_file"]))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    fig_bound(r, out / FIGURES["bound"], b["N"])
    fig_pinsker(r, out / FIGURES["pinsker"])
    fig_learning(lr, out / FIGURES["learning"])
    fig_realtext(rt, out / FIGURES["realtext"])

    main = {c["lhs"] + "/" + c["norm"] + "/" + c["form"]: c for c in b["checks"]}
    head_b = main["D_posterior/induced/bound"]
    head_p = main["Delta_q^2/induced/pinsker"]
    learn_final = {S: {k: run["curves"][k][-1] for k in ("loss", "kl", "Delta_q", "D_posterior",
                                                          "delta", "bound")}
                   | {"loss_true_emissions": run["loss_true_emissions"],
                      "restart_final_losses": run["restart_final_losses"]}
                   for S, run in lr["runs"].items()}
    seconds = {n: d["seconds"] for n, d in (("bound", b), ("controls", ctl), ("learn", lr),
                                            ("realtext", rt))}
    seconds["report (figures)"] = round(time.time() - t0, 1)
    results = {
        "bound": {k: v for k, v in b.items()},
        "controls": ctl["controls"],
        "learning": {"C": lr["C"], "X": lr["X"], "N": lr["N"], "pinv_induced": lr["pinv_induced"],
                     "E_star": lr["E_star"], "steps": lr["steps"], "final": learn_final,
                     "command": lr["command"]},
        "realtext": {k: rt[k] for k in ("text", "estimator", "eos", "rows", "command")},
        "seconds": seconds,
        "figures": FIGURES,
    }
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, out / "results.json")

    C, X, N = b["C"], b["X"], b["N"]
    L = ["# recipes/simulation: results",
         "",
         "Generated by `./run.sh --recipe simulation` (stage 4 writes this file from the JSON "
         "results of stages 0-3; every number below comes from the command printed beside its "
         "table). Definitions: `uasr/theory/discrete.py`; method and choices: README.md.",
         "",
         f"Wall time of the steps on this machine (2 shared CPU cores): "
         + ", ".join(f"{n} {s:.0f} s" for n, s in seconds.items())
         + f"; total {sum(seconds.values()):.0f} s (each step's own timer; environment "
         f"start-up not included).",
         "",
         f"## 1. Theorem 1 on random instances (|X|={X}, |C|={C}, N={N})",
         "",
         f"Command: `{b['command']}`",
         "",
         f"{b['trials']} trials ({b['per_family']['dirichlet']} Dirichlet priors over the "
         f"{C ** N} sequences, {b['per_family']['bigram']} random bigram priors; mismatch "
         f"λ log-uniform in [{b['lam_min']:g}, 1]); {b['rank_deficient_set_aside']} set aside as "
         f"rank-deficient (σ_min(P_C) < {b['rank_tol']:g}); {b['kept']} kept. σ_min(P_C) over "
         f"kept trials: {_g(b['sigma_min_range'][0])} … {_g(b['sigma_min_range'][1])}; δ: "
         f"{_g(b['delta_range'][0])} … {_g(b['delta_range'][1])}. Δ_q > 0 in "
         f"{b['trials_with_Delta_q_positive']} trials; Δ_q ≤ D_q (posterior) violated in "
         f"{b['Delta_q_le_D_posterior_violations']}.",
         "",
         f"**Headline: D_q (posterior ℓ1) ≤ N²‖P_C⁺‖₁δ (induced norm): {head_b['violations']} "
         f"violations, D_q/bound median {_g(head_b['ratio_median'])}, max "
         f"{_g(head_b['ratio_max'])}. Pinsker form Δ_q² ≤ 2N⁴‖P_C⁺‖₁²KL: "
         f"{head_p['violations']} violations, median ratio {_g(head_p['ratio_median'])}, max "
         f"{_g(head_p['ratio_max'])}.**",
         "",
         *_md_bound(b),
         "",
         "(A ratio is lhs/rhs per trial; median 0 for Δ_q means most trials have Δ_q = 0.)",
         "",
         f"![D_q against delta and the bound]({FIGURES['bound']})",
         "",
         f"![Pinsker form]({FIGURES['pinsker']})",
         "",
         "## 2. Necessity controls (the marginals match exactly, the decisions do not)",
         "",
         f"Command: `{ctl['command']}`",
         "",
         "| control | construction | σ_min(P_C) | ‖P_C⁺‖₁ | δ | KL | E* | E_q | Δ_q | D_q (posterior) | draws |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in ctl["controls"]:
        L.append(f"| {c['control']} | {c['what']} | {_g(c['sigma_min'])} | "
                 f"{_g(c['pinv_induced'])} | {_g(abs(c['delta']))} | {_g(abs(c['kl']))} | "
                 f"{_g(c['E_star'])} | {_g(c['E_q'])} | {_g(c['Delta_q'])} | "
                 f"{_g(c['D_posterior'])} | {c['draws']} |")
    L += ["",
          "With δ = 0 the right-hand side of Theorem 1 is 0, yet Δ_q > 0: without condition 2 "
          "(first two rows, rank(P_C) = 1) or condition 1 (last row, full-rank P_C) the bound "
          "cannot hold. `draws`: the first seeded draw with Δ_q > 0 is kept (existence "
          "constructions).",
          "",
          f"## 3. Learning check through `uasr.graph.total_score`",
          "",
          f"Command: `{lr['command']}`",
          "",
          f"One true model (|C|={lr['C']}, |X|={lr['X']}, N={lr['N']}, Dirichlet prior, "
          f"‖P_C⁺‖₁ = {_g(lr['pinv_induced'])}, E* = {_g(lr['E_star'])}); a table emission "
          f"trained with Adam (lr {lr['lr']}, {lr['steps']} full-batch steps, "
          f"{lr['restarts']} random restarts, the one with the lowest final training loss kept) "
          f"on S sampled sequences. Values at the last step:",
          "",
          "| S | train loss | loss of true emissions | KL(p_r‖q_θ) | δ | Δ_q | D_q | bound N²‖P_C⁺‖₁δ |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for S, f in learn_final.items():
        if S.startswith("iid"):
            f = dict(f, bound=float("nan"))
        L.append(f"| {S} | {_g(f['loss'], 5)} | {_g(f['loss_true_emissions'], 5)} | "
                 f"{_g(f['kl'])} | {_g(f['delta'])} | {_g(f['Delta_q'])} | "
                 f"{_g(f['D_posterior'])} | {_g(f['bound'])} |")
    iid = [S for S in lr["runs"] if S.startswith("iid")]
    if iid:
        L += ["", f"Row `{iid[0]}`: the same emissions and S, but an i.i.d. label prior "
              f"(rank(P_C) = 1, E* = {_g(lr['runs'][iid[0]]['E_star'])}); the theorem does not "
              "apply there (bound n/a)."]
    L += ["", f"![learning curves]({FIGURES['learning']})", "",
          "## 4. Real text: P_C of phone LMs on the KJV Bible", "",
          f"Command: `{rt['command']}`", "",
          f"Text: {rt['text']['lines']} KJV verses (Debian bible-kjv-text), "
          f"{rt['text']['word_tokens']} word tokens, {rt['text']['oov_tokens']} OOV tokens "
          f"({rt['text']['oov_types']} types, e.g. {', '.join(rt['text']['top_oov'][:5])}) "
          f"skipped, {rt['text']['phone_tokens']} phones, |C| = {len(rt['phones'])}. LM: "
          f"{rt['estimator']}; P_C by forward-backward over LM histories, eos = "
          f"`{rt['eos']}` (first N phones of verses at least N long). Empirical rows count "
          f"position-dependent unigrams over the verses themselves. Paper (LibriSpeech "
          f"transcriptions): σ_min ≈ 3e-4.", "",
          "| source | N | rank | σ_min (|C|-th sv) | smallest non-zero sv | ‖P_C⁺‖₁ induced | ‖P_C⁺‖₁ entrywise | sentences used |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rt["rows"]:
        L.append(f"| {row['source']} | {row['N']} | {row['rank']} | {_g(row['sigma_min'])} | "
                 f"{_g(row['smallest_nonzero_sv'])} | {_g(row['pinv_induced'])} | "
                 f"{_g(row['pinv_entrywise'])} | {row.get('sentences_used', '')} |")
    full = {row["N"]: row for row in rt["rows"] if row["source"] == "empirical (verses)"}
    half = {row["N"]: row for row in rt["rows"] if row["source"] == "empirical (random half)"}
    ratios = [f"N={n}: {_g(half[n]['sigma_min'] / full[n]['sigma_min'])}" for n in full
              if n in half and full[n]["sigma_min"] > 0]
    if ratios:
        L += ["", "σ_min(random half) / σ_min(all verses), for N ≥ |C|: " + ", ".join(ratios)
              + f" (pure counting noise would give about √2 ≈ {_g(math.sqrt(2))}, "
              "an exactly full-rank P_C about 1)."]
    L += ["", f"![sigma_min and pinv norm vs N]({FIGURES['realtext']})", ""]
    (out / "RESULTS.md.tmp").write_text("\n".join(L))
    os.replace(out / "RESULTS.md.tmp", out / "RESULTS.md")
    return results
