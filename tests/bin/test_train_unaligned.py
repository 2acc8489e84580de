"""Train + decode on tokens without time-aligned labels (LibriSpeech/custom corpora).

The tokens are simulated: silence, then every grapheme of a transcript, then silence emit 1-3
segments each, every segment a k-means unit that names its symbol with probability 0.85. The
supervised ceiling must then learn the renaming from the transcripts alone (EM on transcript
graphs), and decoding must score against the transcripts' units from the lang's lexicon.
"""

import json
import random
from pathlib import Path

import pytest
import torch

from uasr.bin import decode as decode_cli
from uasr.bin import prepare_lang, train

WORDS = ["abc", "bad", "cab", "dab", "ace", "bead", "bed", "face", "cafe", "fade"]


def _sentences(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(n)]


def _tokens(rng: random.Random, texts: list[str], letters: list[str], K: int) -> dict:
    perm = {c: i for i, c in enumerate(letters + ["sil"])}
    units, ids = [], []
    for i, t in enumerate(texts):
        u = []
        for c in ["sil"] + list(t.replace(" ", "")) + ["sil"]:
            for _ in range(rng.randint(1, 3)):
                u.append(perm[c] if rng.random() < 0.85 else rng.randrange(K))
        units.append(torch.tensor(u))
        ids.append(f"u{i}")
    n = len(texts)
    return {"ids": ids, "speakers": ["s"] * n, "units": units, "labels": [[] for _ in range(n)],
            "ref": [[] for _ in range(n)], "pooled": [torch.empty(0)] * n, "bounds": [torch.empty(0)] * n,
            "text": texts, "num_units": K, "tokens": "unsup"}


LETTERS = sorted(set("".join(WORDS)))


def _corpus(tmp_path: Path, rng: random.Random, lm_sentences: int, orders: str,
            splits: dict[str, int]) -> tuple[Path, Path]:
    """A grapheme lang dir from random LM text, and simulated token sets of the given sizes."""
    lm = tmp_path / "lm.txt"
    lm.write_text("\n".join(_sentences(rng, lm_sentences)) + "\n")
    lang = tmp_path / "lang"
    assert prepare_lang.main(["--lm-text", str(lm), "--units", "graphemes", "--out-dir", str(lang),
                              "--orders", orders]) == 0
    tok = tmp_path / "tokens"
    tok.mkdir()
    for split, n in splits.items():
        torch.save(_tokens(rng, _sentences(rng, n), LETTERS, K=len(LETTERS) + 1), tok / f"{split}.pt")
    return tok, lang


def test_supervised_ceiling_and_decoding_from_transcripts(tmp_path: Path):
    tok, lang = _corpus(tmp_path, random.Random(0), 400, "2,3", {"train": 150, "dev": 20, "test": 30})
    common = ["--tokens-dir", str(tok), "--lang-dir", str(lang), "--topology", "loop", "--stay-prob", "0.5"]
    for name, opts in (("sup", ["--supervision", "sup"]), ("floor", ["--supervision", "lm-only"])):
        assert train.main(common + ["--exp-dir", str(tmp_path / name), *opts]) == 0
        assert decode_cli.main(["--exp-dir", str(tmp_path / name), "--tokens-dir", str(tok), "--lang-dir",
                                str(lang), "--lm-scales", "1"]) == 0
    def strict(path: Path) -> dict:  # standard JSON: no NaN/Infinity literals
        return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path}: {c}"))

    info = strict(tmp_path / "floor" / "train.json")
    assert info["train_ll_per_token"] is None and info["args"]["stay_prob"] == 0.5
    assert info["args"]["init_from"] is None and strict(tmp_path / "sup" / "train.json")["train_ll_per_token"] < 0
    sup = json.loads((tmp_path / "sup" / "decode.json").read_text())
    floor = json.loads((tmp_path / "floor" / "decode.json").read_text())
    assert sup["test"]["per"] < 15 < 50 < floor["test"]["per"], (sup["test"]["per"], floor["test"]["per"])
    # references are the transcripts' graphemes (no sil), as written in recogs-test.txt
    first = (tmp_path / "sup" / "recogs-test.txt").read_text().splitlines()[0]
    assert first.split("ref=")[1].replace(" ", "") == torch.load(tok / "test.pt")["text"][0].replace(" ", "")


def test_decode_refuses_tokens_the_model_was_not_trained_on(tmp_path: Path, capsys):
    tok, lang = _corpus(tmp_path, random.Random(2), 100, "2", {"train": 30, "dev": 5, "test": 5})
    exp = tmp_path / "exp"
    assert train.main(["--tokens-dir", str(tok), "--lang-dir", str(lang), "--exp-dir", str(exp),
                       "--lm-order", "2", "--topology", "loop", "--num-restarts", "1", "--restart-iters", "1",
                       "--num-epochs", "1"]) == 0
    for name, change in (("wider", {"num_units": len(LETTERS) + 5}), ("frames", {"tokens": "frames"})):
        other = tmp_path / name
        other.mkdir()
        for split in ("dev", "test"):
            torch.save({**torch.load(tok / f"{split}.pt"), **change}, other / f"{split}.pt")
        rc = decode_cli.main(["--exp-dir", str(exp), "--tokens-dir", str(other), "--lang-dir", str(lang)])
        err = capsys.readouterr().err
        assert rc == 1 and str(other / "dev.pt") in err and f"trained on {tok}" in err, err
    assert not (exp / "decode.json").exists()  # nothing written


def test_oracle_units_need_alignments(tmp_path: Path, capsys):
    tok, lang = _corpus(tmp_path, random.Random(1), 50, "2", {"train": 5})
    rc = train.main(["--tokens-dir", str(tok), "--lang-dir", str(lang), "--exp-dir", str(tmp_path / "e"),
                     "--units", "oracle", "--lm-order", "2"])
    assert rc == 1 and "needs time-aligned phones" in capsys.readouterr().err
