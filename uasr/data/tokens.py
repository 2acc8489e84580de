"""Token sets written by stage 1 (``<tokens>/<split>.pt``) and batching helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from uasr.lang.phones import SIL

if TYPE_CHECKING:
    from uasr.lang.langdir import LangDir


@dataclass
class TokenSet:
    """One split: per utterance its unit ids, pooled features, segment labels and reference."""

    ids: list[str]
    speakers: list[str]
    units: list[torch.Tensor]  # [N_i] int64 k-means ids
    pooled: list[torch.Tensor]  # [N_i, D] standardised pooled features (empty for frames)
    labels: list[list[str]]  # [N_i] majority reference phone of each token ([] without alignments)
    ref: list[list[str]]  # the aligned phone sequence ([] without alignments: see references())
    num_units: int
    tokens: str  # oracle | unsup | frames
    text: list[str] = field(default_factory=list)  # word transcripts

    @property
    def aligned(self) -> bool:
        """Whether tokens carry reference labels (the corpus has time-aligned phones)."""
        return all(len(lab) for lab in self.labels)

    def references(self, lang: "LangDir") -> list[list[str]]:
        """Reference units per utterance: the aligned phones, else the transcript's units."""
        return [r if r else lang.transcribe(t) for r, t in zip(self.ref, self.text)]

    @classmethod
    def load(cls, path: Path) -> "TokenSet":
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} is missing: run stage 1 first")
        d = torch.load(path, weights_only=False)
        return cls(d["ids"], d["speakers"], d["units"], d["pooled"], d["labels"], d["ref"],
                   d["num_units"], d["tokens"], d.get("text", [""] * len(d["ids"])))

    def __len__(self) -> int:
        return len(self.ids)

    def label_ids(self, symbols: dict[str, int]) -> list[torch.Tensor]:
        return [torch.tensor([symbols[p] for p in lab]) for lab in self.labels]


def pad(seqs: list[torch.Tensor], value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length ``[N_i, ...]`` tensors into ``[B, N, ...]`` + lengths ``[B]``."""
    lengths = torch.tensor([len(s) for s in seqs])
    out = seqs[0].new_full((len(seqs), int(lengths.max())) + tuple(seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lengths


def without_sil(phones: list[str]) -> list[str]:
    """Scoring ignores silence (it is easy and would inflate accuracy)."""
    return [p for p in phones if p != SIL]

