"""Drive Debian TTS engines and return phone timings mapped to ARPAbet-39 + ``sil``.

Three engines, all from Debian main:

* ``flite`` (voices kal16, awb, rms, slt): one process per utterance, ``-psdur`` prints each
  phone's end time.
* ``festival`` (voices kal, ked: diphone; slt-hts: HTS): one festival process per *batch* of
  utterances runs a generated Scheme script that synthesises each sentence, resamples it to
  16 kHz and writes the Segment relation (phone name + end time). Festival's English voices use
  the CMU lexicon (festlex-cmu), so their pronunciations agree with CMUdict (and with flite).
* ``espeak`` (espeak-ng; voices are accents with optional variants, e.g. ``en-us+f3``): driven
  in-process through ``libespeak-ng.so.1`` (ctypes, synchronous mode); phone timings are the
  sample positions of its ``espeakEVENT_PHONEME`` events; the 22.05 kHz audio is resampled to
  16 kHz. espeak-ng has its own dictionaries and accents, so its pronunciations differ from
  CMUdict: the "mismatched" variant of the corpus.

A pseudo-speaker is a voice plus prosody settings (duration stretch, f0 mean), so one voice
gives several speakers; test speakers are variants never used in training.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from uasr.lang.phones import ARPABET39, EXTRA_TO_ARPABET, SIL, strip_stress

Alignment = list[tuple[str, float, float]]
SAMPLE_RATE = 16000

ENGINES = ("flite", "festival", "espeak")
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
# festival voice -> (Scheme voice function, Debian package, directory under /usr/share/festival/voices)
FESTIVAL_VOICES: dict[str, tuple[str, str, str]] = {
    "kal": ("voice_kal_diphone", "festvox-kallpc16k", "english/kal_diphone"),
    "ked": ("voice_ked_diphone", "festvox-kdlpc16k", "english/ked_diphone"),
    "slt-hts": ("voice_cmu_us_slt_arctic_hts", "festvox-us-slt-hts", "us/cmu_us_slt_arctic_hts"),
}
# The espeak-ng pseudo-voices of ``--voices all`` (accent + variant; any English accent and any
# variant of espeak-ng-data/voices/!v may be named explicitly, e.g. espeak:en-gb-x-rp+f2).
ESPEAK_VOICES = ("en-us+m3", "en-us+f3", "en-gb+m2", "en-gb-scotland+f4")
ENGINE_ALIASES = {"espeak-ng": "espeak"}
# Keywords of --voices: ``default`` = one pronunciation source (CMU lexicon: flite + festival).
VOICE_SETS: dict[str, tuple[tuple[str, str], ...]] = {
    "flite": tuple(("flite", v) for v in FLITE_VOICES),
    "festival": tuple(("festival", v) for v in FESTIVAL_VOICES),
    "espeak": tuple(("espeak", v) for v in ESPEAK_VOICES),
}
VOICE_SETS["default"] = VOICE_SETS["flite"] + VOICE_SETS["festival"]
VOICE_SETS["all"] = VOICE_SETS["default"] + VOICE_SETS["espeak"]


def parse_voices(spec: str | Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--voices`` -> ``((engine, voice), ...)``, in order, duplicates removed.

    Items (comma-separated): ``engine:voice`` (engine flite, festival, espeak/espeak-ng), a bare
    flite voice (``kal16``: backward compatible), or a keyword: ``default`` (flite's four +
    festival's CMU-lexicon voices), ``all`` (default + espeak-ng variants), ``flite``,
    ``festival``, ``espeak``.
    """
    items = spec.split(",") if isinstance(spec, str) else [x for s in spec for x in s.split(",")]
    out: dict[tuple[str, str], None] = {}
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        if item in VOICE_SETS:
            out.update(dict.fromkeys(VOICE_SETS[item]))
            continue
        engine, sep, voice = item.partition(":")
        if not sep:
            engine, voice = "flite", item
        engine = ENGINE_ALIASES.get(engine, engine)
        if engine not in ENGINES:
            raise ValueError(f"unknown TTS engine {engine!r} in --voices item {item!r}; "
                             f"use engine:voice with engine one of {', '.join(ENGINES)}")
        if engine == "flite" and voice not in FLITE_VOICES:
            raise ValueError(f"unknown flite voice {voice!r} in --voices; known: {', '.join(FLITE_VOICES)} "
                             f"(other engines: festival:{'|'.join(FESTIVAL_VOICES)}, "
                             f"espeak:<accent>[+variant]; keywords: {', '.join(VOICE_SETS)})")
        if engine == "festival" and voice not in FESTIVAL_VOICES:
            raise ValueError(f"unknown festival voice {voice!r}; known: {', '.join(FESTIVAL_VOICES)}")
        if engine == "espeak" and (not voice.lower().startswith("en") or not voice.strip("+")):
            raise ValueError(f"espeak voice {voice!r}: only English accents are mapped to ARPAbet "
                             f"(e.g. en-us, en-gb+m2, en-gb-scotland+f4)")
        out[(engine, voice)] = None
    if not out:
        raise ValueError(f"--voices {spec!r} names no voice")
    return tuple(out)


