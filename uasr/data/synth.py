"""The embedded synthetic corpus: TTS pseudo-speakers speaking KJV sentences.

Voices come from flite, festival and espeak-ng (:mod:`uasr.data.tts`); ``voices`` takes the
``--voices`` syntax (``default``: flite + festival, one CMU pronunciation source; ``all``: + the
espeak-ng accents/variants). Every voice speaks in every split, with split-specific prosody,
so test speakers are unseen variants of every engine.

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
from uasr.data.tts import FLITE_VOICES, Speaker, check_engines, parse_voices, synthesize_batch

SIZES: dict[str, tuple[int, int, int]] = {  # utterances: train, dev, test
    "tiny": (300, 40, 40),
    "default": (2400, 200, 200),
    "large": (12000, 500, 500),
}
# duration stretch of each pseudo-speaker per split (dev/test values never seen in training)
STRETCH = {"train": (0.85, 0.95, 1.1, 1.25), "dev": (0.9,), "test": (1.03,)}
KAL_F0 = {0.85: 95, 0.95: 110, 1.1: 125, 1.25: 140, 0.9: 118, 1.03: 102}
SPLITS = ("train", "dev", "test")
F0_VOICES = {("flite", "kal16"), ("festival", "kal"), ("festival", "ked")}  # voices that take an f0 target
BATCH = 16  # utterances per TTS call (festival: one process per batch)


def speakers(split: str, voices: str | tuple[str, ...] = FLITE_VOICES) -> list[Speaker]:
    """The pseudo-speakers of a split (disjoint across splits); ``voices`` as ``--voices``."""
    return [Speaker(v, s, KAL_F0[s] if (e, v) in F0_VOICES else 0, e)
            for e, v in parse_voices(voices) for s in STRETCH[split]]


@dataclass(frozen=True)
class Job:
    utt_id: str
    text: str
    speaker: Speaker
    wav: Path


def _run(batch: list[Job]) -> list[tuple[Job, list[tuple[str, float, float]]]]:
    """Synthesise a batch of one speaker's jobs (resuming: finished ones are read back)."""
    done: dict[str, list[tuple[str, float, float]]] = {}
    todo = []
    for job in batch:
        if job.wav.is_file() and job.wav.with_suffix(".phn").is_file():  # resume an interrupted run
            rows = [line.split() for line in job.wav.with_suffix(".phn").read_text().splitlines()]
            done[job.utt_id] = [(p, float(s), float(d)) for p, s, d in rows]
        else:
            todo.append(job)
    if todo:
        alis = synthesize_batch([(j.text, j.wav) for j in todo], todo[0].speaker)
        for job, ali in zip(todo, alis):
            tmp = job.wav.with_suffix(".phn.tmp")
            tmp.write_text("".join(f"{p} {s} {d}\n" for p, s, d in ali))
            os.replace(tmp, job.wav.with_suffix(".phn"))
            done[job.utt_id] = ali
    return [(job, done[job.utt_id]) for job in batch]


def batches(jobs: list[Job], size: int = BATCH) -> list[list[Job]]:
    """Jobs grouped by speaker (in order of first appearance), chunks of at most ``size``."""
    by_spk: dict[Speaker, list[Job]] = {}
    for job in jobs:
        by_spk.setdefault(job.speaker, []).append(job)
    return [js[i:i + size] for js in by_spk.values() for i in range(0, len(js), size)]


def plan(size: str, seed: int, voices: str | tuple[str, ...] = FLITE_VOICES) -> tuple[dict[str, list[tuple[str, Speaker]]], list[str]]:
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
          voices: str | tuple[str, ...] = FLITE_VOICES) -> None:
    """Synthesise the corpus into ``out_dir`` (wav/ + manifests/ + lm_text.txt)."""
    check_engines(parse_voices(voices))  # fail before any synthesis
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
        results: dict[str, list[tuple[str, float, float]]] = {}
        with Pool(nj) as pool, tqdm(total=len(jobs), desc=f"tts {split}", unit="utt") as bar:
            for out in pool.imap_unordered(_run, batches(jobs)):
                results.update((job.utt_id, ali) for job, ali in out)
                bar.update(len(out))
        recs, sups = [], []
        for job in jobs:  # manifests in plan order, whatever order the batches finished in
            ali = results[job.utt_id]
            dur = round(ali[-1][1] + ali[-1][2], 4)
            recs.append(Recording(id=job.utt_id, sources=[AudioSource("file", [0], str(job.wav))],
                                  sampling_rate=16000, num_samples=round(dur * 16000), duration=dur))
            sups.append(SupervisionSegment(
                id=job.utt_id, recording_id=job.utt_id, start=0.0, duration=dur, channel=0,
                text=" ".join(words_of(job.text)), speaker=job.speaker.id, language="English",
                alignment={"phone": [AlignmentItem(p, s, d) for p, s, d in ali]},
                custom={"spoken_text": job.text, "voice": job.speaker.voice,
                        **({} if job.speaker.engine == "flite" else {"engine": job.speaker.engine})}))
        for name, obj in (("recordings", RecordingSet.from_recordings(recs)),
                          ("supervisions", SupervisionSet.from_segments(sups))):
            path = man_dir / f"synth_{name}_{split}.jsonl.gz"
            tmp = path.with_name(path.name + ".tmp.jsonl.gz")
            obj.to_file(tmp)
            os.replace(tmp, path)
    tmp = out_dir / "lm_text.txt.tmp"
    tmp.write_text("".join(s + "\n" for s in lm_sents))
    os.replace(tmp, out_dir / "lm_text.txt")
