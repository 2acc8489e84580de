"""Stage 1 of every speech recipe: features, per-speaker normalisation, segments, pooled features,
units.

Writes ``<out-dir>/<tokens>/<split>.pt`` for tokens in ``oracle`` (reference phone boundaries:
TTS timings or TIMIT's .PHN), ``unsup`` (spectral-change segmentation, no labels) and
``frames`` (one token per frame, the negative control). Units are k-means ids fitted on the
train split only. ``--oracle-errors delete:0.15,...`` adds diagnostic token sets
``oracle_<error><amount>``: the reference boundaries with one kind of segmenter error injected
(:func:`uasr.data.segments.perturb_boundaries`). Corpora without time-aligned phones (LibriSpeech, custom corpora) get
``unsup`` and ``frames`` only; their references come from the transcripts (the lang stage).
The segmenter reads per-speaker CMVN features; pooled features and units are built from the
same or, with ``--speaker-norm whiten``, from per-speaker whitened ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

COMMAND = "prepare-tokens"
HELP = "features + speaker normalisation + segments + pooled segment features + k-means units"
SPLITS = ("train", "dev", "test")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--manifest-dir", type=Path, required=True)
    p.add_argument("--manifest-prefix", default="synth",
                   help="manifests are <prefix>_{recordings,supervisions}_<split>.jsonl.gz")
    p.add_argument("--feat-dir", type=Path, required=True, help="lhotse feature storage + cuts")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--feature", default="fbank", help="fbank | mfcc")
    p.add_argument("--num-units", type=int, default=128, help="k-means units over segments")
    p.add_argument("--frame-units", type=int, default=64, help="k-means units over frames (control)")
    p.add_argument("--speaker-norm", choices=("cmvn", "whiten"), default="cmvn",
                   help="features the units and pooled features are built from: per-speaker CMVN, "
                        "or per-speaker whitening (decorrelates the voice's spectral shape; "
                        "uasr.data.features.speaker_whiten). The segmenter always reads CMVN "
                        "features. Written to <out-dir>/speaker_norm.txt")
    p.add_argument("--whiten-shrinkage", type=float, default=0.2,
                   help="whitening: covariance shrunk this far towards its diagonal")
    # segmenter settings picked by boundary F1 (20 ms) on the default corpus' dev set: the
    # two-window change with w=3 reaches F1 0.78 at 1.00 hyp per ref boundary (w=1: 0.70 at
    # 1.28; the earlier central difference |x[t+1] - x[t-1]|: 0.73 at 1.17)
    p.add_argument("--min-seg", type=int, default=2, help="unsupervised segmenter: min frames")
    p.add_argument("--seg-window", type=int, default=3,
                   help="segmenter: frames averaged each side of a candidate boundary")
    p.add_argument("--seg-threshold", type=float, default=-0.3, help="peak threshold (std units)")
    p.add_argument("--oracle-errors", default="",
                   help="diagnostic token sets: reference boundaries with injected errors, e.g. "
                        "jitter:2,delete:0.15,insert:0.18 (needs phone alignments)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nj", type=int, default=2)
    return p


def _save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(1)  # the machines are small and shared: threads only oversubscribe
    from lhotse import CutSet

    from uasr.data.features import compute_features, load_cuts, save_cuts, speaker_cmvn, speaker_whiten
    from uasr.data.segments import (SEGMENT_ERRORS, boundary_f1, frame_labels, oracle_boundaries,
                                    perturb_boundaries, pool_segments, segment_labels,
                                    spectral_change_boundaries)

    if not 0.0 <= args.whiten_shrinkage <= 1.0:
        print(f"prepare-tokens: --whiten-shrinkage {args.whiten_shrinkage}: expected a value in "
              "[0, 1] (0.2 by default)", file=sys.stderr)
        return 1
    errors: dict[str, tuple[str, float]] = {}  # token-set name -> (error, amount)
    for item in filter(None, args.oracle_errors.split(",")):
        err, _, amount = item.partition(":")
        try:
            if err not in SEGMENT_ERRORS:
                raise ValueError
            errors[f"oracle_{err}{amount}"] = (err, float(amount))
        except ValueError:
            print(f"prepare-tokens: --oracle-errors {item!r}: expected ERROR:AMOUNT with ERROR in "
                  f"{', '.join(SEGMENT_ERRORS)} (e.g. delete:0.15)", file=sys.stderr)
            return 1
    from uasr.data.units import assign, kmeans

    utts: dict[str, list[dict]] = {}
    for split in SPLITS:
        cut_path = args.feat_dir / f"cuts_{split}.jsonl.gz"
        if cut_path.is_file():
            cuts = CutSet.from_file(cut_path)
        else:
            try:
                cuts = load_cuts(args.manifest_dir, split, args.manifest_prefix)
            except FileNotFoundError as e:
                print(f"prepare-tokens: {e}", file=sys.stderr)
                return 1
            logging.info(f"computing {args.feature} features for {split} ({len(cuts)} cuts)")
            cuts = compute_features(cuts, args.feat_dir / f"feats_{split}", args.feature, args.nj)
            save_cuts(cuts, cut_path)
        feats, spk, rows = {}, {}, []
        for cut in tqdm(cuts, desc=f"load {split}", unit="utt"):
            sup = cut.supervisions[0]
            feats[cut.id] = cut.load_features()
            spk[cut.id] = sup.speaker
            phones = (sup.alignment or {}).get("phone")
            # alignment times are relative to the recording; make them relative to the cut
            ali = [(a.symbol, a.start - sup.start, a.duration) for a in phones] if phones else None
            rows.append({"id": cut.id, "speaker": sup.speaker, "ali": ali, "text": sup.text})
        # CMVN features drive the segmenter (whitening would amplify the within-phone jitter
        # of low-variance directions that its change score picks up); units: --speaker-norm
        cmvn = speaker_cmvn(feats, spk)
        unit_feats = speaker_whiten(feats, spk, args.whiten_shrinkage) \
            if args.speaker_norm == "whiten" else cmvn
        for r in rows:
            r["x"], r["u"] = cmvn[r["id"]], unit_feats[r["id"]]
        utts[split] = rows

    aligned = [r["ali"] is not None for split in SPLITS for r in utts[split]]
    if any(aligned) and not all(aligned):
        print(f"prepare-tokens: some supervisions in {args.manifest_dir} have phone alignments and "
              "some do not; give all or none an alignment['phone']", file=sys.stderr)
        return 1
    aligned = all(aligned)
    stats: dict = {"aligned": aligned}
    kinds = ("oracle", "unsup", "frames", *errors) if aligned else ("unsup", "frames")
    if errors and not aligned:
        print(f"prepare-tokens: --oracle-errors needs phone alignments, which the supervisions in "
              f"{args.manifest_dir} do not have", file=sys.stderr)
        return 1
    if not aligned:
        logging.info("no phone alignments: oracle tokens and boundary F1 skipped; segment labels "
                     "stay empty (references come from the transcripts)")
    for kind in kinds:
        hits = nh = nr = 0
        rng = np.random.default_rng(args.seed)
        for split in SPLITS:
            for r in utts[split]:
                x, T = r["u"], len(r["u"])
                flab = frame_labels(r["ali"], T) if aligned else None
                ob = oracle_boundaries(r["ali"], T) if aligned else None
                if kind == "oracle":
                    b = ob
                elif kind in errors:
                    b = perturb_boundaries(ob, *errors[kind], rng)
                elif kind == "unsup":
                    b = spectral_change_boundaries(r["x"], args.min_seg, args.seg_threshold,
                                                   args.seg_window)
                    if aligned:
                        h, a, c = boundary_f1(ob, b)
                        hits, nh, nr = hits + h, nh + a, nr + c
                else:
                    b = np.arange(T + 1)
                if not aligned:
                    labels = []
                else:
                    labels = segment_labels(b, flab) if kind != "frames" else flab
                r[kind] = {"bounds": b, "labels": labels,
                           "pooled": pool_segments(x, b) if kind != "frames" else x}
        if kind == "unsup" and aligned:
            p, rc = hits / max(nh, 1), hits / max(nr, 1)
            stats.update({"precision": p, "recall": rc, "f1": 2 * p * rc / max(p + rc, 1e-9),
                          "tolerance_frames": 2, "hyp_boundaries": nh, "ref_boundaries": nr})
            logging.info(f"unsupervised segmentation vs reference boundaries: {stats}")
        # standardise with train statistics, then k-means on train only
        tr = np.concatenate([r[kind]["pooled"] for r in utts["train"]])
        mu, sd = tr.mean(0), tr.std(0) + 1e-5
        k = args.frame_units if kind == "frames" else args.num_units
        xs = torch.from_numpy((tr - mu) / sd)
        if len(xs) > 200_000:  # frames: a fixed random subset is plenty for centroids
            g = torch.Generator().manual_seed(args.seed)
            xs = xs[torch.randperm(len(xs), generator=g)[:200_000]]
        logging.info(f"k-means K={k} on {len(xs)} train {kind} tokens")
        cent = kmeans(xs, k, seed=args.seed)
        for split in SPLITS:
            out = {"ids": [], "speakers": [], "units": [], "labels": [], "ref": [], "pooled": [],
                   "bounds": [], "text": [], "num_units": k, "tokens": kind}
            for r in utts[split]:
                z = torch.from_numpy((r[kind]["pooled"] - mu) / sd)
                out["ids"].append(r["id"])
                out["speakers"].append(r["speaker"])
                out["units"].append(assign(z, cent))
                out["labels"].append(r[kind]["labels"])
                out["ref"].append([a[0] for a in r["ali"]] if aligned else [])
                out["pooled"].append(z.half() if kind != "frames" else torch.empty(0))
                out["bounds"].append(torch.from_numpy(r[kind]["bounds"]))
                out["text"].append(r["text"])
            _save(out, args.out_dir / kind / f"{split}.pt")
        if kind == "unsup":
            tmp = args.out_dir / kind / "segmentation.json.tmp"
            tmp.write_text(json.dumps(stats, indent=1))
            os.replace(tmp, args.out_dir / kind / "segmentation.json")
    tmp = args.out_dir / "speaker_norm.txt.tmp"  # lets a recipe tell which tokens it has
    tmp.write_text(args.speaker_norm + "\n")
    os.replace(tmp, args.out_dir / "speaker_norm.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
