"""Acoustic features with lhotse (Fbank/MFCC in LilcomChunkyWriter storage) and per-speaker CMVN."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter, Mfcc, MfccConfig, RecordingSet, SupervisionSet

FRAME_SHIFT = 0.01  # seconds; lhotse's default, assumed by the segment code


def extractor(kind: str, num_bins: int = 40):
    """A lhotse feature extractor: ``fbank`` (log-mel, ``num_bins``) or ``mfcc`` (13 coeffs)."""
    if kind == "fbank":
        return Fbank(FbankConfig(num_mel_bins=num_bins, frame_shift=FRAME_SHIFT))
    if kind == "mfcc":
        return Mfcc(MfccConfig(num_ceps=13, frame_shift=FRAME_SHIFT))
    raise ValueError(f"unknown feature type {kind!r}; use fbank or mfcc")


def load_cuts(manifest_dir: Path, split: str, prefix: str = "synth") -> CutSet:
    """Cuts of a split from its recording + supervision manifests: one cut per supervision
    (its id), so Kaldi-style ``segments`` (several utterances per recording) work too."""
    rec = manifest_dir / f"{prefix}_recordings_{split}.jsonl.gz"
    sup = manifest_dir / f"{prefix}_supervisions_{split}.jsonl.gz"
    for f in (rec, sup):
        if not f.is_file():
            raise FileNotFoundError(f"{f} is missing: run stage 0 first")
    cuts = CutSet.from_manifests(RecordingSet.from_file(rec), SupervisionSet.from_file(sup))
    return cuts.trim_to_supervisions(keep_overlapping=False).to_eager()


def compute_features(cuts: CutSet, storage: Path, kind: str = "fbank", nj: int = 1) -> CutSet:
    """Compute and store features; returns the cuts with features attached."""
    storage.parent.mkdir(parents=True, exist_ok=True)
    return cuts.compute_and_store_features(
        extractor=extractor(kind), storage_path=str(storage), num_jobs=nj,
        storage_type=LilcomChunkyWriter)


def speaker_cmvn(feats: dict[str, np.ndarray], speakers: dict[str, str]) -> dict[str, np.ndarray]:
    """Mean/variance-normalise every utterance with its speaker's statistics.

    Uses no labels, so it is applied alike to train and (unseen-speaker) test data.
    """
    by_spk: dict[str, list[str]] = defaultdict(list)
    for uid, spk in speakers.items():
        by_spk[spk].append(uid)
    out = {}
    for spk, uids in by_spk.items():
        x = np.concatenate([feats[u] for u in uids])
        mu, sd = x.mean(0), x.std(0) + 1e-5
        for u in uids:
            out[u] = ((feats[u] - mu) / sd).astype(np.float32)
    return out


def save_cuts(cuts: CutSet, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.jsonl.gz")
    cuts.to_file(tmp)
    os.replace(tmp, path)
