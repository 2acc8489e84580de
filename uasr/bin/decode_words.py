"""Word-level decoding of dev/test: lexicon x word n-gram graph (kaldifst), kaldi-decoder, WER.

    uasr decode-words --exp-dir EXP --tokens-dir TOK --lang-dir LANG [--word-lm ARPA]
                      [--lexicon FILE] [--lm-scales 0.5,1,2] [--beam 16]

Loads the checkpoint and the dev/test token sets as ``uasr decode`` does, builds the decoding
graph once (cached in ``<lang-dir>/graphs/``, see :mod:`uasr.wfst`; the topology and its stay
probability come from the checkpoint), decodes dev and test at every LM scale, keeps the scale
with the best dev WER and writes ``recogs-words-<set>.txt``, ``errs-words-<set>.txt`` and
``decode_words.json`` into the experiment directory. References are the token sets' word
transcripts (``TokenSet.text``), normalised like the LM text of the lang stage (``lang.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import torch

COMMAND = "decode-words"
HELP = "word decoding of dev/test with a lexicon + word n-gram graph (kaldifst), WER"
_WORD_LM = re.compile(r"^lm_words_(\d+)gram\.arpa(\.gz)?$")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--tokens-dir", type=Path, required=True)
    p.add_argument("--lang-dir", type=Path, required=True)
    p.add_argument("--word-lm", type=Path, default=None,
                   help="word n-gram ARPA (default: the highest-order <lang-dir>/lm_words_<n>gram.arpa)")
    p.add_argument("--lexicon", type=Path, default=None,
                   help="'word phone phone ...' (default <lang-dir>/lexicon.txt; first pronunciation used)")
    p.add_argument("--epoch", type=int, default=-1, help="checkpoint epoch-N.pt (-1 = latest)")
    p.add_argument("--lm-scales", default="0.5,1,2")
    p.add_argument("--beam", type=float, default=16.0, help="decoder beam (LM units)")
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--sil-prob", type=float, default=0.5, help="optional silence between words")
    p.add_argument("--word-penalty", type=float, default=0.0, help="subtracted per word (LM units)")
    p.add_argument("--oov", default="pronounce", choices=["pronounce", "drop"],
                   help="LM words missing from the lexicon: CMUdict + G2P, or drop them")
    p.add_argument("--graph-dir", type=Path, default=None, help="graph cache (default <lang-dir>/graphs)")
    return p


def find_word_lm(lang_dir: Path) -> Path:
    """The highest-order ``lm_words_<n>gram.arpa`` of a lang dir."""
    found = sorted(((int(m[1]), p) for p in (lang_dir.iterdir() if lang_dir.is_dir() else [])
                    if (m := _WORD_LM.match(p.name))), key=lambda t: t[0])
    if not found:
        raise FileNotFoundError(f"no lm_words_<n>gram.arpa in {lang_dir}: run the lang stage with "
                                f"word LMs (uasr prepare-lang ... --word-orders 2) or pass --word-lm ARPA")
    return found[-1][1]


def word_refs(data, path: Path, normalize: str) -> list[list[str]]:
    """The word transcripts of a token set (``text``), normalised like the lang stage's LM text."""
    texts = data.text
    if len(texts) != len(data.ids) or not any(texts):
        raise ValueError(f"{path} has no word transcripts ('text'): rerun stage 1 (prepare-tokens) "
                         f"on manifests whose supervisions carry text")
    from uasr.lang.langdir import normalizer
    norm = normalizer(normalize)
    return [norm(t or "").split() for t in texts]


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(1)
    from tqdm import tqdm

    from uasr import wfst
    from uasr.bin.decode import check_tokens, emissions_for, load_checkpoint
    from uasr.data.tokens import TokenSet
    from uasr.lang.langdir import read_symbols
    from uasr.decode import per, write_results

    t0 = time.time()
    try:
        arpa = args.word_lm if args.word_lm is not None else find_word_lm(args.lang_dir)
        if not arpa.is_file():
            raise FileNotFoundError(f"{arpa} is missing: {wfst.ARPA_HELP}")
        lexicon = args.lexicon if args.lexicon is not None else args.lang_dir / "lexicon.txt"
        if not lexicon.is_file():
            raise FileNotFoundError(f"{lexicon} is missing: run the lang stage (it writes lexicon.txt) "
                                    f"or pass --lexicon FILE ('word phone phone ...' per line)")
        symbols = read_symbols(args.lang_dir)
        epoch, ckpt = load_checkpoint(args.exp_dir, args.epoch)
        lang_json = args.lang_dir / "lang.json"
        normalize = json.loads(lang_json.read_text()).get("normalize", "english") if lang_json.is_file() else "english"
        sets = {s: TokenSet.load(args.tokens_dir / f"{s}.pt") for s in ("dev", "test")}
        for s, d in sets.items():
            check_tokens(ckpt, d, args.tokens_dir / f"{s}.pt")
        refs = {s: word_refs(d, args.tokens_dir / f"{s}.pt", normalize) for s, d in sets.items()}
        graph = wfst.cached_word_graph(
            args.graph_dir or args.lang_dir / "graphs", lexicon, arpa, symbols,
            topology=ckpt["topology"], stay_prob=float(ckpt.get("stay_prob") or 0.5),
            max_stay=int(ckpt.get("max_stay") or 0),
            sil="sil", sil_prob=args.sil_prob, word_penalty=args.word_penalty, oov=args.oov)
    except (FileNotFoundError, ValueError) as e:
        print(f"decode-words: {e}", file=sys.stderr)
        return 1
    logging.info(f"word graph: {graph.info['graph']['states']} states, {graph.info['graph']['arcs']} arcs, "
                 f"{graph.info['words']} words ({'cached' if graph.info.get('cached') else 'built'})")

    ems = {s: emissions_for(ckpt, d, symbols) for s, d in sets.items()}
    scales = [1.0] if ckpt["supervision"] == "lm-only" else [float(s) for s in args.lm_scales.split(",")]
    hyp: dict = {}
    not_final: dict = {}
    for scale in scales:
        for split in ("dev", "test"):
            em, L = ems[split]
            out, nf = [], 0
            for i in tqdm(range(len(L)), desc=f"decode {split} lm_scale={scale}", unit="utt", leave=False):
                h = wfst.decode(graph, em[i, :int(L[i])], scale, args.beam, args.max_active)
                nf += not h.final
                out.append([w.lower() for w in h.words] if normalize == "english" else h.words)
            hyp[(scale, split)] = out
            not_final[f"{split}@{scale}"] = nf
            if nf:
                logging.warning(f"{split} lm_scale={scale}: {nf} utterance(s) reached no final state "
                                f"(best partial path used); try a larger --beam")
    tuned = {s: round(per(refs["dev"], hyp[(s, "dev")]), 2) for s in scales}
    best = min(tuned, key=tuned.get)
    out = {"epoch": epoch, "lm_scale": best, "dev_wer_by_scale": tuned, "word_lm": str(arpa),
           "lexicon": str(lexicon), "beam": args.beam, "graph": graph.info, "not_final": not_final}
    for split in ("dev", "test"):
        res = write_results(args.exp_dir, f"words-{split}", sets[split].ids, refs[split],
                            hyp[(best, split)], metric="WER")
        out[split] = res
        print(f"{args.exp_dir.name}\t{split}\tWER {res['wer']:.2f}%\t(lm_scale {best}, epoch {epoch})")
    out["decode_seconds"] = round(time.time() - t0, 2)
    tmp = args.exp_dir / "decode_words.json.tmp"
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, args.exp_dir / "decode_words.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
