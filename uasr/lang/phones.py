"""Phone sets: ARPAbet-39 (CMUdict, lowercase, no stress) + ``sil``, and TIMIT folding.

TIMIT's 61 phones fold to 48 (training) and 39 (scoring, Lee & Hon 1989). We use lhotse's own
tables (:func:`lhotse.recipes.timit.get_phonemes`) so our numbers match lhotse/icefall recipes.
Note that TIMIT-39 is not ARPAbet-39: it keeps ``dx`` and folds ``ao``->``aa``, ``zh``->``sh``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

ARPABET39: tuple[str, ...] = (
    "aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g", "hh",
    "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th",
    "uh", "uw", "v", "w", "y", "z", "zh",
)
SIL = "sil"
PHONES: tuple[str, ...] = ARPABET39 + (SIL,)  # the default label inventory (40)

_STRESS = re.compile(r"[0-2]$")

# Phones some G2P engines (flite, festival's radio set) emit that ARPAbet-39 lacks.
EXTRA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    "ax": ("ah",), "axr": ("er",), "ix": ("ih",), "ux": ("uw",), "el": ("ah", "l"),
    "em": ("ah", "m"), "en": ("ah", "n"), "nx": ("n",), "dx": ("t",), "hv": ("hh",),
    "pau": (), "h#": (), "sil": (),
}


def strip_stress(phone: str) -> str:
    """``"AH0"`` -> ``"ah"``: lowercase, stress digit removed."""
    return _STRESS.sub("", phone.strip().lower())


def to_arpabet39(phones: Iterable[str]) -> list[str]:
    """Map a phone string of a G2P engine to ARPAbet-39 (stress stripped, pauses dropped).

    Raises ValueError naming the first phone that has no mapping.
    """
    out: list[str] = []
    known = set(ARPABET39)
    for p in phones:
        q = strip_stress(p)
        if q in known:
            out.append(q)
        elif q in EXTRA_TO_ARPABET:
            out.extend(EXTRA_TO_ARPABET[q])
        else:
            raise ValueError(f"phone {p!r} is not ARPAbet-39 and has no mapping to it")
    return out


@lru_cache(maxsize=None)
def timit_map(num_phones: int) -> dict[str, str]:
    """lhotse's TIMIT table: 61-phone symbol -> 48- or 39-phone symbol ('' = delete, e.g. q)."""
    if num_phones not in (48, 39):
        raise ValueError(f"TIMIT folds to 48 or 39 phones, not {num_phones}")
    from lhotse.recipes.timit import get_phonemes

    return dict(get_phonemes(num_phones))


def timit61() -> tuple[str, ...]:
    """The 61 TIMIT phone symbols as lhotse lists them (``h#``, ``pau``, ``epi``, closures...)."""
    return tuple(sorted(k for k in timit_map(48) if k != "sil"))


def fold_timit(phones: Iterable[str], num_phones: int = 39) -> list[str]:
    """Fold TIMIT-61 phones to 48 or 39; deleted phones (``q``) are dropped.

    Raises ValueError naming an unknown phone.
    """
    table = timit_map(num_phones)
    out: list[str] = []
    for p in phones:
        q = p.lower()
        if q not in table:
            raise ValueError(f"{p!r} is not a TIMIT-61 phone (known: {' '.join(timit61())})")
        if table[q]:
            out.append(table[q])
    return out
