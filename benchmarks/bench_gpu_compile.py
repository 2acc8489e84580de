"""Compile every fused kernel x launch config for sm_90 WITHOUT a GPU and report resources.

    python benchmarks/bench_gpu_compile.py [--arch 90]

Uses the local Triton's ahead-of-time path (``triton.compile`` on an ``ASTSource`` with a
``GPUTarget``) and the ``cuobjdump`` bundled with Triton: registers, local memory (spills /
stack), shared memory, barriers and 16-byte loads per kernel. It catches compile failures and
register spills before any GPU time is spent. The local Triton may be newer than the one on
the GPU machine, so treat it as a lead, not a guarantee.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silence a Triton 3.9 warning

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

import uasr.graph.triton_kernels as tk  # noqa: E402
import uasr.graph.triton_pruned as tp  # noqa: E402

P, I32, I64 = "*fp32", "*i32", "*i64"
CUOBJDUMP = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"

DENSE_FWD = dict(em_ptr=P, sh_ptr=P, lab_ptr=I32, wt_ptr=P, init_ptr=P, fin_ptr=P, len_ptr=I64,
                 a_ptr=P, c_ptr=P, out_ptr=P, cst_ptr=P, T="i32", V="i32", S="i32", BS="constexpr")
DENSE_BWD = dict(em_ptr=P, sh_ptr=P, lab_ptr=I32, w_ptr=P, fin_ptr=P, len_ptr=I64, a_ptr=P,
                 c_ptr=P, g_ptr=P, gam_ptr=P, y_ptr=P, T="i32", V="i32", S="i32",
                 BS="constexpr", NEED_Y="constexpr", BY_LABEL="constexpr")
DENSE_VITERBI = dict(em_ptr=P, lab_ptr=I32, lw_ptr=P, arc_ptr=I32, init_ptr=P, len_ptr=I64,
                     bp_ptr=I32, last_ptr=P, T="i32", V="i32", S="i32", BS="constexpr")
_BLOCK = dict(em_ptr=P, sh_ptr=P, lab_ptr=I32, src_ptr=I32, dst_ptr=I32, wt_ptr=P, loop_ptr=P,
              len_ptr=I64, u_ptr=P)
_TILE = dict(I="constexpr", O="constexpr", BI="constexpr", BO="constexpr", KB="constexpr",
             P="constexpr", PP="constexpr", HOIST="constexpr", SYNC="constexpr")
BLOCK_FWD = dict(_BLOCK, pm_ptr=P, bar_ptr=I32, T="i32", V="i32", S="i32", KN="i32",
                 t_lo="i32", t_hi="i32", **_TILE)
BLOCK_VITERBI = dict(em_ptr=P, lab_ptr=I32, src_ptr=I32, dst_ptr=I32, lw_ptr=P, la_ptr=I32,
                     lpw_ptr=P, lpa_ptr=I32, len_ptr=I64, d_ptr=P, bp_ptr=I32, bar_ptr=I32,
                     T="i32", V="i32", S="i32", KN="i32", t_lo="i32", t_hi="i32", **_TILE)
TRACE_BACK = dict(bp_ptr=I32, src_ptr=I64, len_ptr=I64, start_ptr=I64, st_ptr=I64, arc_ptr=I64,
                  T="i32", S="i32")
BLOCK_BWD = dict(_BLOCK, c_ptr=P, v_ptr=P, gr_ptr=P, pm_ptr=P, ps_ptr=P, bar_ptr=I32, T="i32",
                 V="i32", S="i32", KN="i32", VT="i32", j_lo="i32", j_hi="i32", **_TILE)

# the fused beam-pruned kernels (uasr/graph/triton_pruned.py)
PRUNED_FWD = dict(em_ptr=P, lab_ptr=I32, odst_ptr=I32, ow_ptr=P, olab_ptr=I32, fin_ptr=P,
                  len_ptr=I64, act_ptr=I64, la_ptr=P, ek_ptr=P, m_ptr=P, sum_ptr=P, rep_ptr=I32,
                  cd_ptr=I32, cs_ptr=P, flag_ptr=I32, mx_ptr=P, tot_ptr=P, st_ptr=I32,
                  bar_ptr=I32, T="i32", V="i32", S="i32", K="i32", wmax="fp32",
                  low_all="fp32", low_kept="fp32", D="constexpr", KP="constexpr",
                  NP="constexpr", CH="constexpr", VP="constexpr", FUSED="constexpr",
                  P="constexpr", SYNC="constexpr")
PRUNED_VITERBI = dict(em_ptr=P, lab_ptr=I32, odst_ptr=I32, ow_ptr=P, oarc_ptr=I64, len_ptr=I64,
                      act_ptr=I64, la_ptr=P, slot_ptr=I64, arc_ptr=I64, m_ptr=P, rep_ptr=I32,
                      cd_ptr=I32, cs_ptr=P, T="i32", V="i32", S="i32", K="i32", D="constexpr",
                      KP="constexpr", NP="constexpr", CH="constexpr", FUSED="constexpr")
PRUNED_TRACE_BACK = dict(act_ptr=I64, slot_ptr=I64, arc_ptr=I64, len_ptr=I64, best_ptr=I64,
                         st_ptr=I64, arcs_ptr=I64, T="i32", K="i32")
PRUNED_BWD = dict(act_ptr=I64, la_ptr=P, ek_ptr=P, odst_ptr=I32, ow_ptr=P, fin_ptr=P,
                  len_ptr=I64, z_ptr=P, g_ptr=P, post_ptr=P, buf_ptr=I64, beta_ptr=P,
                  bar_ptr=I32, T="i32", S="i32", K="i32", D="constexpr", DP="constexpr",
                  KP="constexpr", KC="constexpr", P="constexpr", SYNC="constexpr")


def compile_one(name: str, fn, sig: dict, consts: dict, opts: dict, arch: int) -> bool:
    # pointers are 16-byte aligned at run time (torch allocations): tell the compiler so
    attrs = {(i,): [["tt.divisibility", 16]] for i, t in enumerate(sig.values()) if t.startswith("*")}
    t0 = time.time()
    try:
        k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs),
                           target=GPUTarget("cuda", arch, 32), options=opts)
    except Exception as e:
        print(f"{name:<26}{str(opts):<48} FAILED: {repr(e)[:300]}")
        return False
    res = ""
    with tempfile.NamedTemporaryFile("wb", suffix=".cubin", delete=False) as f:
        f.write(k.asm["cubin"])
    try:
        out = subprocess.run([str(CUOBJDUMP), "--dump-resource-usage", f.name],
                             capture_output=True, text=True).stdout
        get = lambda key: (re.search(rf"{key}:(\d+)", out) or [None, "?"])[1]  # noqa: E731
        res = f"regs={get('REG')} stack={get('STACK')} local={get('LOCAL')}"
    except Exception:
        pass
    finally:
        os.unlink(f.name)
    ptx = k.asm["ptx"]
    print(f"{name:<26}{str(opts):<48}{time.time() - t0:5.1f}s {res} smem={k.metadata.shared} "
          f"bar={ptx.count('bar.sync') + ptx.count('barrier.sync')} "
          f"ld.v4={ptx.count('ld.global.v4')}", flush=True)
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", type=int, default=90)
    p.add_argument("--dense", type=int, nargs="+", default=[64, 128, 256], help="BS values")
    p.add_argument("--block", type=int, nargs=3, default=[40, 40, 40],
                   help="I O K: block inputs, outputs, count (trigram x loop: 40 40 40)")
    p.add_argument("--pruned", type=int, nargs=2, default=[256, 41],
                   help="k D of the pruned kernels (4-gram x loop, beam 256: 256 41)")
    args = p.parse_args()
    ok = True
    for BS in args.dense:
        for cfg in tk.dense_configs(BS):
            ok &= compile_one(f"dense_fwd BS={BS}", tk._dense_fwd_kernel, DENSE_FWD,
                              {"BS": BS}, cfg, args.arch)
            ok &= compile_one(f"dense_viterbi BS={BS}", tk._dense_viterbi_kernel, DENSE_VITERBI,
                              {"BS": BS}, cfg, args.arch)
            for need_y, by_label in ((False, 0), (True, 0), (False, 1), (False, 2)):
                ok &= compile_one(f"dense_bwd BS={BS} Y={int(need_y)} L={by_label}",
                                  tk._dense_bwd_kernel, DENSE_BWD,
                                  {"BS": BS, "NEED_Y": need_y, "BY_LABEL": by_label}, cfg,
                                  args.arch)
    I, O, K = args.block
    I = -(-I // 4) * 4
    BI, BO = tk._next_pow2(I, 4), tk._next_pow2(O, 4)
    for cfg in tk.block_configs(BI, BO, K):
        opts = {k: v for k, v in cfg.items() if k not in ("KB", "P")}
        NG = -(-K // cfg["KB"])
        Pn = NG if cfg["P"] == 0 else min(cfg["P"], NG)
        consts = {"I": I, "O": O, "BI": BI, "BO": BO, "KB": cfg["KB"], "P": Pn,
                  "PP": tk.P_MAX, "HOIST": Pn == NG, "SYNC": Pn > 1}
        tag = f"KB={cfg['KB']} P={Pn}"
        ok &= compile_one(f"block_fwd {tag}", tk._block_fwd_kernel, BLOCK_FWD, consts, opts,
                          args.arch)
        ok &= compile_one(f"block_bwd {tag}", tk._block_bwd_kernel, BLOCK_BWD, consts, opts,
                          args.arch)
        ok &= compile_one(f"block_viterbi {tag}", tk._block_viterbi_kernel, BLOCK_VITERBI,
                          consts, opts, args.arch)
    ok &= compile_one("trace_back", tk._trace_back_kernel, TRACE_BACK, {}, {"num_warps": 1},
                      args.arch)
    k, D = args.pruned
    NP, KP, DP = tp._next_pow2(k * D, 16), tp._next_pow2(k, 16), tp._next_pow2(D, 2)
    for cfg in tp.fwd_configs(NP):
        opts = {n: v for n, v in cfg.items() if n not in ("CH", "P")}
        ok &= compile_one(f"pruned_fwd CH={cfg['CH']} P={cfg['P']}", tp._pruned_fwd_kernel,
                          PRUNED_FWD, {"D": D, "KP": KP, "NP": NP, "CH": cfg["CH"], "VP": 64,
                                       "FUSED": True, "P": cfg["P"], "SYNC": cfg["P"] > 1},
                          opts, args.arch)
        if cfg["P"] == 1:
            ok &= compile_one(f"pruned_viterbi CH={cfg['CH']}", tp._pruned_viterbi_kernel,
                              PRUNED_VITERBI, {"D": D, "KP": KP, "NP": NP, "CH": cfg["CH"],
                                               "FUSED": True}, opts, args.arch)
    ok &= compile_one("pruned_trace_back", tp._pruned_trace_back_kernel, PRUNED_TRACE_BACK, {},
                      {"num_warps": 1}, args.arch)
    for cfg in tp.bwd_configs(KP, DP):
        opts = {n: v for n, v in cfg.items() if n not in ("KC", "P")}
        ok &= compile_one(f"pruned_bwd KC={cfg['KC']} P={cfg['P']}", tp._pruned_bwd_kernel,
                          PRUNED_BWD, {"D": D, "DP": DP, "KP": KP, "KC": cfg["KC"],
                                       "P": cfg["P"], "SYNC": cfg["P"] > 1}, opts, args.arch)
    print("all compiled" if ok else "SOME FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
