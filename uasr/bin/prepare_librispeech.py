"""Stage 0 of recipes/librispeech: lhotse manifests of LibriSpeech parts, LM text, lexicon.

    uasr prepare-librispeech --corpus-dir DIR --out-dir DIR [--train-part train-clean-5]
        [--dev-part dev-clean-2] [--test-part auto] [--download] [--lm-text FILE|none]
        [--max-lm-sentences N] [--force]

``--corpus-dir`` holds ``LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``
+ ``<speaker>-<chapter>.trans.txt`` (``--download`` fetches missing parts with lhotse), and,
unless ``--lm-text FILE`` is given, the LM corpus ``librispeech-lm-norm.txt(.gz)``; an official
``librispeech-lexicon.txt`` there is copied to ``<out>/lexicon_extra.txt``. Writes
``<out>/manifests/librispeech_{recordings,supervisions}_{train,dev,test}.jsonl.gz``,
``<out>/lm_text.txt`` and ``<out>/info.json`` (see :mod:`uasr.data.librispeech`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

COMMAND = "prepare-librispeech"
HELP = "LibriSpeech / mini_librispeech stage 0: lhotse manifests, LM text, official lexicon"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--corpus-dir", type=Path, required=True,
                   help="holds LibriSpeech/<part>/... (and librispeech-lm-norm.txt(.gz), librispeech-lexicon.txt)")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--train-part", default="train-clean-5")
    p.add_argument("--dev-part", default="dev-clean-2")
    p.add_argument("--test-part", default="auto",
                   help="auto: test-clean for dev-clean (test-other for dev-other), the dev part for "
                        "mini_librispeech (which has no test part)")
    p.add_argument("--download", action="store_true",
                   help="download missing parts with lhotse (OpenSLR 12 / 31) into --corpus-dir")
    p.add_argument("--lm-text", default="none",
                   help="word text for the LMs, one sentence per line; none: "
                        "<corpus-dir>/librispeech-lm-norm.txt(.gz)")
    p.add_argument("--max-lm-sentences", type=int, default=200000,
                   help="random sample of this many LM sentences (0 = all)")
    p.add_argument("--num-jobs", type=int, default=2, help="lhotse threads reading audio headers")
    p.add_argument("--seed", type=int, default=1, help="seed of the LM-sentence sample")
    p.add_argument("--force", action="store_true", help="redo even if the outputs exist")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from uasr.data.librispeech import prepare
    lm_text = None if args.lm_text.lower() == "none" else Path(args.lm_text)
    try:
        info = prepare(args.corpus_dir, args.out_dir, train_part=args.train_part, dev_part=args.dev_part,
                       test_part=None if args.test_part == "auto" else args.test_part, lm_text=lm_text,
                       max_lm_sentences=args.max_lm_sentences, download=args.download,
                       force=args.force, num_jobs=args.num_jobs, seed=args.seed)
    except (FileNotFoundError, ValueError) as e:
        print(f"{COMMAND}: {e}", file=sys.stderr)
        return 1
    for split, s in info["splits"].items():
        logging.info(f"{split}: {s['part']}, {s['utterances']} utterances, {s['speakers']} speakers, "
                     f"{s['hours']:.3f} h")
    logging.info(f"LM text: {info['lm_sentences']} sentences ({info['lm_removed_overlaps']} overlapping "
                 f"the transcripts removed); lexicon_extra: {bool(info['lexicon_extra'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