def apt_requirements(voices: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(command, Debian package)`` pairs the voices need, for the recipe's ``ensure_apt``.

    A voice package provides no command: it is listed with an impossible command name only when
    its voice directory is missing, so ``ensure_apt`` installs exactly what is absent.
    """
    out: dict[tuple[str, str], None] = {}
    for engine, voice in voices:
        if engine == "flite":
            out[("flite", "flite")] = None
        elif engine == "festival":
            out[("festival", "festival")] = None
            _, pkg, sub = FESTIVAL_VOICES[voice]
            if not (Path("/usr/share/festival/voices") / sub).is_dir():
                out[(f"__voice_{voice}__", pkg)] = None
        elif engine == "espeak":
            out[("espeak-ng", "espeak-ng")] = None  # the library + espeak-ng-data
    return list(out)


def check_engines(voices: Sequence[tuple[str, str]]) -> None:
    """Raise FileNotFoundError naming the Debian package of the first missing engine or voice."""
    import ctypes

    for cmd, pkg in apt_requirements(voices):
        if cmd == "espeak-ng":  # the library is what we use (loading it initialises nothing)
            try:
                ctypes.CDLL("libespeak-ng.so.1")
                ok = True
            except OSError:
                ok = False
        else:
            ok = shutil.which(cmd) is not None
        if not ok:
            what = "libespeak-ng" if cmd == "espeak-ng" else cmd.strip("_").replace("_", " ")
            raise FileNotFoundError(f"{what} is missing: apt-get install {pkg}")


@dataclass(frozen=True)
class Speaker:
    """A pseudo-speaker: one TTS voice with fixed prosody settings."""

    voice: str
    stretch: float = 1.0  # duration stretch (> 1 = slower)
    f0: int = 0  # target f0 mean in Hz (0 = voice default; flite kal16, festival kal/ked only)
    engine: str = "flite"

    @property
    def id(self) -> str:
        """Stable id; flite's keep their historic form (``kal16-d110-f125``) so corpora stay valid."""
        tail = f"d{round(self.stretch * 100):03d}-f{self.f0:03d}"
        if self.engine == "flite":
            return f"{self.voice}-{tail}"
        slug = self.voice.lower().replace("+", "-").replace("_", "-").replace("/", "-")
        return f"{self.engine}-{slug}-{tail}"


def map_phone(p: str) -> list[str]:
    """One TTS phone -> ARPAbet-39 phones (``pau`` -> ``sil``; ``el`` -> ``ah l`` etc.)."""
    q = strip_stress(p)
    if q in ("pau", "sil", "h#"):
        return [SIL]
    if q in ARPABET39:
        return [q]
    if q in EXTRA_TO_ARPABET:
        return list(EXTRA_TO_ARPABET[q]) or [SIL]
    raise ValueError(f"TTS phone {p!r} has no ARPAbet-39 mapping (add it to uasr.lang.phones)")


def to_alignment(ends: Sequence[tuple[str | Sequence[str], float]], duration: float) -> Alignment:
    """TTS (phone, end time) list -> (phone, start, duration) items covering [0, duration].

    A phone is a TTS symbol (mapped by :func:`map_phone`) or an already mapped list of
    ARPAbet-39 phones. End times are clipped to the audio (flite's last pause can overrun it),
    multi-phone mappings split their span evenly, and adjacent silences merge into one.
    """
    items: list[tuple[str, float, float]] = []
    start = 0.0
    for phone, end in ends:
        end = min(end, duration)
        if end <= start:
            continue
        parts = map_phone(phone) if isinstance(phone, str) else list(phone)
        step = (end - start) / len(parts)
        for i, q in enumerate(parts):
            s = start + i * step
            if items and q == SIL and items[-1][0] == SIL:
                p0, s0, _ = items[-1]
                items[-1] = (p0, s0, s + step - s0)
            else:
                items.append((q, s, step))
        start = end
    if start < duration - 1e-6:  # audio tail the TTS did not label: silence
        if items and items[-1][0] == SIL:
            items[-1] = (SIL, items[-1][1], duration - items[-1][1])
        else:
            items.append((SIL, start, duration - start))
    return [(p, round(s, 4), round(d, 4)) for p, s, d in items]


def _tmp_wav(wav: Path) -> Path:
    return wav.with_name(wav.stem + f".tmp{os.getpid()}.wav")


def _check_cover(last_end: float, duration: float, what: str, tol: float = 0.1) -> None:
    if abs(last_end - duration) > tol:
        raise RuntimeError(f"{what}: phone timings end at {last_end:.3f} s but the audio lasts "
                           f"{duration:.3f} s; the alignment would be wrong")


# ---------------------------------------------------------------------------------- flite
def flite_synthesize(text: str, speaker: Speaker, wav: Path) -> Alignment:
    """Speak ``text`` into ``wav`` (16 kHz, written atomically); return the phone alignment."""
    if shutil.which("flite") is None:
        raise FileNotFoundError("flite is missing: apt-get install flite")
    if speaker.voice not in FLITE_VOICES:
        raise ValueError(f"unknown flite voice {speaker.voice!r}; known: {', '.join(FLITE_VOICES)}")
    tmp = _tmp_wav(wav)
    cmd = ["flite", "-voice", speaker.voice, "--setf", f"duration_stretch={speaker.stretch}"]
    if speaker.f0:
        cmd += ["--setf", f"int_f0_target_mean={speaker.f0}"]
    cmd += ["-t", text, "-o", str(tmp), "-psdur"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"flite failed on {text!r} ({speaker.id}): {out.stderr.strip()[:200]}")
    ends = []
    for tok in out.stdout.split():
        phone, _, t = tok.rpartition(":")
        ends.append((phone, float(t)))
    info = sf.info(str(tmp))
    if info.samplerate != SAMPLE_RATE:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"flite voice {speaker.voice} gave {info.samplerate} Hz, expected 16000")
    os.replace(tmp, wav)
    return to_alignment(ends, info.frames / info.samplerate)


