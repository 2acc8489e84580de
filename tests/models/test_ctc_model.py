"""The supervised CTC baseline: network shapes, greedy decoding, learning, CLI resume and errors."""

import json
from pathlib import Path

import numpy as np
import torch

from uasr.decode import per
from uasr.models.ctc import CtcModel, collapse, greedy_decode, make_batches, recognise, train_epoch

LABELS = ["a", "b", "c", "d", "e", "f"]


def _sequences(n: int, g: torch.Generator, lo: int = 4, hi: int = 8) -> list[list[int]]:
    """Random label sequences without immediate repeats (a repeat's frames would be identical)."""
    out = []
    for _ in range(n):
        L = int(torch.randint(lo, hi + 1, (1,), generator=g))
        seq = [int(torch.randint(len(LABELS), (1,), generator=g))]
        while len(seq) < L:
            c = int(torch.randint(len(LABELS), (1,), generator=g))
            if c != seq[-1]:
                seq.append(c)
        out.append(seq)
    return out


def _frames(seqs: list[list[int]], emb: torch.Tensor, g: torch.Generator, noise: float = 0.5
            ) -> list[torch.Tensor]:
    """Each label lasts 3-5 frames of its embedding plus Gaussian noise."""
    feats = []
    for seq in seqs:
        rows = [emb[c] for c in seq for _ in range(int(torch.randint(3, 6, (1,), generator=g)))]
        x = torch.stack(rows)
        feats.append(x + noise * torch.randn(x.shape, generator=g))
    return feats


