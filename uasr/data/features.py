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


def _by_speaker(speakers: dict[str, str]) -> list[list[str]]:
    """Utterance ids grouped by speaker."""
    by_spk: dict[str, list[str]] = defaultdict(list)
    for uid, spk in speakers.items():
        by_spk[spk].append(uid)
    return list(by_spk.values())


def speaker_cmvn(feats: dict[str, np.ndarray], speakers: dict[str, str]) -> dict[str, np.ndarray]:
    """Mean/variance-normalise every utterance with its speaker's statistics.

    Uses no labels, so it is applied alike to train and (unseen-speaker) test data.
    """
    out = {}
    for uids in _by_speaker(speakers):
        x = np.concatenate([feats[u] for u in uids])
        mu, sd = x.mean(0), x.std(0) + 1e-5
        for u in uids:
            out[u] = ((feats[u] - mu) / sd).astype(np.float32)
    return out


def speaker_whiten(feats: dict[str, np.ndarray], speakers: dict[str, str],
                   shrinkage: float = 0.2) -> dict[str, np.ndarray]:
    """Per-speaker mean removal and full-covariance (ZCA) whitening, the covariance shrunk
    ``shrinkage`` of the way towards its diagonal.

    CMVN leaves each speaker's correlations between bins, i.e. the voice's spectral shape, in
    the features, and k-means units then split a phone by voice; whitening removes them
    (README: the synth units' supervised and unsupervised PERs). Shrinkage keeps directions of
    tiny variance from being amplified into noise; ZCA (not PCA) whitening keeps every
    dimension a (decorrelated) mel bin. No labels are used.
    """
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"whitening shrinkage must lie in [0, 1], got {shrinkage}")
    out = {}
    for uids in _by_speaker(speakers):
        x = np.concatenate([feats[u] for u in uids]).astype(np.float64)
        mu = x.mean(0)
        cov = np.atleast_2d(np.cov(x, rowvar=False)) if len(x) > 1 else np.eye(x.shape[1])
        cov = (1 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov))
        val, vec = np.linalg.eigh(cov)
        w = (vec / np.sqrt(np.maximum(val, 1e-8 * max(val.max(), 1e-12)))) @ vec.T
        for u in uids:
            out[u] = ((feats[u] - mu) @ w).astype(np.float32)
    return out


def save_cuts(cuts: CutSet, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.jsonl.gz")
    cuts.to_file(tmp)
    os.replace(tmp, path)
