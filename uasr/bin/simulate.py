"""``uasr simulate``: the paper's bound simulation, necessity controls, learning check, real-text
P_C and the report (figures, RESULTS.md, results.json). Used by ``recipes/simulation``.

    uasr simulate bound    --exp-dir exp/simulation [--trials 100000 --seed 0]
    uasr simulate controls --exp-dir exp/simulation
    uasr simulate learn    --exp-dir exp/simulation [--sizes 100 1000 10000 --steps 300]
    uasr simulate realtext --exp-dir exp/simulation [--n 5 10 20 50 100 --orders 2 3]
    uasr simulate report   --exp-dir exp/simulation --out-dir recipes/simulation

Every step writes its result atomically and is skipped when the result exists (``--force``
redoes it). Each result records the command that made it and its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

COMMAND = "simulate"
HELP = "bound simulation, necessity controls, learning check, real-text P_C, report"


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float) + "\n")
    os.replace(tmp, path)


def _cmd(argv: list[str]) -> str:
    return "uasr simulate " + " ".join(shlex.quote(a) for a in argv if a != "--force")


def _bound(a, argv) -> dict:
    from uasr.theory.simulation import run_bound_simulation, summarise
    r = run_bound_simulation(a.trials, a.C, a.X, a.N, a.seed, a.lam_min, a.rank_tol)
    npz = a.exp_dir / "bound_trials.npz"
    tmp = a.exp_dir / "bound_trials.tmp.npz"
    np.savez_compressed(tmp, **r)
    os.replace(tmp, npz)
    return {**summarise(r), "C": a.C, "X": a.X, "N": a.N, "seed": a.seed, "lam_min": a.lam_min,
            "rank_tol": a.rank_tol, "trials_file": npz.name}


def _controls(a, argv) -> dict:
    from uasr.theory.necessity import run_controls
    return {"controls": run_controls(a.seed, a.C, a.X, a.N)}


def _learn(a, argv) -> dict:
    from uasr.theory.learning import run_learning_check
    return run_learning_check(tuple(a.sizes), a.C, a.X, a.N, a.seed, a.steps, a.lr, a.restarts)


def _realtext(a, argv) -> dict:
    from uasr.theory.realtext import run_realtext
    return run_realtext(tuple(a.n), tuple(a.orders), a.eos)


STEPS = {"bound": _bound, "controls": _controls, "learn": _learn, "realtext": _realtext}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="uasr simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help_)
        s.add_argument("--exp-dir", type=Path, default=Path("exp/simulation"))
        s.add_argument("--force", action="store_true", help="redo even if the result exists")
        return s

    def sizes(s: argparse.ArgumentParser) -> None:
        s.add_argument("--C", type=int, default=3, help="number of labels |C|")
        s.add_argument("--X", type=int, default=4, help="number of observation symbols |X|")
        s.add_argument("--N", type=int, default=3, help="sequence length")
        s.add_argument("--seed", type=int, default=0)

    s = add("bound", "random trials: D_q and Delta_q against Theorem 1 and its Pinsker form")
    sizes(s)
    s.add_argument("--trials", type=int, default=100_000)
    s.add_argument("--lam-min", type=float, default=1e-4,
                   help="smallest mismatch size (log-uniform in [lam-min, 1])")
    s.add_argument("--rank-tol", type=float, default=1e-6,
                   help="trials with sigma_min(P_C) below this are set aside")
    sizes(add("controls", "necessity constructions: delta = 0 with Delta_q > 0"))
    s = add("learn", "train a table emission through uasr.graph.total_score")
    sizes(s)
    s.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    s.add_argument("--steps", type=int, default=300)
    s.add_argument("--lr", type=float, default=0.05)
    s.add_argument("--restarts", type=int, default=2)
    s = add("realtext", "sigma_min(P_C), ||P_C^+||_1 of phone LMs on the KJV")
    s.add_argument("--n", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    s.add_argument("--orders", type=int, nargs="+", default=[2, 3])
    s.add_argument("--eos", default="at_least", choices=("at_least", "exactly", "renorm"))
    s = add("report", "figures, RESULTS.md and results.json from the results in --exp-dir")
    s.add_argument("--out-dir", type=Path, default=Path("recipes/simulation"))
    return p


def _check(a) -> None:
    if a.step in STEPS and a.step != "realtext":
        if min(a.C, a.X, a.N) < 1:
            raise SystemExit(f"uasr simulate: --C, --X, --N must be >= 1 (got {a.C}, {a.X}, {a.N})")
        if a.C ** a.N * a.X ** a.N > 10 ** 7:
            raise SystemExit(f"uasr simulate: |C|^N * |X|^N = {a.C ** a.N * a.X ** a.N} is too "
                             f"large to enumerate; use smaller --C/--X/--N")
    if a.step == "bound" and a.N < a.C:
        raise SystemExit(f"uasr simulate: --N {a.N} < --C {a.C}: P_C cannot have full column "
                         f"rank; use --N >= --C")
    if a.step == "bound" and not 0 < a.lam_min <= 1:
        raise SystemExit(f"uasr simulate: --lam-min must be in (0, 1], got {a.lam_min}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    a = _parser().parse_args(argv)
    _check(a)
    if a.step == "report":
        from uasr.theory.report import write_report
        if not a.exp_dir.is_dir():
            raise SystemExit(f"uasr simulate report: {a.exp_dir} does not exist; run the other "
                             f"steps first (./run.sh --recipe simulation)")
        try:
            write_report(a.exp_dir, a.out_dir)
        except FileNotFoundError as e:
            raise SystemExit(f"uasr simulate report: {e}") from None
        print(f"wrote {a.out_dir}/RESULTS.md, results.json and figures/")
        return 0
    a.exp_dir.mkdir(parents=True, exist_ok=True)
    out = a.exp_dir / f"{a.step}.json"
    if out.exists() and not a.force:
        print(f"{out} exists, skipping (--force redoes it)")
        return 0
    t0 = time.time()
    try:
        res = STEPS[a.step](a, argv)
    except (ValueError, FileNotFoundError, RuntimeError) as e:  # bad input: one line, no trace
        raise SystemExit(f"uasr simulate {a.step}: {e}") from None
    res["command"] = _cmd(argv)
    res["seconds"] = round(time.time() - t0, 1)
    _write_json(out, res)
    print(f"wrote {out} ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
