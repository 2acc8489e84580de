"""A lang directory, the output of every recipe's lang stage, and how text becomes units.

Files (written by ``uasr prepare-lang``):

- ``phones.txt``: the label inventory, ``symbol id`` per line (phones, graphemes, or digits);
- ``lexicon.txt``: ``word unit unit ...``, the pronunciation used for every word of the LM
  text and of the transcripts (references of corpora without time-aligned phones);
- ``lang.json``: ``{"units": "phones" | "graphemes" | "given", "sil": "sil", ...}``;
- ``lm_<n>gram.arpa`` (unit LMs, the prior) and ``lm_words_<n>gram.arpa`` (word LMs for
  word-level decoding), ``lm.json`` (sizes, perplexities).

Lang dirs written before ``lang.json`` existed (synth, fsdd) load as ``units="phones"`` with
an empty lexicon: their references always come from alignments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


UNIT_KINDS = ("phones", "graphemes", "given")


def normalizer(kind: str) -> Callable[[str], str]:
    """``english`` (:func:`~uasr.lang.text.normalize_text`) or ``none`` (whitespace only)."""
    if kind == "english":
        from uasr.lang.text import normalize_text
        return normalize_text
    if kind == "none":
        return lambda s: " ".join(s.split())
    raise ValueError(f"unknown normalisation {kind!r}; use english or none")


def graphemes(word: str) -> list[str]:
    """Grapheme units of a word: its characters (apostrophes included)."""
    return list(word)


def read_symbols(lang_dir: str | Path) -> dict[str, int]:
    """``phones.txt`` as ``{symbol: id}``."""
    path = Path(lang_dir) / "phones.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run stage 2 first")
    return {s: int(i) for s, i in (line.split() for line in path.read_text(encoding="utf-8").splitlines())}


@dataclass
class LangDir:
    path: Path
    symbols: dict[str, int]
    units: str = "phones"
    lexicon: dict[str, list[str]] = field(default_factory=dict)
    normalize: str = "english"  # how the lang stage normalised text (transcripts get the same)

    @classmethod
    def load(cls, path: str | Path) -> "LangDir":
        path = Path(path)
        symbols = read_symbols(path)
        meta = json.loads((path / "lang.json").read_text()) if (path / "lang.json").is_file() else {}
        lexicon: dict[str, list[str]] = {}
        lex_path = path / "lexicon.txt"
        if lex_path.is_file():
            for line in lex_path.read_text(encoding="utf-8").splitlines():
                word, *units = line.split()
                lexicon.setdefault(word, units)  # the first pronunciation
        return cls(path, symbols, meta.get("units", "phones"), lexicon, meta.get("normalize", "english"))

    def transcribe(self, text: str) -> list[str]:
        """Units of a word transcript (no silence), normalised as the lang stage did: lexicon
        lookups, or the graphemes.

        Raises KeyError naming the words (or units) missing from the lang dir and the fix.
        """
        words = normalizer(self.normalize)(text).split()
        fix = "rerun the lang stage with the transcripts (--manifest-dir) so their words are covered"
        if self.units == "graphemes":
            units = [g for w in words for g in graphemes(w)]
            unknown = sorted(set(units) - set(self.symbols))
            if unknown:
                raise KeyError(f"{self.path / 'phones.txt'} lacks the grapheme(s) {' '.join(unknown)} "
                               f"of {text!r}; {fix}")
            return units
        missing = sorted({w for w in words if w not in self.lexicon})
        if missing:
            raise KeyError(f"{self.path / 'lexicon.txt'} has no pronunciation for {len(missing)} "
                           f"word(s): {' '.join(missing[:10])}; {fix}")
        return [u for w in words for u in self.lexicon[w]]
