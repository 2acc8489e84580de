"""Supervised CTC baseline on frames: train a small network with ``F.ctc_loss``, decode greedily.

Inputs: the stage-1 feature cuts (``<feat-dir>/cuts_<split>.jsonl.gz``, per-speaker CMVN applied
here as in stage 1) and the ``frames`` token sets (``<tokens-dir>/<split>.pt``) for utterance
ids and references: the aligned phones without ``sil``, else the transcript's units through
the lang dir. Writes ``epoch-N.pt`` (weights + Adam state, atomically), tensorboard scalars,
``train.json``, and after training the greedy CTC decoding of dev and test
(``recogs-/errs-<set>.txt``, ``decode.json`` with ``lm_scale`` 0), so ``uasr report`` lists the
system as one more row of the ladder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

COMMAND = "train-ctc"
HELP = "supervised CTC baseline: a small conv (or BiLSTM) network on frames, F.ctc_loss, greedy decoding"
SPLITS = ("train", "dev", "test")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--feat-dir", type=Path, required=True, help="stage-1 features (cuts_<split>.jsonl.gz)")
    p.add_argument("--tokens-dir", type=Path, required=True,
                   help="the frames token sets (<split>.pt): ids, speakers, references")
    p.add_argument("--lang-dir", type=Path, required=True)
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--num-epochs", type=int, default=20)
    p.add_argument("--start-epoch", type=int, default=1, help="resume from epoch-(N-1).pt")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=8, help="utterances per batch")
    p.add_argument("--max-frames", type=int, default=0, help="also cap padded frames per batch (0 = off)")
    p.add_argument("--arch", default="conv", choices=["conv", "lstm"],
                   help="residual dilated convolutions, or a BiLSTM, after the strided input convolution")
    p.add_argument("--hidden", type=int, default=128, help="channels; the BiLSTM has hidden/2 per direction")
    p.add_argument("--layers", type=int, default=4, help="residual conv blocks or BiLSTM layers")
    p.add_argument("--subsample", type=int, default=2, help="stride of the first convolution")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda[:N]")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return p


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_split(feat_dir: Path, tokens_dir: Path, split: str, lang
               ) -> tuple[list[str], list[torch.Tensor], list[list[str]]]:
    """(ids, CMVN-normalised features ``[T, D]``, references without ``sil``) of one split, in
    the token set's order. Raises FileNotFoundError/KeyError with a one-line message."""
    from lhotse import CutSet

    from uasr.data.features import speaker_cmvn
    from uasr.data.tokens import TokenSet, without_sil
    path = feat_dir / f"cuts_{split}.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run stage 1 (prepare-tokens) first")
    data = TokenSet.load(tokens_dir / f"{split}.pt")
    wanted = set(data.ids)
    feats = {}
    for cut in CutSet.from_file(path):
        if cut.id in wanted:
            feats[cut.id] = cut.load_features()
    missing = [u for u in data.ids if u not in feats]
    if missing:
        raise KeyError(f"{path} has no features for {len(missing)} utterance(s) of "
                       f"{tokens_dir / f'{split}.pt'} (e.g. {missing[0]}): rerun stage 1")
    spk = dict(zip(data.ids, data.speakers))
    feats = speaker_cmvn(feats, spk)
    refs = [without_sil(r) for r in data.references(lang)]
    return list(data.ids), [torch.from_numpy(feats[u]) for u in data.ids], refs