# ------------------------------------------------------------------------------- festival
def _scheme_string(text: str) -> str:
    return '"' + " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_script(items: Sequence[tuple[str, Path, Path]], speaker: Speaker) -> str:
    """The Scheme batch script: ``(text, wav, segment file)`` per utterance."""
    fn = FESTIVAL_VOICES[speaker.voice][0]
    lines = [f"({fn})"]
    if speaker.voice.endswith("-hts"):  # hts_engine's speed factor; f0 is the model's own
        speed = 1.0 / speaker.stretch
        lines.append(f"(set! hts_engine_params (append hts_engine_params '((\"-r\" {speed:.6f}))))")
    else:  # diphone voices: duration model stretch, linear-regression f0 target
        lines.append(f"(Parameter.set 'Duration_Stretch {speaker.stretch:.6f})")
        if speaker.f0:
            lines.append(f"(set! int_lr_params (cons '(target_f0_mean {int(speaker.f0)}) int_lr_params))")
    lines.append("""(define (uasr_say text wav seg)
  (let ((u (utt.synth (eval (list (quote Utterance) (quote Text) text)))) (fd nil))
    (utt.wave.resample u 16000)
    (utt.save.wave u wav 'riff)
    (set! fd (fopen seg "w"))
    (mapcar (lambda (s) (format fd "%s %f %d\\n" (item.name s) (item.feat s "end")
                                (if (item.relation s 'SylStructure) 1 0)))
            (utt.relation.items u 'Segment))
    (fclose fd)))""")
    for text, wav, seg in items:
        args = " ".join(_scheme_string(x) for x in (text, str(wav), str(seg)))
        lines.append(f"(uasr_say {args})")
    return "\n".join(lines) + "\n"


