"""The lang stage of every speech recipe: units of the unpaired text, unit (and word) n-gram LMs.

Units (``--units``):

- ``phones``: CMUdict + flite's G2P (the pronunciation source of the flite voices), optionally
  overridden/extended by ``--lexicon`` (a CMU-style file such as LibriSpeech's, or with
  ``--base-lexicon none --lexicon FILE`` any language's lexicon with its own phone symbols);
- ``graphemes``: the characters of each word (no lexicon needed; any language);
- ``given``: ``--lm-units FILE`` already holds unit sequences (e.g. TIMIT's matched setting:
  the train phone transcripts), one sentence per line.

``sil`` opens and closes every sentence and separates clauses at punctuation (where TTS voices
pause). The words of the transcripts in ``--manifest-dir`` are pronounced too, so corpora
without time-aligned phones get their references from ``lexicon.txt``.
Writes ``phones.txt``, ``lexicon.txt``, ``lang.json``, ``lm_text_phones.txt``,
``lm_<n>gram.arpa`` (and ``lm_words_<n>gram.arpa`` with ``--word-orders``) and ``lm.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Callable

from tqdm import tqdm

COMMAND = "prepare-lang"
HELP = "units of the LM text (phones/graphemes/given), unit and word n-gram LMs (ARPA)"
_CLAUSE = re.compile(r"[,;:!?.()]+")


def unit_sentence(sentence: str, to_units: Callable[[list[str]], list[str]],
                  normalize: Callable[[str], str]) -> list[str]:
    """``sil`` + units of each clause joined by ``sil`` + ``sil`` (TTS pause placement)."""
    from uasr.lang.phones import SIL
    out = [SIL]
    for clause in _CLAUSE.split(sentence):
        words = normalize(clause).split()
        if words:
            out += to_units(words) + [SIL]
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--lm-text", type=Path, default=None, help="word text, one sentence per line")
    p.add_argument("--lm-units", type=Path, default=None,
                   help="--units given: unit sequences, one sentence per line")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--units", default="phones", choices=["phones", "graphemes", "given"])
    p.add_argument("--base-lexicon", default="cmudict", choices=["cmudict", "none"])
    p.add_argument("--lexicon", type=Path, default=None,
                   help="extra lexicon 'word phone ...' (takes precedence over the base)")
    p.add_argument("--normalize", default="english", choices=["english", "none"],
                   help="text normalisation (none: whitespace only; any language)")
    p.add_argument("--symbols", default="auto",
                   help="label inventory: auto (ARPAbet-39 + sil for CMU-style phones, else the "
                        "units seen), timit39 (units folded to TIMIT's 39 scoring phones), or a "
                        "file with one symbol per line")
    p.add_argument("--manifest-dir", type=Path, default=None,
                   help="supervision manifests whose transcripts get pronunciations (references)")
    p.add_argument("--manifest-prefix", default="synth")
    p.add_argument("--orders", default="2,3,4")
    p.add_argument("--word-orders", default="", help="word n-gram LMs for word decoding, e.g. 2,3")
    p.add_argument("--max-sentences", type=int, default=0, help="0 = all")
    return p




def _transcripts(manifest_dir: Path, prefix: str) -> list[str]:
    from lhotse import SupervisionSet
    paths = sorted(manifest_dir.glob(f"{prefix}_supervisions_*.jsonl.gz"))
    if not paths:
        raise FileNotFoundError(f"no {prefix}_supervisions_*.jsonl.gz in {manifest_dir}: run stage 0 first")
    return [s.text for p in paths for s in SupervisionSet.from_file(p) if s.text]


def _symbols(spec: str, seen: set[str], cmu_style: bool) -> list[str]:
    from uasr.lang.phones import PHONES, SIL, timit_map
    if spec == "auto":
        if cmu_style and seen <= set(PHONES):
            return list(PHONES)
        return sorted(seen - {SIL}) + [SIL]
    if spec == "timit39":
        base = sorted({v for v in timit_map(39).values() if v and v != SIL})
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"--symbols {spec}: not auto, timit39 or an existing file")
        base = [s for s in path.read_text(encoding="utf-8").split() if s != SIL]
    unknown = sorted(seen - set(base) - {SIL})
    if unknown:
        raise ValueError(f"--symbols {spec} lacks unit(s) {' '.join(unknown[:10])} found in the text")
    return base + [SIL]


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        info = prepare(args)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"prepare-lang: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 1
    logging.info(json.dumps(info, default=str))
    return 0


def prepare(args: argparse.Namespace) -> dict:
    from uasr.lang.langdir import graphemes, normalizer
    from uasr.lang.lexicon import Lexicon
    from uasr.lang.phones import SIL
    from uasr.lm.arpa import write_arpa
    from uasr.lm.ngram import perplexity, train_ngram

    src = args.lm_units if args.units == "given" else args.lm_text
    if src is None:
        raise ValueError("--units given needs --lm-units FILE" if args.units == "given"
                         else "--lm-text FILE is required")
    if not src.is_file():
        raise FileNotFoundError(f"{src} is missing: run stage 0 first")
    sents = [s for s in src.read_text(encoding="utf-8").splitlines() if s.strip()]
    if args.max_sentences:
        sents = sents[:args.max_sentences]
    if not sents:
        raise ValueError(f"{src} has no sentences")
    normalize = normalizer(args.normalize)
    transcripts = ([normalize(t) for t in _transcripts(args.manifest_dir, args.manifest_prefix)]
                   if args.manifest_dir else [])

    lexicon: dict[str, list[str]] = {}
    oov: list[str] = []
    if args.units == "given":
        units = [s.split() for s in sents]
        units = [u if u[:1] == [SIL] else [SIL] + u for u in units]
        units = [u if u[-1:] == [SIL] else u + [SIL] for u in units]
        if transcripts:
            raise ValueError("--units given: the transcripts cannot be pronounced; references must "
                             "come from phone alignments (omit --manifest-dir)")
    else:
        if args.units == "phones":
            lex = Lexicon.from_cmudict() if args.base_lexicon == "cmudict" else Lexicon({}, g2p=None)
            if args.lexicon:
                lex.update(Lexicon.from_file(args.lexicon, arpabet=args.base_lexicon == "cmudict"))
            words = sorted({w for s in sents + transcripts for w in normalize(s).split()})
            oov = lex.add_oovs(words)
            to_units = lex.phonemize
        else:
            words = sorted({w for s in sents + transcripts for w in normalize(s).split()})
            def to_units(ws: list[str]) -> list[str]:
                return [g for w in ws for g in graphemes(w)]
        units = [unit_sentence(s, to_units, normalize) for s in tqdm(sents, desc="units", unit="sent")]
        lexicon = {w: to_units([w]) for w in words}
        logging.info(f"{len(sents)} LM sentences, {len(transcripts)} transcripts, {len(words)} word "
                     f"types; {len(oov)} pronounced by G2P")

    if args.symbols == "timit39":  # CMU phones -> TIMIT-39 (ao->aa, zh->sh, ...), as TIMIT scores
        from uasr.lang.phones import timit_map
        fold = timit_map(39)
        def fold_units(us: list[str]) -> list[str]:
            return [v for v in (u if u == SIL else fold.get(u, u) for u in us) if v]
        units = [fold_units(u) for u in units]
        lexicon = {w: fold_units(p) for w, p in lexicon.items()}
    seen = {u for s in units for u in s} | {u for p in lexicon.values() for u in p}
    symbols = _symbols(args.symbols, seen, args.units == "phones" and args.base_lexicon == "cmudict")
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "phones.txt", "".join(f"{p} {i}\n" for i, p in enumerate(symbols)))
    _write(out / "lexicon.txt", "".join(f"{w} {' '.join(p)}\n" for w, p in sorted(lexicon.items())))
    _write(out / "lm_text_phones.txt", "".join(" ".join(u) + "\n" for u in units))
    held = len(units) // 50  # 2 % held out only for the reported perplexity (none when tiny)
    info = {"sentences": len(sents), "phones": sum(map(len, units)), "oov_types": len(oov),
            "units": args.units, "symbols": len(symbols), "ppl": {}, "word_ppl": {}}
    for n in (int(o) for o in args.orders.split(",") if o):
        write_arpa(train_ngram(units, n, vocab=symbols), out / f"lm_{n}gram.arpa")
        if held:
            info["ppl"][n] = perplexity(train_ngram(units[:-held], n, vocab=symbols), units[-held:])
    if args.word_orders:
        if args.units == "given":
            raise ValueError("--word-orders needs word text (--lm-text), not --units given")
        words_text = [normalize(s).split() for s in sents]
        words_text = [w for w in words_text if w]
        for n in (int(o) for o in args.word_orders.split(",") if o):
            write_arpa(train_ngram(words_text, n), out / f"lm_words_{n}gram.arpa")
            if held:
                info["word_ppl"][n] = perplexity(train_ngram(words_text[:-held], n), words_text[-held:],
                                                 skip_oov=True)
    _write(out / "lang.json", json.dumps({"units": args.units, "sil": SIL, "normalize": args.normalize,
                                          "base_lexicon": args.base_lexicon,
                                          "lexicon": str(args.lexicon or "")}, indent=1))
    _write(out / "lm.json", json.dumps(info, indent=1, default=str))  # last: the stage's done-marker
    return info


if __name__ == "__main__":
    sys.exit(main())