def test_output_shapes_and_lengths():
    torch.manual_seed(0)
    for sub, arch in ((1, "conv"), (2, "conv"), (3, "conv"), (1, "lstm"), (2, "lstm")):
        m = CtcModel(7, 5, hidden=16, layers=2, subsample=sub, arch=arch)
        lengths = torch.tensor([11, 4, 9])
        lp, out_len = m(torch.randn(3, 11, 7), lengths)
        assert out_len.tolist() == [-(-int(n) // sub) for n in lengths]  # ceil(T / subsample)
        assert lp.shape == (3, int(out_len.max()), 6)  # blank + 5 labels
        assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-5)
    for arch in ("conv", "lstm"):  # padding does not change an utterance's outputs
        m = CtcModel(7, 5, hidden=16, layers=3, arch=arch).eval()
        x = torch.randn(1, 9, 7)
        alone, _ = m(x, torch.tensor([9]))
        padded, _ = m(torch.cat([x, torch.randn(1, 5, 7)], 1), torch.tensor([9]))
        assert torch.allclose(alone, padded[:, :alone.shape[1]], atol=1e-5)
    assert 100_000 < CtcModel(40, 40).num_params() < 300_000  # the CLI's default size
    assert 100_000 < CtcModel(40, 40, layers=2, arch="lstm").num_params() < 300_000


def test_greedy_decoding_collapses_repeats_and_drops_blanks():
    assert collapse([0, 3, 3, 0, 3, 1, 1, 0, 0, 2]) == [3, 3, 1, 2]
    assert collapse([0, 0, 0]) == []
    best = [[0, 3, 3, 0, 3, 1, 1, 0], [2, 2, 2, 2, 0, 0, 0, 0]]
    lp = torch.nn.functional.one_hot(torch.tensor(best), 5).float().log()
    # classes k + 1 -> labels k; the second utterance is 4 frames long
    assert greedy_decode(lp, torch.tensor([8, 4])) == [[2, 2, 0], [1]]


def test_batches_cover_every_utterance_once():
    lengths = [5, 50, 7, 30, 2, 9, 41, 3]
    g = torch.Generator().manual_seed(0)
    batches = make_batches(lengths, 3, g, max_frames=60)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(len(b) <= 3 and (len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 60) for b in batches)


def test_learns_a_synthetic_task_to_low_per():
    g = torch.Generator().manual_seed(0)
    emb = 2.0 * torch.randn(len(LABELS), 10, generator=g)
    train_seqs, test_seqs = _sequences(64, g), _sequences(20, g)
    train_x, test_x = _frames(train_seqs, emb, g), _frames(test_seqs, emb, g)
    torch.manual_seed(0)
    m = CtcModel(10, len(LABELS), hidden=32, layers=1, subsample=1, dropout=0.0)
    opt = torch.optim.Adam(m.parameters(), lr=2e-2)
    targets = [torch.tensor(s) for s in train_seqs]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only slow it down
    try:
        losses = [train_epoch(m, opt, train_x, targets, ep, seed=0, batch_size=8) for ep in range(1, 9)]
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < 0.3 * losses[0]
    hyps = recognise(m, test_x)
    p = per([[LABELS[c] for c in s] for s in test_seqs], [[LABELS[c] for c in h] for h in hyps])
    assert p < 10, p


# ---- the CLI on a tiny feature dir written with lhotse ------------------------------------------


def _corpus(root: Path) -> dict[str, Path]:
    """Feature cuts (lilcom storage), frames token sets and a lang dir for train/dev/test."""
    from lhotse import CutSet, LilcomChunkyWriter, MonoCut, SupervisionSegment
    from lhotse.features.base import Features

    feat_dir, tok_dir, lang_dir = root / "fbank", root / "tokens" / "frames", root / "lang"
    for d in (feat_dir, tok_dir, lang_dir):
        d.mkdir(parents=True)
    symbols = LABELS + ["sil"]
    (lang_dir / "phones.txt").write_text("".join(f"{s} {i}\n" for i, s in enumerate(symbols)))
    g = torch.Generator().manual_seed(5)
    emb = 2.0 * torch.randn(len(LABELS), 6, generator=g)
    for split, n in (("train", 12), ("dev", 4), ("test", 4)):
        seqs = _sequences(n, g, 3, 5)
        feats = _frames(seqs, emb, g)
        ids = [f"{split}{i:03d}" for i in range(n)]
        speakers = [f"spk{i % 2}{split}" for i in range(n)]
        cuts = []
        with LilcomChunkyWriter(feat_dir / f"feats_{split}") as w:
            for u, s, x in zip(ids, speakers, feats):
                key = w.write(u, x.numpy().astype(np.float32))
                dur = len(x) * 0.01
                f = Features(type="fbank", num_frames=len(x), num_features=x.shape[1], frame_shift=0.01,
                             sampling_rate=16000, start=0, duration=dur, storage_type=w.name,
                             storage_path=str(w.storage_path), storage_key=key, recording_id=u, channels=0)
                sup = SupervisionSegment(id=u, recording_id=u, start=0, duration=dur, speaker=s)
                cuts.append(MonoCut(id=u, start=0, duration=dur, channel=0, features=f, supervisions=[sup]))
        CutSet.from_cuts(cuts).to_file(feat_dir / f"cuts_{split}.jsonl.gz")
        ref = [["sil"] + [LABELS[c] for c in s] + ["sil"] for s in seqs]
        torch.save({"ids": ids, "speakers": speakers, "units": [torch.zeros(len(x), dtype=torch.long) for x in feats],
                    "pooled": [torch.zeros(0) for _ in feats], "labels": [["a"] * len(x) for x in feats],
                    "ref": ref, "num_units": 1, "tokens": "frames", "text": [""] * n}, tok_dir / f"{split}.pt")
    return {"feat": feat_dir, "tokens": tok_dir, "lang": lang_dir}


def _args(c: dict[str, Path], exp: Path, *extra: str) -> list[str]:
    return ["--feat-dir", str(c["feat"]), "--tokens-dir", str(c["tokens"]), "--lang-dir", str(c["lang"]),
            "--exp-dir", str(exp), "--hidden", "16", "--layers", "1", "--batch-size", "4",
            "--device", "cpu", *extra]


def test_cli_resume_matches_uninterrupted_run_and_report_lists_it(tmp_path):
    from uasr.bin.report import collect
    from uasr.bin.train_ctc import main
    c = _corpus(tmp_path)
    exps = tmp_path / "exp"
    full, split_run = exps / "full", exps / "resumed"
    assert main(_args(c, full, "--num-epochs", "3")) == 0
    assert main(_args(c, split_run, "--num-epochs", "1")) == 0
    assert main(_args(c, split_run, "--num-epochs", "3", "--start-epoch", "2")) == 0
    a = torch.load(full / "epoch-3.pt", weights_only=False)
    b = torch.load(split_run / "epoch-3.pt", weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["epoch_loss_per_frame"] == b["epoch_loss_per_frame"]
    t = json.loads((full / "train.json").read_text())
    assert (t["tokens"], t["emission"], t["supervision"], t["lm_order"], t["topology"]) == \
        ("frames", "ctc-nn", "sup", 0, "ctc")
    assert t["command"].startswith("uasr train-ctc --feat-dir") and t["num_params"] > 0
    d = json.loads((full / "decode.json").read_text())
    assert d["lm_scale"] == 0 and d["epoch"] == 3 and {"per", "ref"} <= set(d["test"])
    assert (full / "errs-dev.txt").read_text().startswith("%PER")
    rows = collect(exps)
    assert {r["system"] for r in rows} == {"full", "resumed"}
    assert rows[0]["emission"] == "ctc-nn" and rows[0]["rung"] == 4
    assert not list(full.glob("*.tmp"))


def test_cli_errors_are_one_line(tmp_path, capsys):
    from uasr.bin.train_ctc import main
    c = _corpus(tmp_path)
    missing = tmp_path / "no_such_fbank"
    assert main(_args({**c, "feat": missing}, tmp_path / "e1", "--num-epochs", "1")) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("train-ctc:") and str(missing) in err
    assert main(_args(c, tmp_path / "e2", "--num-epochs", "2", "--start-epoch", "2")) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "epoch-1.pt" in err
    (c["lang"] / "phones.txt").write_text("a 0\nsil 1\n")
    assert main(_args(c, tmp_path / "e3", "--num-epochs", "1")) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not in phones.txt" in err
