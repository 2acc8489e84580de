"""TIMIT stage 0: Kaldi-style splits, 61->39 phone folding, lhotse manifests, LM text.

Corpus layout (LDC93S1), found under ``--timit-dir`` itself or its ``TIMIT/``, ``timit/`` or
``data/`` (lhotse's download) subfolder::

    TRAIN/DR1/FCJF0/SA1.WAV  (+ SA1.PHN, SA1.WRD, SA1.TXT)      upper case, or
    train/dr1/fcjf0/sa1.wav  (+ sa1.phn, sa1.wrd, sa1.txt)      lower case

The ``.WAV`` files are NIST SPHERE (libsndfile reads them). Copies that hold a RIFF twin
(``SA1.WAV.wav``) use the plain ``SA1.WAV``.

Splits (Kaldi ``egs/timit/s5``; the speaker lists are lhotse's
:func:`lhotse.recipes.timit.get_speakers`, i.e. Kaldi's ``conf/{dev,test}_spk.list``):

* ``train``: every speaker under TRAIN, SA sentences excluded (462 speakers, 3,696 utts);
* ``dev``: the 50 Kaldi dev speakers under TEST, SA excluded (400 utts);
* ``test``: the 24 core-test speakers under TEST, SA excluded (192 utts).

The other 144 TEST speakers are in no split. lhotse's own ``prepare_timit`` keeps the SA
sentences (its filter is commented out), so the splits are built here (:func:`split_timit`).

Phones (``alignment["phone"]`` of each supervision, and the matched LM text). Each ``.PHN``
line ``start end phone`` (16 kHz sample offsets) is folded with lhotse's table
(:func:`uasr.lang.phones.timit_map`), then:

* ``q`` (glottal stop, folded to nothing) is deleted; its span goes to the previous phone
  (to the next one when it comes first);
* with 39 phones, ``h#``, ``pau``, ``epi`` and all six closures (``bcl dcl gcl pcl tcl kcl``)
  fold to ``sil`` (:data:`uasr.lang.phones.SIL`), exactly as lhotse's (and Kaldi's) table
  says. A closure + release pair therefore becomes ``sil b`` / ``sil t`` ..., and a
  closure after a pause just lengthens that silence;
* runs of consecutive ``sil`` merge into one item spanning the run; any other repeated
  symbol stays separate (``en nx`` -> ``n n``);
* with 48 phones the table keeps ``cl``, ``vcl`` and ``epi`` as phones; only ``h#`` and
  ``pau`` become ``sil``.

Phone counts (:func:`check_counts`). Each split reports ``phones`` = scored phones (non-sil
items, what our scoring sees, silence being ignored), ``phones_sil`` = alignment items with
merged silences, and ``kaldi_phones`` = the reference length Kaldi, ESPnet and wav2vec-U
score against: Kaldi's ``timit_norm_trans.pl`` deletes ``q`` and maps every other ``.PHN``
label one to one (no merging), so its 39-phone references *count* ``sil`` (from ``h#``,
closures, ``pau``, ``epi``). The published 7,215 (core test) and 15,057 (dev) are those
reference lengths (192 x ~37.6 labels per utterance; a count without silence would be ~30
per utterance), and our merged, silence-free counts cannot equal them by construction, so
the default check compares ``kaldi_phones``. The train value 140,225 comes from a log of
the wav2vec-U authors' Kaldi self-training recipe (the same log shows dev 15,057 and test
7,215 with the same pipeline).

LM text: ``matched`` writes ``lm_text_phones.txt`` (the train utterances' folded phones, one
per line, silence dropped inside an utterance and kept at its start/end; note that
wav2vec-U's matched text, produced by Kaldi's normaliser, keeps every ``sil``); a file path
copies that word text to ``lm_text.txt`` (unmatched; phonemised later by the lang stage).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from uasr.lang.phones import SIL, timit_map

SPLITS = ("train", "dev", "test")
MANIFEST_PREFIX = "timit"
LM_MATCHED = "lm_text_phones.txt"
LM_UNMATCHED = "lm_text.txt"
# Full-corpus values (Kaldi egs/timit/s5 splits and 39-phone reference lengths, see above).
EXPECTED_COUNTS: dict[str, dict[str, int]] = {
    "train": {"speakers": 462, "utterances": 3696, "kaldi_phones": 140225},
    "dev": {"speakers": 50, "utterances": 400, "kaldi_phones": 15057},
    "test": {"speakers": 24, "utterances": 192, "kaldi_phones": 7215},
}
COUNT_KEYS = ("speakers", "utterances", "phones", "phones_sil", "kaldi_phones", "hours")
LAYOUT = ("expected TRAIN/ and TEST/ holding DR*/<speaker>/<sentence>.WAV with .PHN/.WRD/.TXT "
          "beside each (e.g. TRAIN/DR1/FCJF0/SA1.WAV, or all lower case), directly or in a "
          "TIMIT/ or timit/ subfolder")
_DIALECT = re.compile(r"^dr\d+$")
Segment = tuple[int, int, str]  # (start sample, end sample, symbol)


@dataclass(frozen=True)
class Utterance:
    """One TIMIT sentence recording (``part`` is the TIMIT directory: train or test)."""

    part: str
    dialect: str
    speaker: str
    sentence: str
    wav: Path
    files: tuple[tuple[str, Path], ...]  # companion files by lower-case extension (".phn": path)

    @property
    def id(self) -> str:
        return f"{self.speaker}-{self.sentence}"

    @property
    def gender(self) -> str:
        return self.speaker[0]

    @property
    def is_sa(self) -> bool:
        return self.sentence.startswith("sa")

    def companion(self, ext: str) -> Path:
        """The ``.PHN``/``.TXT``/... file beside the audio; FileNotFoundError naming it if absent."""
        found = dict(self.files).get(ext.lower())
        if found is None:
            want = self.wav.with_name(self.wav.name.split(".")[0] +
                                      (ext.upper() if self.wav.suffix.isupper() else ext.lower()))
            raise FileNotFoundError(f"{want} is missing (the {ext.upper()[1:]} file of {self.wav})")
        return found


class CountsMismatch(ValueError):
    """The corpus counts differ from the expected ones (``problems``: one line each)."""

    def __init__(self, problems: list[str], counts: dict):
        super().__init__("; ".join(problems))
        self.problems = problems
        self.counts = counts


def _one_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


def _subdir(d: Path, name: str) -> Path | None:
    """The child folder of ``d`` called ``name`` in any letter case."""
    if not d.is_dir():
        return None
    for c in (d / name.upper(), d / name.lower()):
        if c.is_dir():
            return c
    for c in sorted(d.iterdir()):
        if c.is_dir() and c.name.lower() == name.lower():
            return c
    return None


def find_timit_root(timit_dir: Path | str) -> Path:
    """The folder holding TRAIN/ and TEST/ (``timit_dir`` or its TIMIT/, timit/, data/ child)."""
    d = Path(timit_dir)
    for cand in (d, _subdir(d, "timit"), _subdir(d, "data")):
        if cand is not None and _subdir(cand, "train") and _subdir(cand, "test"):
            return cand
    raise FileNotFoundError(f"no TIMIT corpus at {d}: {LAYOUT}")


def scan_timit(timit_dir: Path | str) -> list[Utterance]:
    """Every sentence recording of the corpus (SA included), sorted by (part, id)."""
    root = find_timit_root(timit_dir)
    utts: list[Utterance] = []
    for part in ("train", "test"):
        pdir = _subdir(root, part)
        for dr in sorted(pdir.iterdir()):
            if not (dr.is_dir() and _DIALECT.match(dr.name.lower())):
                continue
            for spk in sorted(dr.iterdir()):
                if not spk.is_dir():
                    continue
                by_sentence: dict[str, dict[str, Path]] = {}
                for f in sorted(spk.iterdir()):
                    if not f.is_file() or "." not in f.name:
                        continue
                    stem, _, ext = f.name.partition(".")
                    # "SA1.WAV" -> ".wav"; a RIFF twin "SA1.WAV.wav" -> ".wav.wav" (ignored)
                    by_sentence.setdefault(stem.lower(), {})["." + ext.lower()] = f
                for sent, files in sorted(by_sentence.items()):
                    if ".wav" not in files:
                        continue
                    utts.append(Utterance(part=part, dialect=dr.name.lower(), speaker=spk.name.lower(),
                                          sentence=sent, wav=files[".wav"],
                                          files=tuple(sorted(files.items()))))
    if not utts:
        raise FileNotFoundError(f"no .WAV files under {root}: {LAYOUT}")
    return sorted(utts, key=lambda u: (u.part, u.id))


def kaldi_speakers() -> tuple[frozenset[str], frozenset[str]]:
    """(dev speakers, core-test speakers), lower case: lhotse's copy of Kaldi's lists."""
    from lhotse.recipes.timit import get_speakers

    dev, test = get_speakers()
    return frozenset(s.lower() for s in dev), frozenset(s.lower() for s in test)


def split_timit(utterances: Iterable[Utterance]) -> dict[str, list[Utterance]]:
    """Kaldi's train / dev / core-test splits; SA sentences and the 144 other TEST speakers
    are left out."""
    dev_spk, test_spk = kaldi_speakers()
    out: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    for u in utterances:
        if u.is_sa:
            continue
        if u.part == "train":
            out["train"].append(u)
        elif u.speaker in dev_spk:
            out["dev"].append(u)
        elif u.speaker in test_spk:
            out["test"].append(u)
    return {s: sorted(v, key=lambda u: u.id) for s, v in out.items()}


def read_phn(path: Path) -> list[Segment]:
    """``.PHN`` / ``.WRD`` lines ``start end label`` -> [(start, end, label)]; ValueError names
    the file and line of a malformed entry."""
    segs: list[Segment] = []
    try:
        lines = Path(path).read_text(encoding="ascii", errors="replace").splitlines()
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({_one_line(e)})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"{path}:{n}: expected 'start_sample end_sample label', got {line.strip()!r}")
        s, e = int(parts[0]), int(parts[1])
        if e < s:
            raise ValueError(f"{path}:{n}: end {e} before start {s}")
        segs.append((s, e, parts[2].lower()))
    if not segs:
        raise ValueError(f"{path}: empty transcription")
    return segs


def read_txt(path: Path) -> str:
    """``.TXT`` ``0 46797 Sentence text.`` -> normalised words (lower case, no punctuation)."""
    from uasr.lang.text import normalize_text

    try:
        raw = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({_one_line(e)})") from None
    parts = raw.split(maxsplit=2)
    if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"{path}: expected 'start_sample end_sample Sentence text.'")
    return normalize_text(parts[2])


def fold_segments(segments: Sequence[Segment], num_phones: int = 39) -> list[Segment]:
    """TIMIT-61 segments -> folded segments: lhotse's table, ``q`` deleted (its span joins the
    previous phone, or the next when first), consecutive ``sil`` merged. ValueError on an
    unknown symbol."""
    table = timit_map(num_phones)
    out: list[list] = []
    pending_start: int | None = None  # a leading q's start, given to the next phone
    for s, e, p in segments:
        if p not in table:
            raise ValueError(f"{p!r} is not a TIMIT-61 phone")
        sym = table[p]
        if not sym:  # q
            if out:
                out[-1][1] = max(out[-1][1], e)
            elif pending_start is None:
                pending_start = s
            continue
        if pending_start is not None:
            s, pending_start = min(s, pending_start), None
        if sym == SIL and out and out[-1][2] == SIL:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e, sym])
    if not out:
        raise ValueError("no phone left after folding (only q?)")
    return [(s, e, p) for s, e, p in out]


def kaldi_phone_count(segments: Sequence[Segment], num_phones: int = 39) -> int:
    """Reference length as Kaldi scores it: every label but ``q``, sil counted, no merging."""
    table = timit_map(num_phones)
    return sum(1 for _, _, p in segments if table.get(p, p))


def lm_phones(phones: Sequence[str]) -> list[str]:
    """A matched-LM line: silence dropped inside the utterance, kept at its start/end."""
    return [p for i, p in enumerate(phones) if p != SIL or i == 0 or i == len(phones) - 1]


def check_counts(counts: dict, expected: dict | None) -> list[str]:
    """Problems (one line each) where ``counts[split][key]`` differs from ``expected``."""
    problems: list[str] = []
    for split, want in (expected or {}).items():
        have = counts.get(split)
        if have is None:
            problems.append(f"{split}: split missing (expected {want})")
            continue
        for key, value in want.items():
            if key not in have:
                problems.append(f"{split}: unknown count {key!r} (known: {', '.join(have)})")
            elif have[key] != value:
                problems.append(f"{split}: {key} {have[key]} != expected {value}")
    return problems


def format_counts(counts: dict) -> str:
    """A small table: one row per split."""
    head = f"{'split':<6} {'speakers':>8} {'utts':>6} {'phones':>8} {'+sil':>8} {'kaldi':>8} {'hours':>6}"
    rows = [head]
    for split, c in counts.items():
        rows.append(f"{split:<6} {c['speakers']:>8} {c['utterances']:>6} {c['phones']:>8} "
                    f"{c['phones_sil']:>8} {c['kaldi_phones']:>8} {c['hours']:>6.2f}")
    rows.append("(phones: scored, sil excluded; +sil: with merged sil; kaldi: Kaldi/ESPnet "
                "reference length, q deleted, sil counted)")
    return "\n".join(rows)


def load_expected(spec: str | Path | None) -> dict | None:
    """``default`` -> :data:`EXPECTED_COUNTS`; ``none`` -> None; else a JSON file
    ``{split: {count: value}}``."""
    if spec is None or str(spec) == "none":
        return None
    if str(spec) == "default":
        return EXPECTED_COUNTS
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--expected-counts {path}: no such file (or say default / none)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected {{split: {{count: value}}}}")
    return data


def manifest_paths(out_dir: Path) -> list[Path]:
    man = Path(out_dir) / "manifests"
    return [man / f"{MANIFEST_PREFIX}_{kind}_{split}.jsonl.gz"
            for split in SPLITS for kind in ("recordings", "supervisions")]


def is_prepared(out_dir: Path, lm_text: str = "matched", num_phones: int = 39) -> bool:
    """True when ``info.json`` and every manifest exist and were made with the same options."""
    info_path = Path(out_dir) / "info.json"
    if not info_path.is_file() or not all(p.is_file() for p in manifest_paths(out_dir)):
        return False
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError:
        return False
    mode = "matched" if lm_text == "matched" else "unmatched"
    same = info.get("num_phones") == num_phones and info.get("lm_text", {}).get("mode") == mode
    if same and mode == "unmatched":
        same = info["lm_text"].get("source") == str(Path(lm_text).resolve())
    return same and (Path(out_dir) / info["lm_text"]["file"]).is_file()


def _utterance(u: Utterance, num_phones: int):
    """(Recording, SupervisionSegment, folded phones, kaldi count) of one utterance."""
    from lhotse import Recording, SupervisionSegment
    from lhotse.supervision import AlignmentItem

    phn, txt = u.companion(".phn"), u.companion(".txt")
    try:  # libsndfile first: its one-line reason beats lhotse's multi-backend report
        import soundfile as sf

        sf.info(str(u.wav))
        rec = Recording.from_file(u.wav, recording_id=u.id)
    except Exception as e:  # noqa: BLE001 - any backend failure: name the file
        reason = getattr(e, "error_string", None) or _one_line(e)
        raise ValueError(f"{u.wav}: unreadable audio ({reason})") from None
    segs = read_phn(phn)
    try:
        folded = fold_segments(segs, num_phones)
    except ValueError as e:
        raise ValueError(f"{phn}: {e}") from None
    sr, n = rec.sampling_rate, rec.num_samples
    items = []
    for s, e, p in folded:
        s, e = min(s, n), min(e, n)
        if e > s:
            items.append(AlignmentItem(symbol=p, start=round(s / sr, 6), duration=round((e - s) / sr, 6)))
    if not items:
        raise ValueError(f"{phn}: no phone inside the {n} samples of {u.wav}")
    sup = SupervisionSegment(id=u.id, recording_id=u.id, start=0.0, duration=rec.duration, channel=0,
                             text=read_txt(txt), language="English", speaker=u.speaker,
                             custom={"dialect": u.dialect, "gender": u.gender},
                             alignment={"phone": items})
    return rec, sup, [it.symbol for it in items], kaldi_phone_count(segs, num_phones)


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic_manifest(obj, path: Path) -> None:
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")  # keeps the .jsonl.gz suffix
    obj.to_file(tmp)
    os.replace(tmp, path)


def prepare_timit(timit_dir: Path | str, out_dir: Path | str, lm_text: str = "matched",
                  expected: dict | None = EXPECTED_COUNTS, num_phones: int = 39) -> dict:
    """Build the three splits' manifests, the LM text and ``info.json``; return the info.

    Raises FileNotFoundError / ValueError (one line, naming the file) on a broken corpus and
    :class:`CountsMismatch` (before writing anything) when the counts differ from ``expected``.
    """
    from lhotse import RecordingSet, SupervisionSet, validate_recordings_and_supervisions
    from tqdm.auto import tqdm

    if num_phones not in (39, 48):
        raise ValueError(f"--num-phones {num_phones}: only 39 or 48")
    out_dir = Path(out_dir)
    root = find_timit_root(timit_dir)
    lm_source = None
    if lm_text != "matched":
        lm_source = Path(lm_text)
        if not lm_source.is_file():
            raise FileNotFoundError(f"--lm-text {lm_source}: no such file (or say matched)")
    splits = split_timit(scan_timit(root))

    built: dict[str, tuple] = {}
    counts: dict[str, dict] = {}
    lm_lines: list[str] = []
    for split in SPLITS:
        recs, sups, n_scored, n_sil, n_kaldi = [], [], 0, 0, 0
        for u in tqdm(splits[split], desc=f"timit {split}", unit="utt", leave=False):
            rec, sup, phones, kaldi = _utterance(u, num_phones)
            recs.append(rec)
            sups.append(sup)
            n_sil += len(phones)
            n_scored += sum(p != SIL for p in phones)
            n_kaldi += kaldi
            if split == "train":
                lm_lines.append(" ".join(lm_phones(phones)))
        rset, sset = RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
        if recs:
            try:
                validate_recordings_and_supervisions(rset, sset)
            except Exception as e:  # noqa: BLE001 - lhotse asserts
                raise ValueError(f"{split}: lhotse validation failed ({_one_line(e)})") from None
        built[split] = (rset, sset)
        counts[split] = {"speakers": len({u.speaker for u in splits[split]}), "utterances": len(recs),
                         "phones": n_scored, "phones_sil": n_sil, "kaldi_phones": n_kaldi,
                         "hours": round(sum(r.duration for r in recs) / 3600, 4)}
    problems = check_counts(counts, expected)
    if problems:
        raise CountsMismatch(problems, counts)

    man = out_dir / "manifests"
    man.mkdir(parents=True, exist_ok=True)
    for split, (rset, sset) in built.items():
        _atomic_manifest(rset, man / f"{MANIFEST_PREFIX}_recordings_{split}.jsonl.gz")
        _atomic_manifest(sset, man / f"{MANIFEST_PREFIX}_supervisions_{split}.jsonl.gz")
    if lm_source is None:
        lm_info = {"mode": "matched", "file": LM_MATCHED, "lines": len(lm_lines)}
        _atomic_text(out_dir / LM_MATCHED, "".join(line + "\n" for line in lm_lines))
        (out_dir / LM_UNMATCHED).unlink(missing_ok=True)
    else:
        lm_info = {"mode": "unmatched", "file": LM_UNMATCHED, "source": str(lm_source.resolve())}
        tmp = out_dir / f".{LM_UNMATCHED}.tmp{os.getpid()}"
        shutil.copyfile(lm_source, tmp)
        os.replace(tmp, out_dir / LM_UNMATCHED)
        (out_dir / LM_MATCHED).unlink(missing_ok=True)
    info = {"corpus": "timit", "timit_dir": str(root.resolve()), "num_phones": num_phones,
            "splits": "kaldi egs/timit/s5: train = TRAIN, dev = 50 dev speakers, test = 24 core-test "
                      "speakers; SA sentences excluded",
            "lm_text": lm_info, "counts": counts, "expected_counts": expected,
            "count_check": "passed" if expected else "skipped"}
    _atomic_text(out_dir / "info.json", json.dumps(info, indent=2) + "\n")
    logging.info(f"TIMIT manifests in {man}; LM text {out_dir / lm_info['file']}")
    return info
