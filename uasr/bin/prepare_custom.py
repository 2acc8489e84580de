"""Stage 0 for your own corpus: Kaldi data dirs or TSVs -> lhotse manifests + LM text.

    uasr prepare-custom --train SRC --dev SRC --test SRC --lm-text FILE --out-dir DIR
                        [--normalize english|none] [--sample-rate 16000] [--force]

SRC is a Kaldi data dir (``wav.scp``, ``utt2spk``, optional ``text``/``segments``/
``spk2gender``) or a ``.tsv``/``.txt`` file (``audio_path<TAB>transcript[<TAB>speaker]``,
header optional; without a speaker column the speaker is the audio file's parent folder,
which per-speaker CMVN relies on). dev/test need transcripts; train's are optional.
Writes ``<out>/manifests/custom_{recordings,supervisions}_<split>.jsonl.gz``,
``<out>/lm_text.txt`` and ``<out>/info.json``. See :mod:`uasr.data.custom`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

COMMAND = "prepare-custom"
HELP = "any corpus (Kaldi data dirs or TSVs) + unpaired text into stage-0 lhotse manifests"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--train", type=Path, required=True, help="Kaldi data dir or .tsv/.txt (transcripts optional)")
    p.add_argument("--dev", type=Path, help="Kaldi data dir or .tsv/.txt with transcripts")
    p.add_argument("--test", type=Path, help="Kaldi data dir or .tsv/.txt with transcripts (needed to score)")
    p.add_argument("--lm-text", type=Path, help="unpaired text, one sentence per line")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--normalize", default="english", choices=("english", "none"),
                   help="english: lowercase, numbers spelled out, punctuation removed; none: whitespace only")
    p.add_argument("--sample-rate", type=int, default=16000,
                   help="record a lazy lhotse resample to this rate in the manifests (0: native rate)")
    p.add_argument("--force", action="store_true", help="redo even if info.json and the manifests exist")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from uasr.data.custom import prepare_custom
    try:
        if args.sample_rate < 0:
            raise ValueError(f"--sample-rate {args.sample_rate}: must be positive (or 0 for native)")
        prepare_custom(args.out_dir, train=args.train, dev=args.dev, test=args.test, lm_text=args.lm_text,
                       normalize_how=args.normalize, sample_rate=args.sample_rate or None, force=args.force)
    except (FileNotFoundError, ValueError) as e:
        print(f"{COMMAND}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
