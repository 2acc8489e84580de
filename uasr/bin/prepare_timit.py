"""Stage 0 of a TIMIT recipe: Kaldi splits, folded phone alignments, LM text.

    uasr prepare-timit --timit-dir DIR --out-dir DIR [--lm-text matched|FILE]
                       [--expected-counts default|none|FILE.json] [--num-phones 39|48] [--force]

Writes ``<out>/manifests/timit_{recordings,supervisions}_{train,dev,test}.jsonl.gz``, either
``<out>/lm_text_phones.txt`` (matched: the train phone transcripts) or ``<out>/lm_text.txt``
(a copy of FILE: unmatched word text), and ``<out>/info.json``. Prints the per-split counts
and exits 1, one line per mismatch, when they differ from the expected ones (default: the
full corpus, Kaldi's 462/3,696, 50/400/15,057 and 24/192/7,215). See :mod:`uasr.data.timit`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

COMMAND = "prepare-timit"
HELP = "TIMIT stage 0: Kaldi train/dev/core-test splits, 39-phone alignments, LM text"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--timit-dir", type=Path, required=True,
                   help="TIMIT copy: holds TRAIN/ and TEST/ (or a TIMIT/ or timit/ folder that does)")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--lm-text", default="matched",
                   help="'matched' (train phone transcripts) or a word text FILE (unmatched)")
    p.add_argument("--expected-counts", default="default",
                   help="'default' (full corpus), 'none' (no check) or a JSON file {split: {count: n}}")
    p.add_argument("--num-phones", type=int, default=39, choices=(39, 48))
    p.add_argument("--force", action="store_true", help="rebuild even if info.json and manifests exist")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from uasr.data.timit import CountsMismatch, format_counts, is_prepared, load_expected, prepare_timit
    try:
        if not args.force and is_prepared(args.out_dir, args.lm_text, args.num_phones):
            logging.info(f"{args.out_dir}: TIMIT already prepared (info.json and manifests exist); "
                         "--force rebuilds")
            return 0
        expected = load_expected(args.expected_counts)
        info = prepare_timit(args.timit_dir, args.out_dir, lm_text=args.lm_text, expected=expected,
                             num_phones=args.num_phones)
        print(format_counts(info["counts"]))
    except CountsMismatch as e:
        print(format_counts(e.counts))
        for problem in e.problems:
            print(f"{COMMAND}: {problem}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as e:
        msg = " ".join(str(e).split())
        print(f"{COMMAND}: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
