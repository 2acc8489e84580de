"""Stage 2 of recipes/synth: phonemize the (unpaired) LM text and estimate phone n-gram LMs.

The LM text is phonemized with CMUdict + flite's G2P, the pronunciation source of the flite
voices, with ``sil`` at sentence ends and at clause punctuation (where flite pauses).
Writes ``phones.txt`` (symbol table), ``lm_text_phones.txt``, ``lm_<n>gram.arpa``, ``lm.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from tqdm import tqdm

COMMAND = "prepare-lang"
HELP = "phonemize the LM text and estimate phone n-gram LMs (ARPA)"
_CLAUSE = re.compile(r"[,;:!?.()]+")


def phonemize_sentence(sentence: str, lexicon) -> list[str]:
    """``sil`` + phones of each clause joined by ``sil`` + ``sil`` (flite's pause placement)."""
    from uasr.lang.phones import SIL
    from uasr.lang.text import normalize_text
    out = [SIL]
    for clause in _CLAUSE.split(sentence):
        words = normalize_text(clause).split()
        if words:
            out += lexicon.phonemize(words) + [SIL]
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--lm-text", type=Path, required=True, help="one sentence per line")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--orders", default="2,3,4")
    p.add_argument("--max-sentences", type=int, default=0, help="0 = all")
    p.add_argument("--dev-text", type=Path, default=None,
                   help="supervision manifest whose text gives a (reported) perplexity")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from uasr.lang.lexicon import Lexicon
    from uasr.lang.phones import PHONES
    from uasr.lm.arpa import write_arpa
    from uasr.lm.ngram import perplexity, train_ngram

    if not args.lm_text.is_file():
        print(f"prepare-lang: {args.lm_text} is missing: run stage 0 first", file=sys.stderr)
        return 1
    sents = [s for s in args.lm_text.read_text().splitlines() if s.strip()]
    if args.max_sentences:
        sents = sents[:args.max_sentences]
    if not sents:
        print(f"prepare-lang: {args.lm_text} has no sentences", file=sys.stderr)
        return 1
    lex = Lexicon.from_cmudict()
    from uasr.lang.text import normalize_text
    oov = lex.add_oovs(sorted({w for s in sents for w in normalize_text(s).split()}))
    logging.info(f"{len(sents)} LM sentences; {len(oov)} OOV word types pronounced by G2P")
    phon = [phonemize_sentence(s, lex) for s in tqdm(sents, desc="phonemize", unit="sent")]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    _write(args.out_dir / "phones.txt", "".join(f"{p} {i}\n" for i, p in enumerate(PHONES)))
    _write(args.out_dir / "lm_text_phones.txt", "".join(" ".join(p) + "\n" for p in phon))
    held = phon[-max(1, len(phon) // 50):]  # 2 % held out only for the reported perplexity
    info = {"sentences": len(sents), "phones": sum(map(len, phon)), "oov_types": len(oov), "ppl": {}}
    for n in (int(o) for o in args.orders.split(",")):
        lm = train_ngram(phon, n, vocab=PHONES)
        info["ppl"][n] = perplexity(train_ngram(phon[:-len(held)], n, vocab=PHONES), held)
        write_arpa(lm, args.out_dir / f"lm_{n}gram.arpa")
        logging.info(f"phone {n}-gram: held-out perplexity {info['ppl'][n]}")
    _write(args.out_dir / "lm.json", json.dumps(info, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
