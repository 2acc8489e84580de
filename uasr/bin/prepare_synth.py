"""Stage 0 of recipes/synth: synthesise the TTS corpus and write lhotse manifests."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

COMMAND = "prepare-synth"
HELP = "synthesise the TTS/KJV corpus (flite, festival, espeak-ng; lhotse manifests with phone alignments)"
VOICES_HELP = """comma-separated voices: engine:voice (flite:kal16, festival:kal|ked|slt-hts,
espeak:<English accent>[+variant], e.g. espeak:en-gb+m2), a bare flite voice (kal16,awb,rms,slt),
or a keyword: default (flite's four + festival's three: one CMU pronunciation source, so LM and
speech agree), all (default + espeak-ng accents/variants: a harder, mismatched variant), flite,
festival, espeak. Default: %(default)s"""


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--out-dir", type=Path, help="corpus directory (required unless --apt-packages)")
    p.add_argument("--size", default="tiny", help="tiny | default | large")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nj", type=int, default=2, help="parallel TTS jobs")
    p.add_argument("--voices", default="kal16,awb,rms,slt", help=VOICES_HELP)
    p.add_argument("--apt-packages", action="store_true",
                   help="print the 'command package' lines the voices need (for the recipe's "
                        "ensure_apt) and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from uasr.data.tts import apt_requirements, parse_voices
    try:
        voices = parse_voices(args.voices)
        if args.apt_packages:
            for cmd, pkg in apt_requirements(voices):
                print(cmd, pkg)
            return 0
        if args.out_dir is None:
            raise ValueError("--out-dir is required")
        from uasr.data.synth import build
        build(args.out_dir, args.size, args.seed, args.nj, args.voices)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"prepare-synth: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
