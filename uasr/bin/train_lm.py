"""Train an n-gram LM on tokenised text and write it as ARPA.

    uasr train-lm --order 3 --text data/lm/phones.txt --out data/lm/phone3.arpa
    uasr train-lm --order 3 --text train.txt --out lm.arpa.gz --ppl dev.txt

``--text``: one sentence per line, tokens separated by whitespace (phones or words); empty lines
are skipped. ``--ppl`` reports per-token perplexity (``</s>`` counted) of another text.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from uasr.lm.arpa import write_arpa
from uasr.lm.ngram import SMOOTHING, perplexity, train_ngram

COMMAND = "train-lm"
HELP = "estimate an n-gram LM (modified Kneser-Ney / Witten-Bell) and write ARPA"


def read_sentences(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise SystemExit(f"uasr train-lm: {path}: no such text file (one sentence per line)")
    with open(path, encoding="utf-8") as f:
        sents = [line.split() for line in f if line.strip()]
    if not sents:
        raise SystemExit(f"uasr train-lm: {path}: no non-empty lines; give a file with one "
                         f"tokenised sentence per line")
    return sents


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--order", type=int, required=True, help="n-gram order (1..)")
    p.add_argument("--text", type=Path, required=True, help="training text, a sentence per line")
    p.add_argument("--out", type=Path, required=True, help="output ARPA (.gz compresses)")
    p.add_argument("--smoothing", choices=SMOOTHING, default="kneser_ney")
    p.add_argument("--vocab", type=Path, help="file of tokens (one per line) the LM must cover")
    p.add_argument("--ppl", type=Path, help="report perplexity on this text")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.order < 1:
        raise SystemExit(f"uasr train-lm: --order must be >= 1, got {args.order}")
    t0 = time.time()
    sents = read_sentences(args.text)
    vocab = None
    if args.vocab:
        if not args.vocab.is_file():
            raise SystemExit(f"uasr train-lm: {args.vocab}: no such vocabulary file")
        vocab = [t for line in open(args.vocab, encoding="utf-8") for t in line.split()[:1]]
    lm = train_ngram(sents, args.order, smoothing=args.smoothing, vocab=vocab)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_arpa(lm, args.out)
    sizes = " ".join(f"{k}-grams={len(lm.probs[k])}" for k in range(1, lm.order + 1))
    logging.info(f"{args.out}: order {lm.order}, {args.smoothing}, {sizes} "
                 f"({sum(map(len, sents))} tokens, {time.time() - t0:.1f} s)")
    if args.ppl:
        ppl = perplexity(lm, read_sentences(args.ppl), skip_oov=True)
        print(f"perplexity {args.ppl}: {ppl:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
