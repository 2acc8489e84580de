#!/usr/bin/env python3
"""Data preparation of the cipher recipe (stages 0-2); see recipes/cipher/README.md.

    text     KJV verses -> normalised word text, split into LM text and cipher text for the
             'unmatched' (different books) and 'matched' (same books, other verses) conditions
    phones   words -> ARPAbet-39 phones with the CMUdict lexicon (+ flite G2P for OOVs)
    lm       phone n-gram LMs (modified Kneser-Ney) of the given orders on each LM text
    encipher each phone owns M private symbols with a random emission distribution (seeded);
             cipher text = held-out test set + a shuffled training pool (sizes are prefixes)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from uasr.lang import ARPABET39, Lexicon, normalize_text
from uasr.lm import perplexity, train_ngram, write_arpa

CONDITIONS = ("matched", "unmatched")


def write_lines(path: Path, lines) -> None:
    """Atomic write, so an interrupted stage leaves no half-written output behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        sys.exit(f"{path}: missing; run the earlier stages of the cipher recipe first")
    return [line.rstrip("\n") for line in open(path, encoding="utf-8")]


def kjv_verses(bible: str) -> list[tuple[str, str]]:
    """(book, text) for the 31102 KJV verses, from Debian's ``bible`` program."""
    if shutil.which(bible) is None:
        sys.exit(f"{bible}: not found; install Debian packages bible-kjv bible-kjv-text")
    out = subprocess.run([bible, "-l0", "gen1:1-rev22:21"], capture_output=True, text=True,
                         check=True).stdout
    verses, book = [], None
    for line in out.splitlines():
        if not line.strip():
            continue
        head = re.match(r"^(\S.*?) \d+$", line)
        if head:
            book = head.group(1)
            continue
        m = re.match(r"^\s+\d+ (.*)$", line)
        if m is None or book is None:
            sys.exit(f"unexpected output of '{bible}': {line[:80]!r}; is bible-kjv-text intact?")
        verses.append((book, m.group(1)))
    if len(verses) < 30000:
        sys.exit(f"'{bible}' gave only {len(verses)} verses (expected 31102)")
    return verses


def cmd_text(a: argparse.Namespace) -> None:
    verses = kjv_verses(a.bible)
    books = list(dict.fromkeys(b for b, _ in verses))
    rng = random.Random(a.seed)
    sides: dict[str, dict[str, list[str]]] = {c: {"lm": [], "cipher": []} for c in CONDITIONS}
    for i, (book, text) in enumerate(verses):
        if i % a.every:
            continue
        words = normalize_text(text)
        if not words:
            continue
        # unmatched: alternate whole books (each side spans both testaments and all genres)
        sides["unmatched"]["lm" if books.index(book) % 2 == 0 else "cipher"].append(words)
        # matched: the same books, a random half of the verses on each side
        sides["matched"]["lm" if rng.random() < 0.5 else "cipher"].append(words)
    for c in CONDITIONS:
        for s in ("lm", "cipher"):
            write_lines(a.dir / "text" / f"{c}_{s}.txt", sides[c][s])


def cmd_phones(a: argparse.Namespace) -> None:
    lex = Lexicon.from_cmudict()
    if a.lexicon:
        lex.update(Lexicon.from_file(a.lexicon))
    files = sorted((a.dir / "text").glob("*.txt"))
    if not files:
        sys.exit(f"{a.dir}/text: no text; run stage 0 first")
    texts = {f.stem: read_lines(f) for f in files}
    added = lex.add_oovs(w for lines in texts.values() for line in lines for w in line.split())
    print(f"lexicon: {len(lex)} words, {len(added)} OOV words pronounced by flite t2p")
    for name, lines in texts.items():
        write_lines(a.dir / "phones" / f"{name}.txt",
                    [" ".join(lex.phonemize(line.split())) for line in lines])
    write_lines(a.dir / "phones" / "g2p_words.txt",
                [f"{w} {' '.join(lex.entries[w][0])}" for w in added])


def cmd_lm(a: argparse.Namespace) -> None:
    for c in CONDITIONS:
        sents = [s.split() for s in read_lines(a.dir / "phones" / f"{c}_lm.txt")]
        if a.max_lm_tokens:
            keep, n = [], 0
            for s in sents:
                if n >= a.max_lm_tokens:
                    break
                keep.append(s)
                n += len(s)
            sents = keep
        held = [s.split() for s in read_lines(a.dir / "phones" / f"{c}_cipher.txt")[:2000]]
        for n in a.orders:
            out = a.dir / "lm" / c / f"phone{n}.arpa"
            lm = train_ngram(sents, n, vocab=ARPABET39)
            out.parent.mkdir(parents=True, exist_ok=True)
            write_arpa(lm, out)
            ppl = perplexity(lm, held)
            print(f"{out}: {sum(map(len, sents))} training phones, "
                  f"{' '.join(str(len(p)) for p in lm.probs[1:])} n-grams, "
                  f"perplexity on 2000 cipher-side verses {ppl:.2f}")


def cmd_encipher(a: argparse.Namespace) -> None:
    phones = list(ARPABET39)
    C, M = len(phones), a.symbols_per_phone
    g = torch.Generator().manual_seed(a.seed)
    # symbol ids are shuffled so that an id says nothing about its phone
    owner = torch.randperm(C * M, generator=g).view(C, M)
    emit = torch.rand(C, M, generator=g, dtype=torch.float64)
    emit = emit / emit.sum(1, keepdim=True)
    table = torch.zeros(C, C * M, dtype=torch.float64)
    table.scatter_(1, owner, emit)
    index = {p: i for i, p in enumerate(phones)}
    for c in CONDITIONS:
        lines = [s for s in read_lines(a.dir / "phones" / f"{c}_cipher.txt") if s]
        random.Random(a.seed).shuffle(lines)
        test, n = [], 0
        while n < a.test_symbols:
            test.append(lines.pop())
            n += len(test[-1].split())
        out = a.dir / "cipher" / c
        for name, part in (("test", test), ("train", lines)):
            ids = [torch.tensor([index[p] for p in s.split()]) for s in part]
            sym = [torch.multinomial(emit[x], 1, generator=g).squeeze(1) for x in ids]
            sym = [owner[x, j] for x, j in zip(ids, sym)]
            write_lines(out / f"{name}.phn", part)
            write_lines(out / f"{name}.sym", [" ".join(map(str, s.tolist())) for s in sym])
        meta = {"phones": phones, "symbols_per_phone": M, "seed": a.seed,
                "num_symbols": C * M, "test_symbols": n,
                "train_pool_symbols": sum(len(s.split()) for s in lines),
                "true_emission": table.tolist()}
        (out / "key.json").write_text(json.dumps(meta))
        print(f"{out}: test {n} symbols, train pool {meta['train_pool_symbols']} symbols")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("text", "phones", "lm", "encipher"))
    p.add_argument("--dir", type=Path, default=Path("data/cipher"))
    p.add_argument("--bible", default="bible", help="the bible-kjv program")
    p.add_argument("--every", type=int, default=1, help="keep every N-th verse (tiny runs)")
    p.add_argument("--lexicon", type=Path, help="extra 'word phone ...' file (overrides CMUdict)")
    p.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--max-lm-tokens", type=int, default=0, help="cap the LM text (0: all)")
    p.add_argument("--symbols-per-phone", type=int, default=3)
    p.add_argument("--test-symbols", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    {"text": cmd_text, "phones": cmd_phones, "lm": cmd_lm, "encipher": cmd_encipher}[a.command](a)


if __name__ == "__main__":
    main()