def festival_segments(text: str) -> list[tuple[str, float]]:
    """Lines ``name end in_syllable`` -> (phone, end) list.

    A non-pause segment outside the syllable structure was inserted by a voice's post-lexical
    hack (ked_diphone adds an ``r`` after every ``er`` because its diphones are recorded that
    way): it is not a phone of the word, so its span goes to the phone before it.
    """
    ends: list[tuple[str, float]] = []
    for line in text.splitlines():
        name, t, in_syl = line.split()
        if in_syl == "0" and name != "pau" and ends and ends[-1][0] != "pau":
            ends[-1] = (ends[-1][0], float(t))
        else:
            ends.append((name, float(t)))
    return ends


def festival_synthesize_batch(items: Sequence[tuple[str, Path]], speaker: Speaker) -> list[Alignment]:
    """Speak each ``(text, wav)`` with one festival process; return the alignments in order."""
    if shutil.which("festival") is None:
        raise FileNotFoundError("festival is missing: apt-get install festival")
    if speaker.voice not in FESTIVAL_VOICES:
        raise ValueError(f"unknown festival voice {speaker.voice!r}; known: {', '.join(FESTIVAL_VOICES)}")
    _, pkg, _ = FESTIVAL_VOICES[speaker.voice]
    if not items:
        return []
    with tempfile.TemporaryDirectory(prefix="uasr-festival-") as td:
        jobs = [(text, _tmp_wav(wav), Path(td) / f"{i}.seg") for i, (text, wav) in enumerate(items)]
        script = Path(td) / "batch.scm"
        script.write_text(festival_script(jobs, speaker), encoding="utf-8")
        out = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True)
        err = (out.stderr + out.stdout).strip()
        if "unbound variable" in err and FESTIVAL_VOICES[speaker.voice][0] in err:
            raise FileNotFoundError(f"festival voice {speaker.voice} is not installed: apt-get install {pkg}")
        alis = []
        try:
            for (text, wav), (_, tmp, seg) in zip(items, jobs):
                if not (tmp.is_file() and seg.is_file()):
                    raise RuntimeError(f"festival failed on {text!r} ({speaker.id}): {err[-300:]}")
                ends = festival_segments(seg.read_text())
                info = sf.info(str(tmp))
                if info.samplerate != SAMPLE_RATE or info.channels != 1:
                    raise RuntimeError(f"festival voice {speaker.voice} gave {info.samplerate} Hz x "
                                       f"{info.channels}, expected 16000 x 1")
                dur = info.frames / info.samplerate
                _check_cover(ends[-1][1] if ends else 0.0, dur, f"festival {speaker.id} on {text!r}")
                alis.append(to_alignment(ends, dur))
            for (_, wav), (_, tmp, _) in zip(items, jobs):
                os.replace(tmp, wav)
        finally:
            for _, tmp, _ in jobs:
                tmp.unlink(missing_ok=True)
    return alis


def festival_synthesize(text: str, speaker: Speaker, wav: Path) -> Alignment:
    return festival_synthesize_batch([(text, wav)], speaker)[0]