def to_ids(refs: list[list[str]], symbols: dict[str, int], where: str) -> list[torch.Tensor]:
    out = []
    for r in refs:
        unknown = sorted(set(r) - set(symbols))
        if unknown:
            raise KeyError(f"{where}: unit(s) {' '.join(unknown)} are not in phones.txt of the lang dir")
        out.append(torch.tensor([symbols[p] for p in r], dtype=torch.long))
    return out


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    from torch.utils.tensorboard import SummaryWriter

    from uasr.decode import write_results
    from uasr.lang.langdir import LangDir
    from uasr.models.ctc import CtcModel, recognise, train_epoch

    t0 = time.time()
    if not args.feat_dir.is_dir():
        print(f"train-ctc: {args.feat_dir} is missing: run stage 1 (prepare-tokens) first", file=sys.stderr)
        return 1
    try:
        lang = LangDir.load(args.lang_dir)
        symbols = lang.symbols
        data = {s: load_split(args.feat_dir, args.tokens_dir, s, lang) for s in SPLITS}
        targets = to_ids(data["train"][2], symbols, str(args.tokens_dir / "train.pt"))
    except (FileNotFoundError, KeyError) as e:
        print(f"train-ctc: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 1
    ids, feats, _ = data["train"]
    empty = [u for u, t in zip(ids, targets) if len(t) == 0]
    if empty:
        print(f"train-ctc: {len(empty)} training utterance(s) have an empty reference (e.g. {empty[0]})",
              file=sys.stderr)
        return 1
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    model = CtcModel(feats[0].shape[1], len(symbols), args.hidden, args.layers, args.subsample,
                     args.dropout, args.arch).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    prev_seconds, losses = 0.0, []
    if args.start_epoch > 1:
        prev = args.exp_dir / f"epoch-{args.start_epoch - 1}.pt"
        if not prev.is_file():
            print(f"train-ctc: {prev} is missing: cannot resume from --start-epoch {args.start_epoch}",
                  file=sys.stderr)
            return 1
        ck = torch.load(prev, map_location=device, weights_only=False)
        if ck["config"] != model.config:
            print(f"train-ctc: {prev} was trained with {ck['config']}, not {model.config}", file=sys.stderr)
            return 1
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        prev_seconds, losses = ck["train_seconds"], list(ck["epoch_loss_per_frame"])
    logging.info(f"{model.num_params()} parameters on {device}; {len(ids)} training utterances, "
                 f"{sum(len(f) for f in feats)} frames")
    tb = SummaryWriter(str(args.exp_dir / "tensorboard"))
    epochs = range(args.start_epoch, args.num_epochs + 1)
    bar = tqdm(total=len(epochs) * len(feats), desc="train-ctc", unit="utt")
    step = [0]

    def on_batch(loss: float, n: int) -> None:
        bar.update(n)
        bar.set_postfix(loss=f"{loss:.3f}")
        tb.add_scalar("train/batch_loss_per_frame", loss, step[0])
        step[0] += 1

    for epoch in epochs:
        bar.set_description(f"train-ctc epoch {epoch}/{args.num_epochs}")
        loss = train_epoch(model, opt, feats, targets, epoch, args.seed, args.batch_size,
                           args.max_frames, device, on_batch=on_batch)
        losses.append(loss)
        tb.add_scalar("train/loss_per_frame", loss, epoch)
        save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "config": model.config,
                     "epoch": epoch, "symbols": symbols, "epoch_loss_per_frame": losses,
                     "train_seconds": prev_seconds + time.time() - t0},
                    args.exp_dir / f"epoch-{epoch}.pt")
    bar.close()
    last = args.exp_dir / f"epoch-{args.num_epochs}.pt"
    if not epochs and last.is_file():  # nothing left to train: decode the last checkpoint
        ck = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        prev_seconds, losses = ck["train_seconds"], list(ck["epoch_loss_per_frame"])
    train_seconds = round(prev_seconds + time.time() - t0, 2)

    t1 = time.time()
    names = {i: s for s, i in symbols.items()}
    out: dict = {"epoch": args.num_epochs, "lm_scale": 0}
    for split in ("dev", "test"):
        sids, sfeats, refs = data[split]
        hyps = [[names[c] for c in h] for h in recognise(model, sfeats, device=device)]
        res = write_results(args.exp_dir, split, sids, refs, hyps)
        out[split] = res
        tb.add_scalar(f"{split}/per", res["per"], args.num_epochs)
        print(f"{args.exp_dir.name}\t{split}\tPER {res['per']:.2f}%\t(greedy CTC, epoch {args.num_epochs})")
    tb.close()
    out["decode_seconds"] = round(time.time() - t1, 2)
    info = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "command": "uasr train-ctc " + " ".join(argv if argv is not None else sys.argv[1:]),
            "tokens": "frames", "emission": "ctc-nn", "supervision": "sup", "lm_order": 0,
            "topology": "ctc", "train_utts": len(ids), "train_frames": sum(len(f) for f in feats),
            "train_seconds": train_seconds, "train_loss_per_frame": losses[-1] if losses else None,
            "epoch_loss_per_frame": losses, "num_params": model.num_params(), "device": str(device)}
    for name, obj in (("train.json", info), ("decode.json", out)):
        tmp = args.exp_dir / (name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=1))
        os.replace(tmp, args.exp_dir / name)
    logging.info(f"trained in {train_seconds} s; dev PER {out['dev']['per']:.2f}, test PER {out['test']['per']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
