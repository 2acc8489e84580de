"""Stages 0 and 2 of recipes/fsdd: FSDD digit-string corpus + isolated control, digit lang.

    uasr prepare-fsdd corpus --fsdd-dir DIR --out-dir DIR [--size tiny|default] [--seed S]
    uasr prepare-fsdd lang --lm-text FILE --out-dir DIR [--orders 1,2,3] [--pc-positions 10]

``corpus`` writes ``<out>/{strings,isolated}/manifests/synth_{recordings,supervisions}_<split>
.jsonl.gz`` (the names ``uasr prepare-tokens`` reads), 16 kHz FLAC audio, ``lm_text.txt`` and
``<out>/info.json``. ``lang`` writes ``phones.txt`` (digit words as the symbols),
``lm_<n>gram.arpa`` and ``lm.json`` for ``uasr train/decode``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

COMMAND = "prepare-fsdd"
HELP = "FSDD digit strings + isolated-digit control (corpus) and digit n-gram LMs (lang)"

# utterances per split (strings) and caps on the isolated control (0 = every recording)
SIZES = {
    "tiny": {"strings": {"train": 40, "dev": 6, "test": 10}, "isolated": {"train": 160, "dev": 30, "test": 60},
             "lm_sentences": 2000},
    "default": {"strings": {"train": 500, "dev": 60, "test": 200}, "isolated": {"train": 0, "dev": 0, "test": 0},
                "lm_sentences": 20000},
}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("corpus", help="stage 0: digit strings + isolated control (lhotse manifests)")
    c.add_argument("--fsdd-dir", type=Path, required=True, help="FSDD copy (recordings/*.wav)")
    c.add_argument("--out-dir", type=Path, required=True)
    c.add_argument("--size", default="default", choices=sorted(SIZES))
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--test-speakers", default="nicolas,theo", help="unseen speakers of dev/test")
    c.add_argument("--dev-takes", type=int, default=10, help="takes 0..N-1 of the test speakers form dev")
    c.add_argument("--alpha", type=float, default=0.2, help="Dirichlet concentration of the bigram rows")
    c.add_argument("--min-len", type=int, default=10)
    c.add_argument("--max-len", type=int, default=12)
    c.add_argument("--pause", default="0.1,0.3", help="pause length range in seconds")
    l = sub.add_parser("lang", help="stage 2: digit symbol table + n-gram LMs")
    l.add_argument("--lm-text", type=Path, required=True)
    l.add_argument("--out-dir", type=Path, required=True)
    l.add_argument("--orders", default="1,2,3")
    l.add_argument("--pc-positions", type=int, default=10, help="N of the reported P_C (condition 2)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from uasr.data.fsdd import build_corpus, write_lang
    try:
        if args.what == "corpus":
            if not 1 <= args.min_len <= args.max_len:
                raise ValueError(f"--min-len {args.min_len} / --max-len {args.max_len}: need 1 <= min <= max")
            lo, hi = (float(v) for v in args.pause.split(","))
            cfg = SIZES[args.size]
            info = build_corpus(args.fsdd_dir, args.out_dir, num_strings=cfg["strings"],
                                lm_sentences=cfg["lm_sentences"],
                                test_speakers=[s for s in args.test_speakers.split(",") if s],
                                dev_takes=args.dev_takes, seed=args.seed, alpha=args.alpha,
                                min_len=args.min_len, max_len=args.max_len, pause=(lo, hi),
                                max_isolated=cfg["isolated"])
            for kind in ("strings", "isolated"):
                logging.info(f"{kind}: " + ", ".join(f"{s} {v['utterances']} utts / {v['digits']} digits / "
                                                     f"{v['hours'] * 60:.1f} min" for s, v in info[kind].items()))
            logging.info(f"P_C strings {info['pc_strings']}; isolated {info['pc_isolated']}")
        else:
            info = write_lang(args.lm_text, args.out_dir, [int(o) for o in args.orders.split(",")],
                              args.pc_positions)
            logging.info(json.dumps(info))
    except (FileNotFoundError, ValueError) as e:
        print(f"prepare-fsdd: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