# -------------------------------------------------------------------------------- espeak-ng
# espeak-ng's English phoneme mnemonics (espeak-ng 1.51, en/en-US/... phoneme tables) ->
# ARPAbet-39. Each is the nearest ARPAbet phone(s) of the sound the mnemonic is realised as
# (checked against the IPA names libespeak-ng reports for the same events); () = a modifier
# without its own segment (its span goes to the previous phone); ("sil",) = pause.
ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # pauses and modifiers
    "_": (SIL,), "_:": (SIL,), "_!": (SIL,), "_|": (SIL,), "_^_": (SIL,), ";": (),
    # consonants
    "p": ("p",), "b": ("b",), "t": ("t",), "d": ("d",), "k": ("k",), "g": ("g",),
    "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",),
    "S": ("sh",), "Z": ("zh",), "h": ("hh",), "tS": ("ch",), "dZ": ("jh",),
    "m": ("m",), "n": ("n",), "N": ("ng",), "l": ("l",), "r": ("r",), "r-": ("r",),
    "w": ("w",), "j": ("y",),
    "t#": ("t",),  # flap [ɾ] (CMU writes t)
    "t2": ("t",), "d#": ("d",), "t[": ("t",),  # dental t (Caribbean)
    "?": ("t",),  # glottal stop for /t/ (button)
    "w#": ("w",),  # [ʍ] (Scottish wh)
    "x": ("k",),  # [x] (loch; CMU writes k)
    "n-": ("ah", "n"), "m-": ("ah", "m"), "l-": ("ah", "l"), "@L": ("ah", "l"),  # syllabic
    # vowels
    "@": ("ah",), "@2": ("ah",), "@5": ("ah",), "@-": ("ah",), "a#": ("ah",), "V": ("ah",),
    "3": ("ah",), "3:": ("er",), "a": ("ae",), "aa": ("ae",), "0": ("aa",), "A:": ("aa",),
    "A@": ("aa",), "E": ("eh",), "e@": ("eh",), "I": ("ih",), "I#": ("ih",), "I2": ("ih",),
    "i": ("iy",), "i:": ("iy",), "i@": ("iy", "ah"), "i@3": ("ih",), "O": ("ao",), "O:": ("ao",),
    "O2": ("ao",), "O@": ("ao",), "o@": ("ao",), "OI": ("oy",), "U": ("uh",), "U@": ("uh",),
    "u:": ("uw",), "aI": ("ay",), "aI2": ("ay",), "aI@": ("ay", "ah"), "aI3": ("ay", "er"),
    "aU": ("aw",), "eI": ("ey",), "oU": ("ow",), "IR": ("er",), "VR": ("er",),
}
# Accent-specific realisations (keys: the voice's primary language code).
ESPEAK_ACCENT_OVERRIDES: dict[str, dict[str, tuple[str, ...]]] = {
    # rhotic American: r-coloured vowels carry their r (dropped before an explicit r)
    "en-us": {"3": ("er",), "A@": ("aa", "r"), "O@": ("ao", "r"), "o@": ("ao", "r"),
              "e@": ("eh", "r"), "i@3": ("ih", "r"), "U@": ("uh", "r")},
    "en-gb-x-rp": {"aa": ("aa",), "U@": ("ao",)},  # bath [ɑː]; cure [ɔː]
    "en-gb-scotland": {"aa": ("aa",), "3:": ("eh",), "i": ("ey",), "U": ("uw",)},
    "en-gb-x-gbclan": {"V": ("uh",)},  # northern strut [ʊ]
    "en-gb-x-gbcwmd": {"V": ("uh",), "aI": ("oy",), "e@": ("er",)},
    "en-029": {"aa": ("aa",)},
}


def espeak_map(mnemonics: Sequence[str], accent: str) -> list[tuple[str, ...]]:
    """espeak-ng phoneme mnemonics of one accent -> ARPAbet-39 phones per mnemonic (in context)."""
    table = {**ESPEAK_TO_ARPABET, **ESPEAK_ACCENT_OVERRIDES.get(accent.lower(), {})}
    out: list[tuple[str, ...]] = []
    for m in mnemonics:
        if m not in table:
            raise ValueError(f"espeak-ng phoneme {m!r} ({accent}) has no ARPAbet-39 mapping "
                             f"(add it to uasr.data.tts.ESPEAK_TO_ARPABET)")
        out.append(table[m])
    for i in range(len(out) - 1):  # rhotic vowel + explicit r: one r
        if len(out[i]) > 1 and out[i][-1] == "r" and out[i + 1][:1] == ("r",):
            out[i] = out[i][:-1]
    return out


