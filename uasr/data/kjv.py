"""Sentences of the King James Bible, from Debian's ``bible-kjv`` (program) + ``bible-kjv-text``.

Verses are split at sentence/clause punctuation into short, speakable sentences. The text is
public domain; it is the default source of both the spoken text and the (disjoint) LM text.
"""

from __future__ import annotations

import re
import shutil
import subprocess

_VERSE = re.compile(r"^\s+\d+\s+(.*)$")
_SPLIT = re.compile(r"(?<=[.;:?!])\s+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def kjv_verses() -> list[str]:
    """All 31,102 verses in canonical order (raises a one-line error if ``bible`` is missing)."""
    if shutil.which("bible") is None:
        raise FileNotFoundError("the 'bible' program is missing: apt-get install bible-kjv bible-kjv-text")
    out = subprocess.run(["bible", "gen1:1-rev22:21"], capture_output=True, text=True, check=True).stdout
    verses: list[str] = []
    prev_blank = True
    for line in out.splitlines():
        if not line.strip():
            prev_blank = True
            continue
        m = _VERSE.match(line)
        if m:
            verses.append(m.group(1).strip())
        elif not prev_blank and verses:  # continuation of the verse (headers follow a blank)
            verses[-1] += " " + line.strip()
        prev_blank = False
    return verses


def words_of(sentence: str) -> list[str]:
    """Lowercase words (letters and inner apostrophes); punctuation dropped."""
    return _WORD.findall(sentence.lower())


def kjv_sentences(min_words: int = 3, max_words: int = 14) -> list[str]:
    """Clauses of the KJV with ``min_words..max_words`` words, de-duplicated, in text order."""
    seen: set[str] = set()
    out: list[str] = []
    for verse in kjv_verses():
        for s in _SPLIT.split(verse):
            s = s.strip().strip(",").strip()
            n = len(words_of(s))
            key = " ".join(words_of(s))
            if min_words <= n <= max_words and key not in seen:
                seen.add(key)
                out.append(s)
    return out
