"""Decode dev/test with a trained emission model: Viterbi over the LM graph, LM scale tuned on dev.

Writes ``recogs-<set>.txt``, ``errs-<set>.txt`` and ``decode.json`` (PERs, tuned scale) into
the experiment directory and prints one summary line per set. PER ignores ``sil``.

``--insertion-bonuses`` (loop topology only): a log-weight added to every arc that starts a new
output token, tuned on dev together with the LM scale (Kaldi's insertion penalty, sign
reversed). Under ``loop`` staying costs only log(stay) while a new token pays the LM too, so
Viterbi favours few tokens (deletions); under ``one_to_one`` the token count is fixed and a
bonus changes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

COMMAND = "decode"
HELP = "Viterbi-decode dev/test, tune the LM scale on dev, write recogs/errs and PERs"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--tokens-dir", type=Path, required=True)
    p.add_argument("--lang-dir", type=Path, required=True)
    p.add_argument("--epoch", type=int, default=-1, help="checkpoint epoch-N.pt (-1 = latest)")
    p.add_argument("--avg", type=int, default=1, help="average the last N checkpoints (table/gaussian: 1)")
    p.add_argument("--lm-scales", default="0.5,1,1.5,2,3,4")
    p.add_argument("--insertion-bonuses", default="0",
                   help="loop topology: log-weight bonuses per new token, tuned on dev (e.g. 0,1,2)")
    p.add_argument("--batch-size", type=int, default=256)
    return p


def latest_epoch(exp_dir: Path) -> int:
    eps = [int(p.stem.split("-")[1]) for p in exp_dir.glob("epoch-*.pt")]
    if not eps:
        raise FileNotFoundError(f"no epoch-*.pt in {exp_dir}: run stage 3 (train) first")
    return max(eps)


def load_checkpoint(exp_dir: Path, epoch: int = -1) -> tuple[int, dict]:
    """``(epoch, checkpoint)`` of ``epoch-N.pt`` (``-1``: the latest one)."""
    epoch = latest_epoch(exp_dir) if epoch < 0 else epoch
    path = exp_dir / f"epoch-{epoch}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run stage 3 (train) first")
    return epoch, torch.load(path, weights_only=False)


def check_tokens(ckpt: dict, data, path: Path) -> None:
    """Refuse tokens other than the kind the model was trained on (they would decode to nonsense)."""
    trained_on = f"the model was trained on {ckpt.get('tokens', 'other tokens')}: decode with those"
    if ckpt.get("token_kind") not in (None, data.tokens):
        raise ValueError(f"{path} holds {data.tokens} tokens, but {trained_on}")
    if ckpt["emission"] == "table" and ckpt["units"] != "oracle" and data.num_units != ckpt["num_units"]:
        raise ValueError(f"{path} has {data.num_units} units, the model {ckpt['num_units']}; {trained_on}")


def emissions_for(ckpt: dict, data, symbols) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, N, C]`` emissions of a split under a checkpoint (zeros for the LM-only floor)."""
    from uasr.data.tokens import pad
    from uasr.models.gaussian import GaussianEmission
    from uasr.models.table import TableEmission
    C = ckpt["num_labels"]
    if ckpt["units"] == "oracle":
        units = [ckpt["perm"][i] for i in data.label_ids(symbols)]
    else:
        units = data.units
    u, L = pad(units)
    if ckpt["supervision"] == "lm-only":
        return torch.zeros(len(L), u.shape[1], C), L
    with torch.no_grad():
        if ckpt["emission"] == "table":
            m = TableEmission(C, ckpt["num_units"])
            m.load_state_dict(ckpt["model"])
            return m(u, L), L
        x, L = pad([p.float() for p in data.pooled])
        if ckpt["emission"] == "hybrid":  # posterior / training-set prior (no batch dependence)
            from uasr.models.hybrid import HybridEmission
            m = HybridEmission(**ckpt["model_config"])
            m.load_state_dict(ckpt["model"])
            return m(x, L, batch_prior=False), L
        m = GaussianEmission(C, x.shape[-1])
        m.load_state_dict(ckpt["model"])
        return m(x, L), L


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: give comma-separated numbers, e.g. 0,1,2") from None


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(1)
    from uasr.bin.train import build_graph
    from uasr.data.tokens import TokenSet, without_sil
    from uasr.lang.langdir import LangDir
    from uasr.decode import decode, per, write_results

    t0 = time.time()
    try:
        epoch, ckpt = load_checkpoint(args.exp_dir, args.epoch)
        lang = LangDir.load(args.lang_dir)
        symbols = lang.symbols
        sets = {s: TokenSet.load(args.tokens_dir / f"{s}.pt") for s in ("dev", "test")}
        for s, d in sets.items():
            check_tokens(ckpt, d, args.tokens_dir / f"{s}.pt")
        graph = build_graph(args.lang_dir, ckpt["lm_order"], symbols, ckpt["topology"], ckpt["stay_prob"],
                            ckpt.get("max_stay", 0))
        refs = {s: [without_sil(r) for r in d.references(lang)] for s, d in sets.items()}
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"decode: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 1
    try:
        scales = [1.0] if ckpt["supervision"] == "lm-only" else _floats(args.lm_scales, "--lm-scales")
        bonuses = _floats(args.insertion_bonuses, "--insertion-bonuses") if ckpt["topology"] == "loop" else [0.0]
    except ValueError as e:
        print(f"decode: {e}", file=sys.stderr)
        return 1
    names = {i: s for s, i in symbols.items()}
    ems = {s: emissions_for(ckpt, d, symbols) for s, d in sets.items()}

    # one batched Viterbi per bonus over (dev + test) x scales; both are then chosen on dev only
    from uasr.data.tokens import pad
    seqs = []
    for scale in scales:
        for split in ("dev", "test"):
            em, L = ems[split]
            seqs += [em[i, :L[i]] / scale for i in range(len(L))]
    em_all, L_all = pad(seqs)
    order = sorted(range(len(L_all)), key=lambda i: int(L_all[i]))  # similar lengths per batch
    hyp: dict = {}
    for bonus in bonuses:
        g = graph if bonus == 0 else dataclasses.replace(
            graph, weights=graph.weights + bonus * graph.new_token.to(graph.weights.dtype))
        dec = decode(em_all[order], L_all[order], g, 1.0, batch_size=args.batch_size)
        best_paths = [None] * len(order)
        for j, i in enumerate(order):
            best_paths[i] = dec[j]
        k = 0
        for scale in scales:
            for split in ("dev", "test"):
                n = len(sets[split])
                hyp[(bonus, scale, split)] = [without_sil([names[c] for c in seq]) for seq in best_paths[k:k + n]]
                k += n
    tuned = {(b, s): per(refs["dev"], hyp[(b, s, "dev")]) for b in bonuses for s in scales}
    bonus, best = min(tuned, key=tuned.get)
    out = {"epoch": epoch, "lm_scale": best, "insertion_bonus": bonus,
           "dev_per_by_scale": {s: tuned[(bonus, s)] for s in scales}}
    if len(bonuses) > 1:
        out["dev_per_by_bonus_and_scale"] = {f"{b},{s}": v for (b, s), v in tuned.items()}
    for split in ("dev", "test"):
        res = write_results(args.exp_dir, split, sets[split].ids, refs[split], hyp[(bonus, best, split)])
        out[split] = res
        print(f"{args.exp_dir.name}\t{split}\tPER {res['per']:.2f}%\t(lm_scale {best}"
              + (f", insertion bonus {bonus}" if len(bonuses) > 1 else "") + f", epoch {epoch})")
    out["decode_seconds"] = round(time.time() - t0, 2)
    tmp = args.exp_dir / "decode.json.tmp"
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, args.exp_dir / "decode.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
