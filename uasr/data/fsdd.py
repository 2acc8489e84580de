"""FSDD digit strings: real speech for the paper's setting, built from isolated recordings.

The Free Spoken Digit Dataset (FSDD; 6 speakers x 10 digits x 50 takes, 8 kHz, CC BY-SA 4.0)
holds *isolated* digits, i.e. N = 1 label per utterance, where the paper's condition 2 (a
full-column-rank position-unigram matrix P_C, which needs N >= |C| = 10) cannot hold. We
concatenate one speaker's recordings into digit strings sampled from a structured digit
bigram whose P_C has full column rank, with short pauses of the recordings' own background
level. The same recordings, one per utterance, form the isolated-digit control.

Every utterance's supervision carries ``alignment["phone"]``: one item per digit that tiles
the audio (a digit's recording plus half of each neighbouring pause), so stage 1's oracle
segments are exactly the digits. Speakers are split: train on 4, dev/test on the other 2.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIGITS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_RATE = 8000
RATE = 16000  # stage 1's lhotse Fbank is configured for 16 kHz
MANIFEST_PREFIX = "synth"  # the prefix uasr.data.features.load_cuts (stage 1) reads
SPLITS = ("train", "dev", "test")
Item = tuple[str, float, float]  # an alignment item: (word, start s, duration s)
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


@dataclass(frozen=True)
class Take:
    """One FSDD recording ``{digit}_{speaker}_{take}.wav``."""

    digit: int
    speaker: str
    take: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem


def scan_fsdd(fsdd_dir: Path) -> list[Take]:
    """All recordings of an FSDD copy (``<dir>/recordings/*.wav`` or ``<dir>/*.wav``)."""
    fsdd_dir = Path(fsdd_dir)
    rec_dir = fsdd_dir / "recordings" if (fsdd_dir / "recordings").is_dir() else fsdd_dir
    fix = ("pass --fsdd-dir pointing at the Free Spoken Digit Dataset (its recordings/ folder "
           "holds {digit}_{speaker}_{take}.wav; git clone "
           "https://github.com/Jakobovski/free-spoken-digit-dataset)")
    if not rec_dir.is_dir():
        raise FileNotFoundError(f"{fsdd_dir} is missing: {fix}")
    takes = []
    for p in sorted(rec_dir.iterdir()):
        m = _NAME.match(p.name)
        if m:
            takes.append(Take(int(m[1]), m[2], int(m[3]), p))
    if not takes:
        raise FileNotFoundError(f"{rec_dir} holds no {{digit}}_{{speaker}}_{{take}}.wav files: {fix}")
    return takes


def split_takes(takes: list[Take], test_speakers: list[str], dev_takes: int) -> dict[str, list[Take]]:
    """train = every other speaker; dev = test speakers' takes < ``dev_takes``; test = the rest.

    Dev and test are unseen speakers; dev only tunes the LM scale.
    """
    speakers = sorted({t.speaker for t in takes})
    unknown = [s for s in test_speakers if s not in speakers]
    if unknown or len(set(test_speakers)) >= len(speakers):
        raise ValueError(f"--test-speakers {','.join(test_speakers)}: choose 1..{len(speakers) - 1} of "
                         f"{','.join(speakers)}")
    out = {"train": [t for t in takes if t.speaker not in test_speakers],
           "dev": [t for t in takes if t.speaker in test_speakers and t.take < dev_takes],
           "test": [t for t in takes if t.speaker in test_speakers and t.take >= dev_takes]}
    for split, ts in out.items():
        missing = [(s, d) for s in {t.speaker for t in ts} for d in range(10)
                   if not any(t.speaker == s and t.digit == d for t in ts)]
        if not ts or missing:
            raise ValueError(f"split {split} lacks recordings (speaker, digit) {missing[:3]}; "
                             f"change --dev-takes/--test-speakers")
    return out


@dataclass
class DigitLM:
    """A digit bigram (start distribution + transitions) over strings of a length range."""

    start: np.ndarray  # [10]
    trans: np.ndarray  # [10, 10], rows sum to 1
    min_len: int
    max_len: int

    @classmethod
    def isolated(cls) -> "DigitLM":
        """One uniformly drawn digit per utterance (N = 1: P_C has rank 1)."""
        return cls(np.full(10, 0.1), np.full((10, 10), 0.1), 1, 1)

    @classmethod
    def random_sparse(cls, seed: int, alpha: float, min_len: int, max_len: int,
                      candidates: int = 1000) -> "DigitLM":
        """Rows drawn from Dirichlet(alpha) (small alpha = a few likely successors); of
        ``candidates`` draws, the one whose P_C over ``min_len`` positions has the largest
        smallest singular value (condition 2 with the best conditioning we can get cheaply)."""
        rng = np.random.default_rng(seed)
        best = None
        for _ in range(candidates):
            lm = cls(rng.dirichlet(np.full(10, alpha)), rng.dirichlet(np.full(10, alpha), size=10),
                     min_len, max_len)
            s = np.linalg.svd(lm.position_unigrams(min_len), compute_uv=False)[-1]
            if best is None or s > best[0]:
                best = (s, lm)
        return best[1]

    def position_unigrams(self, N: int) -> np.ndarray:
        """P_C: ``[N, 10]``, row n = the marginal of the digit at position n+1."""
        rows = [self.start]
        for _ in range(N - 1):
            rows.append(rows[-1] @ self.trans)
        return np.stack(rows)

    def sample(self, rng: np.random.Generator) -> list[int]:
        n = int(rng.integers(self.min_len, self.max_len + 1))
        seq = [int(rng.choice(10, p=self.start))]
        while len(seq) < n:
            seq.append(int(rng.choice(10, p=self.trans[seq[-1]])))
        return seq

    def to_dict(self) -> dict:
        return {"start": np.round(self.start, 4).tolist(), "trans": np.round(self.trans, 4).tolist(),
                "min_len": self.min_len, "max_len": self.max_len}


def pc_stats(P: np.ndarray) -> dict:
    """Condition-2 numbers of a P_C (rank, smallest singular value)."""
    from uasr.theory.pc import column_rank, sigma_min
    return {"positions": int(P.shape[0]), "labels": int(P.shape[1]), "rank": int(column_rank(P)),
            "sigma_min": float(sigma_min(P)), "full_column_rank": bool(column_rank(P) == P.shape[1])}


def words(digits: list[int]) -> list[str]:
    return [DIGITS[d] for d in digits]


class AudioCache:
    """FSDD recordings in memory (the whole corpus is ~20 min at 8 kHz)."""

    def __init__(self) -> None:
        self._x: dict[Path, np.ndarray] = {}

    def __call__(self, take: Take) -> np.ndarray:
        x = self._x.get(take.path)
        if x is None:
            import soundfile as sf
            try:
                x, sr = sf.read(take.path, dtype="float32", always_2d=True)
            except RuntimeError as e:
                raise ValueError(f"{take.path}: unreadable audio ({e}); restore the file from FSDD") from e
            if sr != FSDD_RATE:
                raise ValueError(f"{take.path}: {sr} Hz, expected FSDD's {FSDD_RATE} Hz")
            x = x.mean(1)
            self._x[take.path] = x
        return x


def _edge_rms(x: np.ndarray, head: bool, n: int = 80) -> float:
    seg = x[:n] if head else x[-n:]
    return float(np.sqrt(np.mean(seg ** 2))) if len(seg) else 0.0


def compose(takes: list[Take], audio: AudioCache, rng: np.random.Generator,
            pause: tuple[float, float]) -> tuple[np.ndarray, list[Item], list[tuple[float, float]]]:
    """Concatenate recordings with pauses (incl. a leading and a trailing one) at 8 kHz.

    Pauses are Gaussian noise at half the RMS of the neighbouring recordings' edges, so they
    sound like the recordings' own background, not digital silence. Returns the audio, the
    tiling alignment items (word, start, duration) in seconds, and each recording's exact span.
    """
    xs = [audio(t) for t in takes]
    gaps = rng.uniform(pause[0], pause[1], size=len(xs) + 1)
    parts, spans, pos = [], [], 0
    for i in range(len(xs) + 1):
        nb = [_edge_rms(xs[i - 1], False)] if i > 0 else []
        nb += [_edge_rms(xs[i], True)] if i < len(xs) else []
        n = int(round(gaps[i] * FSDD_RATE))
        parts.append((rng.standard_normal(n) * max(0.5 * min(nb), 1e-4)).astype(np.float32))
        pos += n
        if i < len(xs):
            parts.append(xs[i])
            spans.append((pos / FSDD_RATE, (pos + len(xs[i])) / FSDD_RATE))
            pos += len(xs[i])
    total = pos / FSDD_RATE
    # tile: each digit owns its recording and half of each neighbouring pause
    cuts = [0.0] + [(spans[i][1] + spans[i + 1][0]) / 2 for i in range(len(spans) - 1)] + [total]
    items = [(DIGITS[t.digit], cuts[i], cuts[i + 1] - cuts[i]) for i, t in enumerate(takes)]
    return np.concatenate(parts), items, spans


def to_rate(x: np.ndarray) -> np.ndarray:
    """8 kHz -> 16 kHz (polyphase, exact ratio 2)."""
    from scipy.signal import resample_poly
    return resample_poly(x, RATE // FSDD_RATE, 1).astype(np.float32)


def _pick(pool: dict[tuple[str, int], list[Take]], speaker: str, digits: list[int],
          rng: np.random.Generator) -> list[Take]:
    return [pool[speaker, d][int(rng.integers(len(pool[speaker, d])))] for d in digits]


def _write_manifests(recs: list, sups: list, out: Path, split: str) -> None:
    """Both manifests of a split, each written to a temp name and renamed."""
    from lhotse import RecordingSet, SupervisionSet
    out.mkdir(parents=True, exist_ok=True)
    for kind, obj in (("recordings", RecordingSet.from_recordings(recs)),
                      ("supervisions", SupervisionSet.from_segments(sups))):
        path = out / f"{MANIFEST_PREFIX}_{kind}_{split}.jsonl.gz"
        tmp = out / f".{path.name[:-len('.jsonl.gz')]}.tmp.jsonl.gz"
        obj.to_file(tmp)
        os.replace(tmp, path)


def _utterance(uid: str, speaker: str, x8: np.ndarray, items: list[Item], audio_dir: Path, final_dir: Path,
               takes: list[Take], spans: list[tuple[float, float]] | None = None) -> tuple:
    """Write the 16 kHz audio into ``audio_dir``; the manifest names it under ``final_dir``
    (where the finished corpus will live after the rename)."""
    import dataclasses

    import soundfile as sf
    from lhotse import Recording, SupervisionSegment
    from lhotse.supervision import AlignmentItem
    path = audio_dir / f"{uid}.flac"
    sf.write(path, to_rate(x8), RATE, subtype="PCM_16")
    rec = Recording.from_file(path, recording_id=uid)
    rec = dataclasses.replace(rec, sources=[dataclasses.replace(rec.sources[0],
                                                                source=str(final_dir / path.name))])
    dur = rec.duration
    ali = [AlignmentItem(symbol=w, start=round(s, 4), duration=round(min(d, dur - s), 4)) for w, s, d in items]
    custom = {"takes": [t.name for t in takes]}
    if spans is not None:
        custom["spans"] = [[round(a, 4), round(b, 4)] for a, b in spans]
    sup = SupervisionSegment(id=uid, recording_id=uid, start=0.0, duration=dur, channel=0,
                             text=" ".join(w for w, _, _ in items), speaker=speaker, language="English",
                             alignment={"phone": ali}, custom=custom)
    return rec, sup


def build_corpus(fsdd_dir: Path, out_dir: Path, *, num_strings: dict[str, int], lm_sentences: int,
                 test_speakers: list[str], dev_takes: int, seed: int, alpha: float,
                 min_len: int, max_len: int, pause: tuple[float, float],
                 max_isolated: dict[str, int] | None = None, progress: bool = True) -> dict:
    """Write ``out_dir/{strings,isolated}/`` (manifests, audio, lm_text.txt) and ``info.json``.

    Built in ``out_dir.partial`` and renamed at the end, so a crash leaves nothing half-written.
    ``num_strings[split]`` digit strings per split (speakers in turn); the isolated control
    takes every recording of a split once (capped by ``max_isolated[split]``, 0 = all).
    """
    from tqdm import tqdm
    takes = scan_fsdd(fsdd_dir)
    splits = split_takes(takes, test_speakers, dev_takes)
    lm = DigitLM.random_sparse(seed, alpha, min_len, max_len)
    iso = DigitLM.isolated()
    rng = np.random.default_rng(seed + 1)
    audio = AudioCache()
    out_dir = Path(out_dir)
    final = out_dir.resolve()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    info: dict = {"fsdd_dir": str(fsdd_dir), "seed": seed, "test_speakers": test_speakers,
                  "dev_takes": dev_takes, "pause_s": list(pause), "digit_lm": lm.to_dict(),
                  "pc_strings": pc_stats(lm.position_unigrams(min_len)),
                  "pc_isolated": pc_stats(iso.position_unigrams(1)), "strings": {}, "isolated": {}}
    try:
        seen: set[tuple[int, ...]] = set()
        for split in SPLITS:
            pool: dict[tuple[str, int], list[Take]] = {}
            for t in splits[split]:
                pool.setdefault((t.speaker, t.digit), []).append(t)
            speakers = sorted({t.speaker for t in splits[split]})
            # digit strings: one speaker per utterance, speakers in turn
            adir = tmp / "strings" / "audio" / split
            adir.mkdir(parents=True, exist_ok=True)
            recs, sups, secs = [], [], 0.0
            for i in tqdm(range(num_strings[split]), desc=f"strings {split}", unit="utt", disable=not progress):
                spk = speakers[i % len(speakers)]
                digits = lm.sample(rng)
                seen.add(tuple(digits))
                chosen = _pick(pool, spk, digits, rng)
                x, items, spans = compose(chosen, audio, rng, pause)
                r, s = _utterance(f"{split}-{spk}-{i:05d}", spk, x, items, adir,
                                  final / "strings" / "audio" / split, chosen, spans)
                recs.append(r)
                sups.append(s)
                secs += r.duration
            _write_manifests(recs, sups, tmp / "strings" / "manifests", split)
            info["strings"][split] = {"utterances": len(recs), "digits": sum(len(s.alignment["phone"]) for s in sups),
                                      "hours": round(secs / 3600, 4), "speakers": speakers}
            # isolated control: each recording alone (N = 1), no added pauses
            adir = tmp / "isolated" / "audio" / split
            adir.mkdir(parents=True, exist_ok=True)
            cap = (max_isolated or {}).get(split, 0)
            ts = splits[split]
            if cap and cap < len(ts):
                ts = [ts[j] for j in sorted(np.random.default_rng(seed + 2).choice(len(ts), cap, replace=False))]
            recs, sups, secs = [], [], 0.0
            for t in tqdm(ts, desc=f"isolated {split}", unit="utt", disable=not progress):
                x = audio(t)
                r, s = _utterance(f"{split}-{t.speaker}-{t.name}", t.speaker, x,
                                  [(DIGITS[t.digit], 0.0, len(x) / FSDD_RATE)], adir,
                                  final / "isolated" / "audio" / split, [t])
                recs.append(r)
                sups.append(s)
                secs += r.duration
            _write_manifests(recs, sups, tmp / "isolated" / "manifests", split)
            info["isolated"][split] = {"utterances": len(recs), "digits": len(recs),
                                       "hours": round(secs / 3600, 4), "speakers": speakers}
        # LM text: another sample from the same LMs, disjoint from every spoken string
        lines: list[str] = []
        while len(lines) < lm_sentences:
            d = lm.sample(rng)
            if tuple(d) not in seen:
                lines.append(" ".join(words(d)))
        (tmp / "strings" / "lm_text.txt").write_text("\n".join(lines) + "\n")
        (tmp / "isolated" / "lm_text.txt").write_text(
            "\n".join(" ".join(words(iso.sample(rng))) for _ in range(lm_sentences)) + "\n")
        info["lm_sentences"] = lm_sentences
        (tmp / "info.json").write_text(json.dumps(info, indent=1))
    except BaseException:  # nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return info


# ----------------------------------------------------------------------------- lang (stage 2)


def write_lang(lm_text: Path, out_dir: Path, orders: list[int], pc_positions: int) -> dict:
    """Digit symbol table (the digit words are the "phones"), digit n-gram LMs, lm.json.

    lm.json holds held-out perplexities and P_C of the trained highest-order LM over
    ``pc_positions`` positions (condition 2 as the *model's* prior sees it).
    """
    from uasr.lm.arpa import write_arpa
    from uasr.lm.ngram import perplexity, train_ngram
    from uasr.theory.pc import pc_from_lm
    if not Path(lm_text).is_file():
        raise FileNotFoundError(f"{lm_text} is missing: run stage 0 first")
    sents = [s.split() for s in Path(lm_text).read_text().splitlines() if s.strip()]
    bad = sorted({w for s in sents for w in s} - set(DIGITS))
    if not sents or bad:
        raise ValueError(f"{lm_text}: {'no sentences' if not sents else f'non-digit words {bad[:5]}'}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def _w(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    _w(out_dir / "phones.txt", "".join(f"{w} {i}\n" for i, w in enumerate(DIGITS)))
    held = max(1, len(sents) // 50)  # 2 % held out only for the reported perplexity
    info: dict = {"sentences": len(sents), "tokens": sum(map(len, sents)), "ppl": {}}
    lm = None
    for n in orders:
        lm = train_ngram(sents, n, vocab=DIGITS)
        info["ppl"][n] = round(perplexity(train_ngram(sents[:-held], n, vocab=DIGITS), sents[-held:]), 3)
        write_arpa(lm, out_dir / f"lm_{n}gram.arpa")
    P = pc_from_lm(lm, pc_positions, {w: i for i, w in enumerate(DIGITS)})
    info["pc"] = {"order": max(orders), **pc_stats(P)}
    _w(out_dir / "lm.json", json.dumps(info, indent=1))
    return info
