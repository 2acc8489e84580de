"""Stage 0 for any corpus: a Kaldi data dir or a TSV per split -> lhotse manifests + LM text.

Input (one per split; a directory is read as a Kaldi data dir, a ``.tsv``/``.txt`` file as a TSV):

* Kaldi data dir: ``wav.scp`` (``id path`` or ``id command |``), ``utt2spk``, optional ``text``
  (required for dev/test), optional ``segments`` (``utt rec start end``) and ``spk2gender``.
  The manifests come from lhotse's :func:`lhotse.kaldi.load_kaldi_data_dir`, run on a cleaned
  copy of the dir: relative audio paths made absolute (relative to the working directory, else
  to the data dir), and a ``reco2dur`` written from our own probe of every recording (files with
  soundfile, piped commands run once and their output probed), so lhotse reads no audio itself.
  With ``segments`` several supervisions share one recording; recording ids are the
  ``wav.scp`` ids, supervision ids the ``segments`` (or ``utt2spk``) ids.
* TSV: ``audio_path<TAB>transcript[<TAB>speaker]``, transcript and speaker optional, header
  line optional (recognised by its first column being named ``audio_path``/``path``/``audio``/
  ``wav``/``file``/``filename``, and then columns are taken by name). Relative paths are relative
  to the TSV's folder. **Without a speaker column the speaker is the name of the audio file's
  parent folder** (speaker-per-folder layouts; per-speaker CMVN later depends on it). One
  recording per row; the id is ``<speaker>-<file stem>`` (no prefix when the stem already starts
  with the speaker), spaces replaced by ``_``; recording id = supervision id.

Output (``<out>``): ``manifests/custom_{recordings,supervisions}_<split>.jsonl.gz``,
``lm_text.txt`` and ``info.json`` (written last: its presence with every manifest means done).
Audio keeps its native rate in the source; with ``sample_rate`` set (default 16 kHz) every
recording carries lhotse's lazy ``Resample`` transform, so loaded audio is at that rate.
Supervision text is normalised (``english``: :func:`uasr.lang.text.normalize_text`; ``none``:
whitespace collapsed only), ``""`` for an untranscribed train utterance.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.qa import validate_recordings_and_supervisions
from lhotse.utils import fastcopy

SPLITS = ("train", "dev", "test")
PREFIX = "custom"
NORMALIZERS = ("english", "none")
_PATH_COLS = ("audio_path", "path", "audio", "wav", "file", "filename", "audio_filepath")
_TEXT_COLS = ("transcript", "text", "transcription", "sentence")
_SPK_COLS = ("speaker", "spk", "speaker_id", "client_id")
MAX_OVERSHOOT = 0.1  # s: supervisions ending this little past their recording are clipped


def manifest_paths(out_dir: Path, split: str) -> tuple[Path, Path]:
    """(recordings, supervisions) manifest paths of a split under ``out_dir``."""
    m = Path(out_dir) / "manifests"
    return (m / f"{PREFIX}_recordings_{split}.jsonl.gz", m / f"{PREFIX}_supervisions_{split}.jsonl.gz")


def normalize(text: str, how: str) -> str:
    """Transcript / LM-text normalisation: ``english`` or ``none`` (whitespace collapse)."""
    if how == "english":
        from uasr.lang.text import normalize_text
        return normalize_text(text)
    if how == "none":
        return " ".join(text.split())
    raise ValueError(f"unknown normalisation {how!r}; use one of {', '.join(NORMALIZERS)}")


def detect_format(path: Path) -> str:
    """``kaldi`` for a directory, ``tsv`` for a ``.tsv``/``.txt`` file."""
    path = Path(path)
    if path.is_dir():
        return "kaldi"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix.lower() in (".tsv", ".txt"):
        return "tsv"
    raise ValueError(f"{path}: not a Kaldi data dir (a directory) nor a .tsv/.txt file")


@dataclass
class _Probe:
    sampling_rate: int
    num_samples: int
    channels: int


def _probe(source: str, is_command: bool, where: str) -> _Probe:
    """Header of one recording; ``where`` (split, file:line) goes into the one-line error."""
    try:
        if is_command:
            proc = subprocess.run(source, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if proc.returncode != 0 or not proc.stdout:
                err = proc.stderr.decode(errors="replace").strip().splitlines()
                raise RuntimeError(f"exit status {proc.returncode}" + (f": {err[-1]}" if err else ""))
            inf = sf.info(io.BytesIO(proc.stdout))
        else:
            if not Path(source).is_file():
                raise FileNotFoundError("no such file")
            inf = sf.info(source)
    except Exception as e:  # noqa: BLE001 - any reader failure is reported the same way
        what = "audio command" if is_command else "audio file"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{where}: cannot read {what} {source.strip()!r}: {msg}") from None
    if inf.frames <= 0:
        raise ValueError(f"{where}: audio {source!r} is empty")
    if inf.channels != 1:
        raise ValueError(f"{where}: audio {source!r} has {inf.channels} channels; only mono is "
                         f"supported (e.g. use a piped 'sox FILE -t wav - remix 1 |' in wav.scp)")
    return _Probe(int(inf.samplerate), int(inf.frames), int(inf.channels))


def _read_table(path: Path, split: str, min_fields: int = 2, max_fields: int | None = 2,
                ) -> dict[str, tuple[list[str], int]]:
    """Kaldi table: id -> (fields after the id, line number); duplicate ids are an error.
    With ``max_fields == 2`` the rest of the line after the id is one field (paths, commands)."""
    out: dict[str, tuple[list[str], int]] = {}
    dups: list[str] = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1) if max_fields == 2 else line.split()
            parts = [p.strip() for p in parts]
            if len(parts) < min_fields or (max_fields is not None and len(parts) > max_fields):
                raise ValueError(f"{split}: {path}:{no}: malformed line {line.strip()!r}")
            if parts[0] in out:
                dups.append(parts[0])
            out[parts[0]] = (parts[1:], no)
    if dups:
        raise ValueError(f"{split}: {path}: duplicate ids: {_few(dups)}")
    return out


def _few(ids, n: int = 5) -> str:
    ids = sorted(set(ids))
    return ", ".join(ids[:n]) + (f" ... ({len(ids)} in all)" if len(ids) > n else "")


def read_kaldi_dir(path: Path, split: str) -> tuple[RecordingSet, SupervisionSet, bool]:
    """Raw (un-normalised) manifests of a Kaldi data dir; ``bool``: it has a ``text`` file.
    Untranscribed utterances get text ``""``."""
    from lhotse.kaldi import load_kaldi_data_dir

    path = Path(path)
    for name in ("wav.scp", "utt2spk"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{split}: {path / name} is missing (Kaldi data dir)")
    wav = _read_table(path / "wav.scp", split)
    utt2spk = _read_table(path / "utt2spk", split)
    has_segments = (path / "segments").is_file()
    segments = _read_table(path / "segments", split, 4, 4) if has_segments else None
    has_text = (path / "text").is_file()
    text = _read_table(path / "text", split, 1, 2) if has_text else {}
    genders = _read_table(path / "spk2gender", split) if (path / "spk2gender").is_file() else {}

    utts = segments if has_segments else wav
    utt_file = path / ("segments" if has_segments else "wav.scp")
    if has_segments:
        bad = [u for u, (f, _) in segments.items() if f[0] not in wav]
        if bad:
            raise ValueError(f"{split}: {utt_file}: segments of recordings not in wav.scp: {_few(bad)}")
        for u, ((rec, start, end), no) in segments.items():
            try:
                s, e = float(start), float(end)
            except ValueError:
                raise ValueError(f"{split}: {utt_file}:{no}: bad times {start!r} {end!r}") from None
            if s < 0 or (e != -1 and e <= s):
                raise ValueError(f"{split}: {utt_file}:{no}: segment {u} has start {start}, end {end}")
    missing = [u for u in utts if u not in utt2spk]
    if missing:
        raise ValueError(f"{split}: {path / 'utt2spk'} has no speaker for: {_few(missing)}")
    extra = [u for u in utt2spk if u not in utts]
    if extra:
        raise ValueError(f"{split}: {path / 'utt2spk'} lists utterances not in {utt_file.name}: {_few(extra)}")
    stray = [u for u in text if u not in utts]
    if stray:
        logging.warning(f"{split}: {path / 'text'}: {len(stray)} ids not in {utt_file.name} ignored "
                        f"({_few(stray)})")

    # probe every recording (native rate, exact length); relative paths made absolute
    probes: dict[str, _Probe] = {}
    sources: dict[str, str] = {}
    for rid, ((src,), no) in wav.items():
        is_cmd = src.endswith("|")
        if not is_cmd:
            p = Path(src).expanduser()
            if not p.is_absolute():
                p = p if p.exists() else path / p
            src = str(p.absolute())
        probes[rid] = _probe(src[:-1] if is_cmd else src, is_cmd, f"{split}: {path / 'wav.scp'}:{no}")
        sources[rid] = src
    rates = sorted({p.sampling_rate for p in probes.values()})

    # a clean copy for lhotse: reco2dur from our probes, complete tables only
    with tempfile.TemporaryDirectory(prefix="kaldi-") as tmp:
        t = Path(tmp)
        (t / "wav.scp").write_text("".join(f"{r} {s}\n" for r, s in sources.items()), encoding="utf-8")
        (t / "reco2dur").write_text("".join(f"{r} {p.num_samples / p.sampling_rate!r}\n"
                                            for r, p in probes.items()), encoding="utf-8")
        (t / "utt2spk").write_text("".join(f"{u} {f[0]}\n" for u, (f, _) in utt2spk.items()), encoding="utf-8")
        if has_segments:
            (t / "segments").write_text("".join(f"{u} {' '.join(f)}\n" for u, (f, _) in segments.items()),
                                        encoding="utf-8")
            # lhotse insists on a text file with segments: bare ids (texts are filled in below)
            (t / "text").write_text("".join(f"{u}\n" for u in segments), encoding="utf-8")
        spks = {f[0] for f, _ in utt2spk.values()}
        if genders and spks <= set(genders):
            (t / "spk2gender").write_text("".join(f"{s} {genders[s][0][0]}\n" for s in spks),
                                          encoding="utf-8")
        elif genders:
            logging.warning(f"{split}: {path / 'spk2gender'} misses speakers; genders ignored")
        recs, sups, _ = load_kaldi_data_dir(t, sampling_rate=rates[0])

    # per-recording native rate (lhotse assumes one rate per dir) and exact sample counts
    recs = RecordingSet.from_recordings(
        fastcopy(r, sampling_rate=probes[r.id].sampling_rate, num_samples=probes[r.id].num_samples,
                 duration=probes[r.id].num_samples / probes[r.id].sampling_rate) for r in recs)
    sups = SupervisionSet.from_segments(
        fastcopy(s, text=(text.get(s.id, ([""], 0))[0] or [""])[0]) for s in sups)
    return recs, sups, has_text


def _utt_id(speaker: str, stem: str) -> str:
    uid = stem if stem == speaker or stem.startswith((speaker + "-", speaker + "_")) else f"{speaker}-{stem}"
    return "_".join(uid.split())


def read_tsv(path: Path, split: str) -> tuple[RecordingSet, SupervisionSet, bool]:
    """Raw (un-normalised) manifests of a TSV; ``bool``: it has a transcript column."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        rows = [(no, line.rstrip("\r\n").split("\t")) for no, line in enumerate(f, 1) if line.strip()]
    if not rows:
        raise ValueError(f"{split}: {path} is empty")
    cols = {"path": 0, "text": 1, "speaker": 2}
    first = [c.strip().lower() for c in rows[0][1]]
    if first[0] in _PATH_COLS and not (path.parent / rows[0][1][0]).exists():
        cols = {"path": 0}
        for key, names in (("text", _TEXT_COLS), ("speaker", _SPK_COLS)):
            hit = [i for i, c in enumerate(first) if c in names]
            if hit:
                cols[key] = hit[0]
        rows = rows[1:]
        has_text = "text" in cols
    else:
        has_text = any(len(r) >= 2 for _, r in rows)
    width = max(cols.values()) + 1

    recs, sups, seen = [], [], {}
    dups = []
    for no, row in rows:
        where = f"{split}: {path}:{no}"
        if len(row) > width:
            raise ValueError(f"{where}: {len(row)} columns; expected audio_path, transcript, speaker")
        field = {k: row[i].strip() if i < len(row) else "" for k, i in cols.items()}
        if not field["path"]:
            raise ValueError(f"{where}: empty audio path")
        audio = Path(field["path"]).expanduser()
        audio = (audio if audio.is_absolute() else path.parent / audio).absolute()
        speaker = field.get("speaker") or audio.parent.name
        uid = _utt_id(speaker, audio.stem)
        if uid in seen:
            dups.append(f"{uid} (lines {seen[uid]} and {no})")
            continue
        seen[uid] = no
        p = _probe(str(audio), False, where)
        recs.append(Recording.from_file(audio, recording_id=uid))
        rec = recs[-1]
        if rec.num_samples != p.num_samples or rec.sampling_rate != p.sampling_rate:  # pragma: no cover
            rec = recs[-1] = fastcopy(rec, sampling_rate=p.sampling_rate, num_samples=p.num_samples,
                                      duration=p.num_samples / p.sampling_rate)
        sups.append(SupervisionSegment(id=uid, recording_id=uid, start=0.0, duration=rec.duration,
                                       channel=0, text=field.get("text", ""), speaker=speaker))
    if dups:
        raise ValueError(f"{split}: {path}: duplicate ids: {_few(dups)}")
    return RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups), has_text


