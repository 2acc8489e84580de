"""The embedded synthetic corpus: flite pseudo-speakers speaking KJV sentences.

Outputs lhotse manifests (``synth_{recordings,supervisions}_{split}.jsonl.gz``) whose
supervisions carry the word text and the TTS phone alignment (``alignment["phone"]``), and the
LM text: KJV sentences disjoint from every spoken one. Everything is a function of the seed.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

from lhotse import (AudioSource, Recording, RecordingSet, SupervisionSegment, SupervisionSet)
from lhotse.supervision import AlignmentItem
from tqdm import tqdm

from uasr.data.kjv import kjv_sentences, words_of
from uasr.data.tts import FLITE_VOICES, Speaker, flite_synthesize

SIZES: dict[str, tuple[int, int, int]] = {  # utterances: train, dev, test
    "tiny": (300, 40, 40),
    "default": (2400, 200, 200),
    "large": (12000, 500, 500),
}
# duration stretch of each pseudo-speaker per split (dev/test values never seen in training)
STRETCH = {"train": (0.85, 0.95, 1.1, 1.25), "dev": (0.9,), "test": (1.03,)}
KAL_F0 = {0.85: 95, 0.95: 110, 1.1: 125, 1.25: 140, 0.9: 118, 1.03: 102}
SPLITS = ("train", "dev", "test")


def speakers(split: str, voices: tuple[str, ...] = FLITE_VOICES) -> list[Speaker]:
    """The pseudo-speakers of a split (disjoint across splits)."""
    return [Speaker(v, s, KAL_F0[s] if v == "kal16" else 0) for v in voices for s in STRETCH[split]]


@dataclass(frozen=True)
class Job:
    utt_id: str
    text: str
    speaker: Speaker
    wav: Path


def _run(job: Job) -> tuple[Job, list[tuple[str, float, float]]]:
    if job.wav.is_file() and job.wav.with_suffix(".phn").is_file():  # resume an interrupted run
        rows = [line.split() for line in job.wav.with_suffix(".phn").read_text().splitlines()]
        return job, [(p, float(s), float(d)) for p, s, d in rows]
    ali = flite_synthesize(job.text, job.speaker, job.wav)
    tmp = job.wav.with_suffix(".phn.tmp")
    tmp.write_text("".join(f"{p} {s} {d}\n" for p, s, d in ali))
    os.replace(tmp, job.wav.with_suffix(".phn"))
    return job, ali


def plan(size: str, seed: int, voices: tuple[str, ...] = FLITE_VOICES) -> tuple[dict[str, list[tuple[str, Speaker]]], list[str]]:
    """(split -> [(sentence, speaker)], LM sentences); deterministic in ``seed``."""
    if size not in SIZES:
        raise ValueError(f"unknown --size {size!r}; choose one of {', '.join(SIZES)}")
    sents = kjv_sentences()
    rng = random.Random(seed)
    rng.shuffle(sents)
    counts = SIZES[size]
    out: dict[str, list[tuple[str, Speaker]]] = {}
    i = 0
    for split, n in zip(SPLITS, counts):
        spk = speakers(split, voices)
        out[split] = [(sents[i + j], spk[j % len(spk)]) for j in range(n)]
        i += n
    return out, sents[i:]


def build(out_dir: Path, size: str = "tiny", seed: int = 1, nj: int = 2,
          voices: tuple[str, ...] = FLITE_VOICES) -> None:
    """Synthesise the corpus into ``out_dir`` (wav/ + manifests/ + lm_text.txt)."""
    splits, lm_sents = plan(size, seed, voices)
    wav_dir = out_dir / "wav"
    man_dir = out_dir / "manifests"
    man_dir.mkdir(parents=True, exist_ok=True)
    for split, items in splits.items():
        jobs = []
        for k, (text, spk) in enumerate(items):
            uid = f"{spk.id}_{split}{k:05d}"
            (wav_dir / spk.id).mkdir(parents=True, exist_ok=True)
            jobs.append(Job(uid, text, spk, (wav_dir / spk.id / f"{uid}.wav").resolve()))
        recs, sups = [], []
        with Pool(nj) as pool:
            it = pool.imap(_run, jobs, chunksize=4)
            for job, ali in tqdm(it, total=len(jobs), desc=f"tts {split}", unit="utt"):
                dur = round(ali[-1][1] + ali[-1][2], 4)
                recs.append(Recording(id=job.utt_id, sources=[AudioSource("file", [0], str(job.wav))],
                                      sampling_rate=16000, num_samples=round(dur * 16000), duration=dur))
                sups.append(SupervisionSegment(
                    id=job.utt_id, recording_id=job.utt_id, start=0.0, duration=dur, channel=0,
                    text=" ".join(words_of(job.text)), speaker=job.speaker.id, language="English",
                    alignment={"phone": [AlignmentItem(p, s, d) for p, s, d in ali]},
                    custom={"spoken_text": job.text, "voice": job.speaker.voice}))
        for name, obj in (("recordings", RecordingSet.from_recordings(recs)),
                          ("supervisions", SupervisionSet.from_segments(sups))):
            path = man_dir / f"synth_{name}_{split}.jsonl.gz"
            tmp = path.with_name(path.name + ".tmp.jsonl.gz")
            obj.to_file(tmp)
            os.replace(tmp, path)
    tmp = out_dir / "lm_text.txt.tmp"
    tmp.write_text("".join(s + "\n" for s in lm_sents))
    os.replace(tmp, out_dir / "lm_text.txt")
