"""Back-off n-gram LMs in the ARPA format (read, write, query).

Probabilities are stored as in the file (log10); :meth:`NgramLM.logprob` answers in natural
log, with standard back-off: ``p(w | h) = p*(w | h)`` if the n-gram ``h w`` is stored, else
``bow(h) * p(w | h[1:])``.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

LN10 = math.log(10.0)
NEG_INF_LOG10 = -99.0  # what ARPA writers use for "probability 0" (e.g. of <s>)


@dataclass
class NgramLM:
    """A back-off n-gram LM.

    Attributes:
        order: the highest n-gram order.
        probs: ``probs[k]`` maps each stored k-gram (tuple of tokens, k = 1..order) to its
            log10 probability; index 0 is unused.
        backoffs: ``backoffs[k]`` maps k-grams to their log10 back-off weight (absent = 0).
    """

    order: int
    probs: list[dict[tuple[str, ...], float]] = field(default_factory=list)
    backoffs: list[dict[tuple[str, ...], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError("NgramLM order must be >= 1")
        while len(self.probs) <= self.order:
            self.probs.append({})
        while len(self.backoffs) <= self.order:
            self.backoffs.append({})

    @property
    def vocab(self) -> list[str]:
        """Unigram tokens in file order (includes ``<s>``/``</s>``/``<unk>`` when present)."""
        return [k[0] for k in self.probs[1]]

    def has_context(self, history: tuple[str, ...]) -> bool:
        """Whether ``history`` is stored (so it can serve as an LM state)."""
        return len(history) < self.order and history in self.probs[len(history)]

    def logprob(self, token: str, history: Iterable[str] = ()) -> float:
        """Natural-log ``p(token | history)`` with back-off; ``-inf`` for unknown tokens."""
        h = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        bow = 0.0
        while True:
            p = self.probs[len(h) + 1].get(h + (token,))
            if p is not None:
                return -math.inf if p <= NEG_INF_LOG10 else (p + bow) * LN10
            if not h:
                return -math.inf
            bow += self.backoffs[len(h)].get(h, 0.0)
            h = h[1:]


def _open(path: str | os.PathLike, mode: str, gz: bool | None = None):
    gz = str(path).endswith(".gz") if gz is None else gz
    return gzip.open(path, mode + "t", encoding="utf-8") if gz else open(path, mode, encoding="utf-8")


def read_arpa(path: str | os.PathLike) -> NgramLM:
    """Read an ARPA file (plain or ``.gz``). Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ARPA file")
    counts: dict[int, int] = {}
    lm: NgramLM | None = None
    section = None  # None (before \data\), 0 (\data\), k (\k-grams:), -1 (after \end\)
    with _open(path, "r") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            where = f"{path}:{lineno}"
            if line == "\\data\\":
                section = 0
                continue
            if line == "\\end\\":
                section = -1
                break
            if line.startswith("\\") and line.endswith("-grams:"):
                try:
                    section = int(line[1:-len("-grams:")])
                except ValueError:
                    raise ValueError(f"{where}: bad section header {line!r}") from None
                if lm is None:
                    if not counts:
                        raise ValueError(f"{where}: n-gram section before the \\data\\ counts")
                    lm = NgramLM(order=max(counts))
                if section not in counts:
                    raise ValueError(f"{where}: section {line} not announced in \\data\\")
                continue
            if section is None:
                continue  # header text before \data\
            if section == 0:
                if not line.startswith("ngram "):
                    raise ValueError(f"{where}: expected 'ngram N=COUNT' in \\data\\, got {line!r}")
                k, c = line[len("ngram "):].split("=")
                counts[int(k)] = int(c)
                continue
            assert lm is not None
            parts = line.split()
            k = section
            if len(parts) not in (k + 1, k + 2):
                raise ValueError(f"{where}: a {k}-gram line needs {k + 1} or {k + 2} fields, "
                                 f"got {len(parts)}: {line!r}")
            try:
                prob = float(parts[0])
                bow = float(parts[k + 1]) if len(parts) == k + 2 else None
            except ValueError:
                raise ValueError(f"{where}: non-numeric probability or back-off: {line!r}") from None
            ngram = tuple(parts[1:k + 1])
            lm.probs[k][ngram] = prob
            if bow is not None:
                lm.backoffs[k][ngram] = bow
    if lm is None:
        raise ValueError(f"{path}: not an ARPA file (no \\data\\ section with n-grams)")
    if section != -1:
        raise ValueError(f"{path}: truncated ARPA file (no \\end\\)")
    for k, c in counts.items():
        if len(lm.probs[k]) != c:
            raise ValueError(f"{path}: \\data\\ announces {c} {k}-grams but the file has "
                             f"{len(lm.probs[k])}")
    return lm


def write_arpa(lm: NgramLM, path: str | os.PathLike) -> None:
    """Write ``lm`` as ARPA (``.gz`` compresses). Written atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with _open(tmp, "w", gz=path.suffix == ".gz") as f:
        f.write("\\data\\\n")
        for k in range(1, lm.order + 1):
            f.write(f"ngram {k}={len(lm.probs[k])}\n")
        for k in range(1, lm.order + 1):
            f.write(f"\n\\{k}-grams:\n")
            bows = lm.backoffs[k]
            for ngram, p in lm.probs[k].items():
                line = f"{p:.7g}\t{' '.join(ngram)}"
                if ngram in bows and k < lm.order:
                    line += f"\t{bows[ngram]:.7g}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")
    os.replace(tmp, path)
