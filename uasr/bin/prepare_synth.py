"""Stage 0 of recipes/synth: synthesise the TTS corpus and write lhotse manifests."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

COMMAND = "prepare-synth"
HELP = "synthesise the flite/KJV corpus (lhotse manifests with phone alignments)"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--size", default="tiny", help="tiny | default | large")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nj", type=int, default=2, help="parallel TTS jobs")
    p.add_argument("--voices", default="kal16,awb,rms,slt", help="comma-separated flite voices")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from uasr.data.synth import build
    try:
        build(args.out_dir, args.size, args.seed, args.nj, tuple(args.voices.split(",")))
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"prepare-synth: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