def load_split(source: Path, split: str, normalize_how: str = "english",
               sample_rate: int | None = 16000) -> tuple[RecordingSet, SupervisionSet, dict]:
    """Manifests of one split, normalised, resampled (lazily) and validated, plus its info."""
    fmt = detect_format(source)
    recs, sups, has_text = (read_kaldi_dir if fmt == "kaldi" else read_tsv)(Path(source), split)
    if split != "train" and not has_text:
        what = f"{Path(source) / 'text'} is missing" if fmt == "kaldi" else \
            f"{source} has no transcript column"
        raise ValueError(f"{split}: {what}: {split} transcripts are needed to score")
    sups = SupervisionSet.from_segments(fastcopy(s, text=normalize(s.text or "", normalize_how))
                                        for s in sups)
    if split != "train":
        empty = [s.id for s in sups if not s.text]
        if empty:
            raise ValueError(f"{split}: empty transcript (after normalisation {normalize_how!r}) for "
                             f"utterance {_few(empty)} in {source}")
    native = sorted({r.sampling_rate for r in recs})
    if sample_rate:
        recs = RecordingSet.from_recordings(r.resample(sample_rate) for r in recs)
    # clip supervisions a hair past their recording's end (Kaldi segments, resampling rounding)
    dur = {r.id: r.duration for r in recs}
    clipped, fixed = 0, []
    for s in sups:
        over = s.end - dur.get(s.recording_id, s.end)
        if 0 < over <= MAX_OVERSHOOT:
            s = fastcopy(s, duration=dur[s.recording_id] - s.start)
            clipped += over > 1e-3
        fixed.append(s)
    if clipped:
        logging.warning(f"{split}: {clipped} supervisions ended past their recording; clipped")
    sups = SupervisionSet.from_segments(fixed)
    try:
        validate_recordings_and_supervisions(recs, sups)
    except AssertionError as e:
        raise ValueError(f"{split}: {source}: invalid manifests: {e}") from None
    info = {"source_format": fmt, "source": str(Path(source).absolute()),
            "recordings": len(recs), "utterances": len(sups),
            "speakers": len({s.speaker for s in sups}),
            "hours": round(sum(s.duration for s in sups) / 3600, 4),
            "transcribed_utterances": sum(1 for s in sups if s.text),
            "native_sampling_rates": native, "sampling_rate": sample_rate or None}
    return recs, sups, info