class _EspeakLib:
    """libespeak-ng in synchronous mode with phoneme events (one per process)."""

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    INITIALIZE_PHONEME_EVENTS = 0x0001
    EVENT_LIST_TERMINATED, EVENT_PHONEME = 0, 7
    CHARS_UTF8, ENDPAUSE = 1, 0x1000
    POS_CHARACTER = 1
    RATE, RATE_NORMAL = 1, 175

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        class EventId(ctypes.Union):
            _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                        ("string", ctypes.c_char * 8)]

        class Event(ctypes.Structure):  # espeak_EVENT of speak_lib.h
            _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                        ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                        ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                        ("user_data", ctypes.c_void_p), ("id", EventId)]

        class Voice(ctypes.Structure):  # espeak_VOICE
            _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p),
                        ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                        ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                        ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]

        try:
            lib = ctypes.CDLL(ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1")
        except OSError as e:
            raise FileNotFoundError(f"libespeak-ng is missing ({e}): apt-get install espeak-ng") from None
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(Voice))
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(Voice)
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.rate = lib.espeak_Initialize(self.AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                          self.INITIALIZE_PHONEME_EVENTS)
        if self.rate <= 0:
            raise RuntimeError("espeak_Initialize failed (is espeak-ng-data installed?)")
        self.lib, self.ctypes = lib, ctypes
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[str, int]] = []
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                 ctypes.POINTER(Event))

        def callback(wav, n, ev):
            if wav and n > 0:
                self.chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
            i = 0
            while ev[i].type != self.EVENT_LIST_TERMINATED:
                if ev[i].type == self.EVENT_PHONEME:
                    self.events.append((bytes(ev[i].id.string).split(b"\0")[0].decode(), ev[i].sample))
                i += 1
            return 0

        self._callback = proto(callback)  # keep a reference: libespeak-ng holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.voices = self._list_voices()
        self.current: str | None = None
        self.accent = ""

    def _list_voices(self) -> dict[str, tuple[str, str]]:
        """Lowercase language code or file name -> (voice file identifier, primary language)."""
        ctypes = self.ctypes
        by_lang: dict[str, tuple[str, str]] = {}
        by_file: dict[str, tuple[str, str]] = {}
        vs = self.lib.espeak_ListVoices(None)
        i = 0
        while vs[i]:
            v = vs[i].contents
            i += 1
            ident = v.identifier.decode()
            if ident.startswith("mb/"):  # mbrola voices need the non-free mbrola program
                continue
            raw = ctypes.string_at(v.languages, 256)
            langs, j = [], 0
            while j < len(raw) and raw[j] != 0:
                end = raw.index(b"\0", j + 1)
                langs.append(raw[j + 1:end].decode().lower())
                j = end + 1
            if langs:
                by_lang.setdefault(langs[0], (ident, langs[0]))
                by_file.setdefault(ident.rsplit("/", 1)[-1].lower(), (ident, langs[0]))
        return {**by_file, **by_lang}

    def set_voice(self, voice: str, stretch: float) -> None:
        base, _, variant = voice.partition("+")
        if base.lower() not in self.voices:
            known = sorted(k for k in self.voices if k.startswith("en"))
            raise ValueError(f"unknown espeak-ng voice {base!r}; English ones: {', '.join(known)}")
        ident, accent = self.voices[base.lower()]
        want = ident + (f"+{variant}" if variant else "")
        if self.current != want:
            rc = self.lib.espeak_SetVoiceByName(want.encode())
            got = self.lib.espeak_GetCurrentVoice().contents.identifier.decode()
            if rc != 0 or got != want:
                raise ValueError(f"espeak-ng voice {voice!r} not found (variant files live in "
                                 f"espeak-ng-data/voices/!v, e.g. m2, f3)")
            self.current, self.accent = want, accent
        rate = round(self.RATE_NORMAL / stretch)
        self.lib.espeak_SetParameter(self.RATE, max(80, min(450, rate)), 0)

    def synth(self, text: str) -> tuple[np.ndarray, list[tuple[str, int]]]:
        self.chunks, self.events = [], []
        data = " ".join(text.split()).encode()
        rc = self.lib.espeak_Synth(data, len(data) + 1, 0, self.POS_CHARACTER, 0,
                                   self.CHARS_UTF8 | self.ENDPAUSE, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed (error {rc}) on {text!r}")
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return audio, self.events


_ESPEAK: _EspeakLib | None = None


def _espeak() -> _EspeakLib:
    """The process's libespeak-ng (synchronous mode starts no thread, so forks may share it)."""
    global _ESPEAK
    if _ESPEAK is None:
        _ESPEAK = _EspeakLib()
    return _ESPEAK


def espeak_phones(text: str, voice: str) -> list[str]:
    """The espeak-ng phoneme mnemonics ``voice`` speaks for ``text`` (pauses included)."""
    eng = _espeak()
    eng.set_voice(voice, 1.0)
    return [m for m, _ in eng.synth(text)[1]]


def espeak_accent(voice: str) -> str:
    """The primary language code of an espeak-ng voice (``en-gb+m2`` -> ``en-gb``)."""
    eng = _espeak()
    eng.set_voice(voice, 1.0)
    return eng.accent


def espeak_synthesize(text: str, speaker: Speaker, wav: Path) -> Alignment:
    """Speak ``text`` with libespeak-ng into ``wav`` (16 kHz); return the phone alignment.

    Timings are the sample positions of espeak-ng's phoneme events (each event marks a
    phoneme's start; it ends where the next one starts, the last at the end of the audio).
    """
    from scipy.signal import resample_poly

    eng = _espeak()
    eng.set_voice(speaker.voice, speaker.stretch)
    audio, events = eng.synth(text)
    if not len(audio) or not events:
        raise RuntimeError(f"espeak-ng produced no speech for {text!r} ({speaker.id})")
    sr = eng.rate
    mapped = espeak_map([m for m, _ in events], eng.accent)
    starts: list[tuple[tuple[str, ...], int]] = []
    for phones, (_, sample) in zip(mapped, events):
        if phones:  # modifiers (no phones) extend the previous phone
            starts.append((phones, sample))
    ends = [(phones, nxt[1] / sr) for phones, nxt in zip([p for p, _ in starts], starts[1:])]
    ends.append((starts[-1][0], len(audio) / sr))
    if starts[0][1] > 0:  # audio before the first event: silence
        ends.insert(0, ((SIL,), starts[0][1] / sr))
    _check_cover(max(s for _, s in events) / sr, len(audio) / sr, f"espeak {speaker.id} on {text!r}")
    x = resample_poly(audio.astype(np.float32) / 32768.0, SAMPLE_RATE, sr) if sr != SAMPLE_RATE \
        else audio.astype(np.float32) / 32768.0
    tmp = _tmp_wav(wav)
    sf.write(str(tmp), np.clip(x, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, wav)
    return to_alignment(ends, len(x) / SAMPLE_RATE)


# ------------------------------------------------------------------------------- dispatch
def synthesize_batch(items: Sequence[tuple[str, Path]], speaker: Speaker) -> list[Alignment]:
    """Speak each ``(text, wav)`` with ``speaker``'s engine (festival: one process per batch)."""
    if speaker.engine == "festival":
        return festival_synthesize_batch(items, speaker)
    if speaker.engine == "espeak":
        return [espeak_synthesize(t, speaker, w) for t, w in items]
    if speaker.engine == "flite":
        return [flite_synthesize(t, speaker, w) for t, w in items]
    raise ValueError(f"unknown TTS engine {speaker.engine!r}; known: {', '.join(ENGINES)}")


def synthesize(text: str, speaker: Speaker, wav: Path) -> Alignment:
    """Speak one sentence with ``speaker``'s engine into ``wav`` (16 kHz mono)."""
    return synthesize_batch([(text, wav)], speaker)[0]
