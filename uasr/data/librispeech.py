"""LibriSpeech / mini_librispeech stage 0: lhotse manifests, LM text, the official lexicon.

Input (``--corpus-dir``), as OpenSLR distributes it (resources 12 and 31) and as
``lhotse.recipes.librispeech.download_librispeech`` unpacks it::

    <corpus>/LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <corpus>/LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    <corpus>/librispeech-lm-norm.txt(.gz)   LM corpus (OpenSLR 11), unless --lm-text FILE
    <corpus>/librispeech-lexicon.txt        optional official lexicon (OpenSLR 11)

Output (``--out-dir``)::

    manifests/librispeech_{recordings,supervisions}_{train,dev,test}.jsonl.gz
    lm_text.txt         one lowercase sentence per line, minus those spoken in train/dev/test
    lexicon_extra.txt   copy of librispeech-lexicon.txt (WORD PH1 PH2 ..., stress digits), if given
    info.json           utterances/speakers/hours per split, LM sentences, overlaps, parts used

One supervision per recording: ``text`` is the transcript lowercased, ``speaker`` the speaker
id, no alignment. The manifests come from lhotse's own ``prepare_librispeech``; the transcripts
are checked first so that a missing file or an empty transcript is a one-line error.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import random
import shutil
import socket
import string
from pathlib import Path

MANIFEST_PREFIX = "librispeech"
SPLITS = ("train", "dev", "test")
LM_FILES = ("librispeech-lm-norm.txt.gz", "librispeech-lm-norm.txt")
LEXICON_FILE = "librispeech-lexicon.txt"
LAYOUT = ("LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac + "
          "<speaker>-<chapter>.trans.txt")
DOWNLOAD_TIMEOUT_S = 60.0
# punctuation other than the apostrophe -> space (overlap keys; C speed via str.translate)
_PUNCT = str.maketrans({c: " " for c in string.punctuation if c != "'"})


def known_parts() -> tuple[str, ...]:
    from lhotse.recipes.librispeech import LIBRISPEECH, MINI_LIBRISPEECH
    return tuple(LIBRISPEECH) + tuple(MINI_LIBRISPEECH)


def default_test_part(dev_part: str) -> str:
    """mini_librispeech has no test part: test on dev; dev-clean -> test-clean etc."""
    if dev_part.startswith("dev-") and dev_part.count("-") == 1:
        return "test-" + dev_part[len("dev-"):]
    return dev_part


def corpus_root(corpus_dir: Path) -> Path:
    """The folder holding the parts: ``<corpus>/LibriSpeech`` (or ``<corpus>`` itself when the
    parts are directly inside it)."""
    sub = corpus_dir / "LibriSpeech"
    return sub if sub.is_dir() or not corpus_dir.is_dir() else corpus_dir


def _missing_part(corpus_dir: Path, part: str) -> str:
    return (f"{corpus_dir / 'LibriSpeech' / part} is missing: put LibriSpeech part {part} under "
            f"{corpus_dir} as {LAYOUT} (OpenSLR 12 / 31), or pass --download")


def check_part(corpus_dir: Path, part: str) -> int:
    """Check a part's transcripts and audio files; returns its number of utterances.

    Raises FileNotFoundError / ValueError naming the file and the fix.
    """
    part_dir = corpus_root(corpus_dir) / part
    if not part_dir.is_dir():
        raise FileNotFoundError(_missing_part(corpus_dir, part))
    trans = sorted(part_dir.rglob("*.trans.txt"))
    if not trans:
        raise FileNotFoundError(f"{part_dir} holds no <speaker>-<chapter>.trans.txt: expected {LAYOUT}; "
                                f"re-extract {part}")
    n = 0
    for t in trans:
        with open(t, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                fields = line.split(maxsplit=1)
                if len(fields) < 2 or not fields[1].strip():
                    raise ValueError(f"{t}:{lineno}: empty transcript for {fields[0]}; add the text "
                                     f"or remove the line (and its audio)")
                flac = t.parent / f"{fields[0]}.flac"
                if not flac.is_file():
                    raise FileNotFoundError(f"{flac} is missing (listed in {t}): restore it or "
                                            f"remove its line; re-extracting {part} fixes both")
                n += 1
    return n


def download_parts(corpus_dir: Path, parts: list[str]) -> None:
    """Download and unpack the parts that are not there yet with lhotse (OpenSLR 12 / 31)."""
    from lhotse.recipes import librispeech as ls
    todo = [p for p in parts if not (corpus_root(corpus_dir) / p).is_dir()]
    unknown = [p for p in todo if p not in known_parts()]
    if unknown:
        raise ValueError(f"cannot download unknown LibriSpeech part(s) {' '.join(unknown)}; "
                         f"known: {' '.join(known_parts())}")
    if not todo:
        return
    corpus_dir.mkdir(parents=True, exist_ok=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a blocked network fails instead of hanging
    try:
        ls.download_librispeech(target_dir=corpus_dir, dataset_parts=todo)
    except Exception as e:  # urllib/HTTP/socket/tar errors: all mean "provide the data yourself"
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise FileNotFoundError(f"could not download {' '.join(todo)} ({reason}); without network, put "
                                f"the data under {corpus_dir} as {LAYOUT} and rerun without "
                                f"--download") from None
    finally:
        socket.setdefaulttimeout(old)


def find_lm_text(corpus_dir: Path) -> Path:
    for d in (corpus_dir, corpus_dir / "LibriSpeech"):
        for name in LM_FILES:
            if (d / name).is_file():
                return d / name
    raise FileNotFoundError(f"no LM text: put librispeech-lm-norm.txt(.gz) (OpenSLR 11) in {corpus_dir}, "
                            f"or pass --lm-text FILE (any word text, one sentence per line)")


def sentence_key(text: str) -> str:
    """Comparison key of a sentence: lowercase words, punctuation (but apostrophes) dropped."""
    return " ".join(text.translate(_PUNCT).lower().split())


def read_lm_text(path: Path, exclude: set[str], max_sentences: int = 0, seed: int = 1,
                 progress: bool = True) -> tuple[list[str], int, int]:
    """Stream an LM text (plain or ``.gz``): lowercase each line, drop empty lines and those
    whose :func:`sentence_key` is in ``exclude``; keep all, or a uniform random sample of
    ``max_sentences`` (reservoir sampling, corpus order kept).

    Returns ``(sentences, removed_overlaps, candidate_lines)``.
    """
    from tqdm import tqdm
    rng = random.Random(seed)

    def u() -> float:  # uniform in (0, 1)
        return rng.random() or 0.5

    keep: list[tuple[int, str]] = []
    removed = n = 0
    k = max_sentences
    # Li's "Algorithm L": the index of the next replacement is drawn directly
    w = math.exp(math.log(u()) / k) if k > 0 else 0.0
    nxt = k + int(math.log(u()) / math.log(1 - w)) if k > 0 else 0
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in tqdm(f, desc=f"lm text {path.name}", unit=" lines", disable=not progress,
                             mininterval=2.0):
                s = " ".join(line.lower().split())
                if not s:
                    continue
                key = s.translate(_PUNCT)  # = sentence_key(s), s being lowercase already
                if key != s:
                    key = " ".join(key.split())
                if key in exclude:
                    removed += 1
                    continue
                if k <= 0 or n < k:
                    keep.append((n, s))
                elif n == nxt:
                    keep[rng.randrange(k)] = (n, s)
                    w *= math.exp(math.log(u()) / k)
                    nxt += 1 + int(math.log(u()) / math.log(1 - w))
                n += 1
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read it ({e}); give a plain or gzipped text file") from None
    keep.sort()
    return [s for _, s in keep], removed, n


def _write_text(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for s in lines:
            f.write(s + "\n")
    os.replace(tmp, path)


def _write_manifest(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name[:-len('.jsonl.gz')]}.tmp.jsonl.gz")
    obj.to_file(tmp)
    os.replace(tmp, path)


def outputs(out_dir: Path) -> list[Path]:
    """Every file stage 0 writes (``lexicon_extra.txt`` aside, which is optional)."""
    m = out_dir / "manifests"
    return ([m / f"{MANIFEST_PREFIX}_{kind}_{s}.jsonl.gz" for s in SPLITS for kind in ("recordings", "supervisions")]
            + [out_dir / "lm_text.txt", out_dir / "info.json"])


def prepare(corpus_dir: Path, out_dir: Path, *, train_part: str = "train-clean-5",
            dev_part: str = "dev-clean-2", test_part: str | None = None,
            lm_text: Path | None = None, max_lm_sentences: int = 0, download: bool = False,
            force: bool = False, num_jobs: int = 2, seed: int = 1, progress: bool = True) -> dict:
    """Write the stage-0 outputs (module docstring) and return ``info``.

    Skips the work when ``info.json`` and every output exist and were made with the same
    options, unless ``force``. ``lm_text=None`` uses ``librispeech-lm-norm.txt(.gz)`` from the
    corpus dir. ``max_lm_sentences``: 0 keeps every LM sentence.
    """
    from lhotse.recipes.librispeech import prepare_librispeech

    corpus_dir, out_dir = Path(corpus_dir).resolve(), Path(out_dir)
    test_part = test_part or default_test_part(dev_part)
    parts = {"train": train_part, "dev": dev_part, "test": test_part}
    if train_part in (dev_part, test_part):
        raise ValueError(f"--train-part {train_part} must differ from the dev/test parts")
    config = {"corpus_dir": str(corpus_dir), "parts": parts,
              "lm_text": str(Path(lm_text).resolve()) if lm_text else None,
              "max_lm_sentences": max_lm_sentences, "seed": seed}
    info_path = out_dir / "info.json"
    if not force and all(p.is_file() for p in outputs(out_dir)):
        old = json.loads(info_path.read_text())
        if old.get("config") == config:
            logging.info(f"{info_path} exists with the same options: skipping stage 0 (--force redoes it)")
            return old
        logging.info(f"{info_path} was made with other options: redoing stage 0")

    unique = list(dict.fromkeys(parts.values()))
    if download:
        download_parts(corpus_dir, unique)
    elif not corpus_dir.is_dir():
        raise FileNotFoundError(f"{corpus_dir} is missing: put LibriSpeech there as {LAYOUT} "
                                f"(OpenSLR 12 / 31), or pass --download")
    counts = {p: check_part(corpus_dir, p) for p in unique}
    lm_path = Path(lm_text) if lm_text else find_lm_text(corpus_dir)
    if not lm_path.is_file():
        raise FileNotFoundError(f"--lm-text {lm_path} is missing: give a word text file (one sentence "
                                f"per line), or 'none' to use librispeech-lm-norm.txt(.gz) from {corpus_dir}")
    if test_part == dev_part:
        logging.warning(f"test part = dev part ({dev_part}): the LM scale is tuned on the test data "
                        f"(mini_librispeech has no test part; use --test-part test-clean for a clean test)")

    info_path.unlink(missing_ok=True)  # from here on, the old outputs no longer count as done
    (out_dir / "manifests").mkdir(parents=True, exist_ok=True)
    root = corpus_root(corpus_dir)
    try:
        manifests = prepare_librispeech(root, dataset_parts=unique, output_dir=None,
                                        normalize_text="lower", num_jobs=num_jobs)
    except Exception as e:  # unreadable audio etc.: name it and the fix
        raise ValueError(f"lhotse could not prepare {' '.join(unique)} from {root} "
                         f"({' '.join(f'{type(e).__name__}: {e}'.split())[:300]}); check or re-extract "
                         f"the audio named there") from None
    info: dict = {"config": config, "parts": parts, "splits": {}}
    transcripts: set[str] = set()
    for split, part in parts.items():
        recs, sups = manifests[part]["recordings"], manifests[part]["supervisions"]
        if len(sups) != counts[part]:
            raise ValueError(f"{root / part}: {counts[part]} transcript lines but lhotse prepared "
                             f"{len(sups)} utterances; check the audio files")
        m = out_dir / "manifests"
        _write_manifest(recs, m / f"{MANIFEST_PREFIX}_recordings_{split}.jsonl.gz")
        _write_manifest(sups, m / f"{MANIFEST_PREFIX}_supervisions_{split}.jsonl.gz")
        transcripts |= {sentence_key(s.text) for s in sups}
        info["splits"][split] = {"part": part, "utterances": len(sups),
                                 "speakers": len({s.speaker for s in sups}),
                                 "hours": round(sum(r.duration for r in recs) / 3600, 4)}
        logging.info(f"{split} ({part}): {len(sups)} utterances, {info['splits'][split]['speakers']} "
                     f"speakers, {info['splits'][split]['hours']:.2f} h")

    sents, removed, total = read_lm_text(lm_path, transcripts, max_lm_sentences, seed, progress)
    if not sents:
        raise ValueError(f"{lm_path}: no LM sentence left (after removing {removed} spoken in "
                         f"train/dev/test); give a larger --lm-text")
    _write_text(out_dir / "lm_text.txt", sents)
    info["lm_text"] = {"source": str(lm_path.resolve()), "sentences": len(sents),
                       "candidates": total, "max_sentences": max_lm_sentences}
    info["lm_sentences"] = len(sents)
    info["lm_removed_overlaps"] = removed
    logging.info(f"LM text: {len(sents)} sentences from {lm_path} ({removed} spoken in train/dev/test removed)")

    lex = next((d / LEXICON_FILE for d in (corpus_dir, root) if (d / LEXICON_FILE).is_file()), None)
    extra = out_dir / "lexicon_extra.txt"
    if lex is not None:
        tmp = extra.with_name(extra.name + ".tmp")
        shutil.copyfile(lex, tmp)
        os.replace(tmp, extra)
        with open(extra, encoding="utf-8") as f:
            entries = sum(1 for line in f if line.strip())
        info["lexicon_extra"] = {"source": str(lex), "entries": entries}
        logging.info(f"official lexicon: {entries} entries -> {extra}")
    else:
        extra.unlink(missing_ok=True)  # a stale copy would override the lang stage's lexicon
        info["lexicon_extra"] = None
    tmp = info_path.with_name("info.json.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, info_path)
    return info