def filter_lm_text(lines, heldout: set[str], train: set[str], normalize_how: str,
                   ) -> tuple[list[str], dict]:
    """Normalise LM sentences, drop empty ones and those equal to a dev/test transcript
    (train overlaps are kept, but counted)."""
    kept, stats = [], {"input_lines": 0, "empty_dropped": 0, "dev_test_overlap_removed": 0,
                       "train_overlap_kept": 0}
    for line in lines:
        stats["input_lines"] += 1
        s = normalize(line, normalize_how)
        if not s:
            stats["empty_dropped"] += 1
        elif s in heldout:
            stats["dev_test_overlap_removed"] += 1
        else:
            stats["train_overlap_kept"] += s in train
            kept.append(s)
    stats["sentences"] = len(kept)
    return kept, stats


def is_done(out_dir: Path) -> bool:
    """``info.json`` and every manifest + ``lm_text.txt`` it lists exist."""
    info_f = Path(out_dir) / "info.json"
    if not info_f.is_file():
        return False
    try:
        splits = json.loads(info_f.read_text(encoding="utf-8"))["splits"]
    except (ValueError, KeyError):
        return False
    files = [f for s in splits for f in manifest_paths(out_dir, s)] + [Path(out_dir) / "lm_text.txt"]
    return all(f.is_file() for f in files)


