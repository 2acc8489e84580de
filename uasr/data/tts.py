"""Drive Debian TTS engines and return phone timings mapped to ARPAbet-39 + ``sil``.

Only flite is wired in (voices kal16, awb, rms, slt; ``-psdur`` prints each phone's end time).
A pseudo-speaker is a voice plus prosody settings (duration stretch, f0 mean), so one voice
gives several speakers; test speakers are variants never used in training.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from uasr.lang.phones import ARPABET39, EXTRA_TO_ARPABET, SIL, strip_stress

FLITE_VOICES = ("kal16", "awb", "rms", "slt")


@dataclass(frozen=True)
class Speaker:
    """A pseudo-speaker: one TTS voice with fixed prosody settings."""

    voice: str
    stretch: float = 1.0  # flite duration_stretch (> 1 = slower)
    f0: int = 0  # flite int_f0_target_mean in Hz (0 = voice default; diphone voices only)

    @property
    def id(self) -> str:
        return f"{self.voice}-d{round(self.stretch * 100):03d}-f{self.f0:03d}"


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


def to_alignment(ends: list[tuple[str, float]], duration: float) -> list[tuple[str, float, float]]:
    """TTS (phone, end time) list -> (phone, start, duration) items covering [0, duration].

    End times are clipped to the audio (flite's last pause can overrun it), multi-phone
    mappings split their span evenly, and adjacent silences merge into one.
    """
    items: list[tuple[str, float, float]] = []
    start = 0.0
    for phone, end in ends:
        end = min(end, duration)
        if end <= start:
            continue
        parts = map_phone(phone)
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


def flite_synthesize(text: str, speaker: Speaker, wav: Path) -> list[tuple[str, float, float]]:
    """Speak ``text`` into ``wav`` (16 kHz, written atomically); return the phone alignment."""
    if shutil.which("flite") is None:
        raise FileNotFoundError("flite is missing: apt-get install flite")
    if speaker.voice not in FLITE_VOICES:
        raise ValueError(f"unknown flite voice {speaker.voice!r}; known: {', '.join(FLITE_VOICES)}")
    tmp = wav.with_name(wav.stem + f".tmp{os.getpid()}.wav")
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
    if info.samplerate != 16000:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"flite voice {speaker.voice} gave {info.samplerate} Hz, expected 16000")
    os.replace(tmp, wav)
    return to_alignment(ends, info.frames / info.samplerate)