def prepare_custom(out_dir: Path, train: Path, test: Path | None, lm_text: Path | None,
                   dev: Path | None = None, normalize_how: str = "english",
                   sample_rate: int | None = 16000, force: bool = False) -> dict:
    """Stage 0 of a custom corpus (see the module doc); returns the ``info.json`` content.

    Everything is built in a temporary folder under ``out_dir`` and moved into place at the
    end, ``info.json`` last; an existing complete output is kept unless ``force``.
    """
    out_dir = Path(out_dir)
    if normalize_how not in NORMALIZERS:
        raise ValueError(f"unknown normalisation {normalize_how!r}; use one of {', '.join(NORMALIZERS)}")
    if test is None:
        raise ValueError("--test is missing: a transcribed test split is needed to score the model")
    if lm_text is None:
        raise ValueError("--lm-text is missing: unsupervised training needs unpaired text")
    if not Path(lm_text).is_file():
        raise FileNotFoundError(f"--lm-text {lm_text} does not exist")
    if dev is None:
        logging.warning("no --dev split: dev manifests are not written (decoding settings cannot be tuned)")
    if not force and is_done(out_dir):
        logging.info(f"{out_dir}: already done (info.json and manifests exist); --force to redo")
        return json.loads((out_dir / "info.json").read_text(encoding="utf-8"))

    sources = {s: p for s, p in (("train", train), ("dev", dev), ("test", test)) if p is not None}
    data, info_splits = {}, {}
    for split, src in sources.items():
        recs, sups, inf = load_split(Path(src), split, normalize_how, sample_rate)
        data[split] = (recs, sups)
        info_splits[split] = inf
        logging.info(f"{split}: {inf['utterances']} utts, {inf['speakers']} speakers, "
                     f"{inf['hours'] * 60:.1f} min, {inf['transcribed_utterances']} transcribed "
                     f"({inf['source_format']} {src})")
    for kind, pick in (("recording", 0), ("utterance", 1)):
        owner: dict[str, str] = {}
        shared = []
        for split, d in data.items():
            for item in d[pick]:
                if item.id in owner:
                    shared.append(f"{item.id} ({owner[item.id]}/{split})")
                owner.setdefault(item.id, split)
        if shared:
            raise ValueError(f"duplicate {kind} ids across splits: {_few(shared)}")

    heldout = {s.text for split in ("dev", "test") if split in data for s in data[split][1] if s.text}
    train_txt = {s.text for s in data["train"][1] if s.text}
    with open(lm_text, encoding="utf-8") as f:
        lm, lm_stats = filter_lm_text(f, heldout, train_txt, normalize_how)
    if not lm:
        raise ValueError(f"--lm-text {lm_text}: no sentences left after normalisation/overlap removal")
    logging.info(f"LM text: {lm_stats['sentences']} sentences; removed {lm_stats['dev_test_overlap_removed']} "
                 f"equal to a dev/test transcript; kept {lm_stats['train_overlap_kept']} equal to a train one")
    info = {"prefix": PREFIX, "splits": info_splits, "normalize": normalize_how,
            "sample_rate": sample_rate or None, "lm_text": {"source": str(Path(lm_text).absolute()), **lm_stats}}

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".prepare-custom.", dir=out_dir))
    try:
        for split, (recs, sups) in data.items():
            r, s = manifest_paths(tmp, split)
            r.parent.mkdir(parents=True, exist_ok=True)
            recs.to_file(r)
            sups.to_file(s)
        (tmp / "lm_text.txt").write_text("".join(x + "\n" for x in lm), encoding="utf-8")
        (tmp / "info.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        # move into place: info.json away first, back last, so a crash never looks done
        (out_dir / "info.json").unlink(missing_ok=True)
        (out_dir / "manifests").mkdir(exist_ok=True)
        for split in SPLITS:
            for src, dst in zip(manifest_paths(tmp, split), manifest_paths(out_dir, split)):
                if split in data:
                    os.replace(src, dst)
                else:
                    dst.unlink(missing_ok=True)  # stale split of an earlier run
        os.replace(tmp / "lm_text.txt", out_dir / "lm_text.txt")
        os.replace(tmp / "info.json", out_dir / "info.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info
