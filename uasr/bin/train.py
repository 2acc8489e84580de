"""Train an emission model by the paper's sequence-level criterion (EM through the graph engine).

Phase 0 (``epoch-0.pt``): ``--num-restarts`` random initialisations, each run for
``--restart-iters`` EM iterations under the cheap ``--restart-lm-order`` LM; the restart with
the best *training likelihood* is kept (labels are never looked at). Epochs 1..N: EM under the
full ``--lm-order`` LM, one checkpoint per epoch. ``--supervision sup`` instead estimates the
same model from the reference labels (the ceiling): in one step from the labels of the tokens
when the corpus has time-aligned phones, else by EM over each utterance's transcript graph
(its units under a ``loop`` topology with optional silence). ``lm-only`` writes an
input-independent model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm


COMMAND = "train"
HELP = "train an emission model (unsupervised EM under an LM prior, or supervised ceiling)"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=HELP)
    p.add_argument("--tokens-dir", type=Path, required=True, help="stage-1 tokens (train.pt ...)")
    p.add_argument("--lang-dir", type=Path, required=True)
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--emission", default="table", choices=["table", "gaussian", "hybrid"])
    p.add_argument("--lr", type=float, default=3e-3, help="hybrid: Adam learning rate")
    p.add_argument("--hybrid-hidden", type=int, default=256, help="hybrid: MLP width (2 hidden layers)")
    p.add_argument("--hybrid-passes", type=int, default=5,
                   help="hybrid: Adam sweeps over the batches per EM-style iteration (restart "
                        "iterations and epochs); --supervision sup: --sup-iters x this many CE sweeps")
    p.add_argument("--units", default="acoustic", choices=["acoustic", "oracle"],
                   help="oracle: the true phone of each token, randomly renamed (rung 1)")
    p.add_argument("--supervision", default="unsup", choices=["unsup", "sup", "lm-only"])
    p.add_argument("--topology", default="one_to_one", choices=["one_to_one", "loop"])
    p.add_argument("--stay-prob", type=float, default=0.2, help="loop topology only")
    p.add_argument("--max-stay", type=int, default=0,
                   help="loop topology: at most this many stays per label (0 = unbounded)")
    p.add_argument("--lm-order", type=int, default=3)
    p.add_argument("--lm-scale", type=float, default=1.0,
                   help="training only: LM log-probabilities times this (a flatter prior); "
                        "decoding tunes its own scale")
    p.add_argument("--restart-lm-order", type=int, default=2)
    p.add_argument("--num-restarts", type=int, default=8)
    p.add_argument("--restart-iters", type=int, default=30)
    p.add_argument("--anneal-from", type=float, default=1.0,
                   help="deterministic annealing: inverse temperature of the first restart "
                        "iteration, raised linearly to 1 over the first half of them (1 = off)")
    p.add_argument("--num-epochs", type=int, default=5, help="EM epochs under the full LM")
    p.add_argument("--start-epoch", type=int, default=1, help="resume from epoch-(N-1).pt")
    p.add_argument("--restart-utts", type=int, default=0,
                   help="run the restarts on a fixed random subset of this many utterances (0 = all)")
    p.add_argument("--max-utts", type=int, default=0, help="cap training utterances (0 = all)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--smoothing", type=float, default=0.01,
                   help="table: Dirichlet prior as pseudo-counts per cell (negative = sparse MAP)")
    p.add_argument("--sup-iters", type=int, default=10,
                   help="--supervision sup without aligned labels: EM iterations on transcript graphs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this checkpoint (or an exp dir: its last epoch-N.pt) "
                        "instead of restarts: of the same emission "
                        "model, its parameters (diagnostic: e.g. the supervised model, to test "
                        "whether it is a fixed point of the criterion); of another one (e.g. an "
                        "unsupervised table system), its posteriors on the training tokens "
                        "under this run's graph are the targets of a first M-step (hybrid: "
                        "--sup-iters x --hybrid-passes sweeps of soft cross-entropy)")
    return p


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Holds the data as padded batches and runs E-steps/M-steps for one emission model."""

    def __init__(self, args, data, lang):
        from uasr.data.tokens import pad
        self.args = args
        symbols = lang.symbols
        self.C = len(symbols)
        self.aligned = data.aligned
        self.lang, self.data = lang, data
        ids = data.label_ids(symbols)
        if args.units == "oracle" and not self.aligned:
            raise ValueError(f"--units oracle needs time-aligned phones; {args.tokens_dir} has none")
        if args.units == "oracle":  # true phones under a random renaming: a perfect unit inventory
            g = torch.Generator().manual_seed(args.seed + 1000)
            self.perm = torch.randperm(self.C, generator=g)
            units = [self.perm[i] for i in ids]
            self.K = self.C
        else:
            self.perm = None
            units = data.units
            self.K = data.num_units
        def make_batches(subset: list[int]) -> list[dict]:
            order = sorted(subset, key=lambda i: len(units[i]))  # similar lengths together
            out = []
            for s in range(0, len(order), args.batch_size):
                idx = order[s:s + args.batch_size]
                u, L = pad([units[i] for i in idx])
                lab, _ = pad([ids[i] for i in idx])
                x = pad([data.pooled[i].float() for i in idx])[0] if args.emission != "table" else None
                out.append({"units": u, "lengths": L, "labels": lab, "pooled": x, "idx": idx})
            return out

        self.batches = make_batches(list(range(len(units))))
        self.restart_batches = self.batches
        if 0 < args.restart_utts < len(units):  # restarts on a fixed random subset: cheaper, so more
            g = torch.Generator().manual_seed(args.seed + 2000)
            sub = torch.randperm(len(units), generator=g)[:args.restart_utts].tolist()
            self.restart_batches = make_batches(sub)
        self.model = self.new_model(data)
        self.num_tokens = sum(len(u) for u in units)

    def new_model(self, data):
        from uasr.models.gaussian import GaussianEmission
        from uasr.models.table import TableEmission
        if self.args.emission == "table":
            return TableEmission(self.C, self.K)
        if self.args.emission == "hybrid":  # trained by Adam on the same criterion (no EM)
            from uasr.models.hybrid import HybridEmission
            if data.pooled[0].dim() != 2:
                raise ValueError(f"--emission hybrid needs pooled segment features; "
                                 f"{self.args.tokens_dir} ({data.tokens} tokens) has none")
            m = HybridEmission(self.C, data.pooled[0].shape[1], self.args.hybrid_hidden)
            self.opt = torch.optim.Adam(m.parameters(), lr=self.args.lr)
            self.gen = torch.Generator().manual_seed(self.args.seed)
            return m
        self.all_x = torch.cat([p.float() for p in data.pooled])
        return GaussianEmission(self.C, self.all_x.shape[1])

    def emissions(self, b) -> torch.Tensor:
        if self.args.emission == "table":
            return self.model(b["units"], b["lengths"])
        return self.model(b["pooled"], b["lengths"])

    def stats(self, b, gamma) -> torch.Tensor:
        if self.args.emission == "table":
            return self.model.counts(b["units"], b["lengths"], gamma, self.K)
        return self.model.stats(b["pooled"], b["lengths"], gamma)

    def m_step(self, stats) -> None:
        if self.args.emission == "table":
            self.model.m_step(stats, self.args.smoothing)
        else:
            self.model.m_step(stats)

    def random_init(self, g: torch.Generator) -> None:
        if self.args.emission == "table":
            self.model.random_init(g)
        elif self.args.emission == "hybrid":
            self.model.random_init(g)
            self.opt = torch.optim.Adam(self.model.parameters(), lr=self.args.lr)
        else:
            self.model.random_init(g, self.all_x)

    def em_iteration(self, graph, update: bool = True, batches: list | None = None,
                     beta: float = 1.0) -> float:
        """One E-step over all batches (+ M-step); returns the log-likelihood per token.

        ``beta < 1``: deterministic annealing (Ueda & Nakano 1998): posteriors from the path
        scores times ``beta`` (flatter, so early iterations commit less), likelihood at beta.
        """
        from uasr.losses import occupancy
        total, acc = 0.0, None
        batches = self.batches if batches is None else batches
        tempered = graph if beta == 1.0 else dataclasses.replace(
            graph, weights=graph.weights * beta, init=graph.init * beta, final=graph.final * beta)
        if self.args.emission == "hybrid":  # Adam sweeps on the tempered criterion instead of EM
            from uasr.models.hybrid import log_likelihood, train_passes
            if update:
                train_passes(self.model, self.opt, batches, tempered, self.args.hybrid_passes,
                             self.gen, beta=beta)
            return log_likelihood(self.model, batches, graph)  # at beta = 1: comparable
        num_tokens = sum(int(b["lengths"].sum()) for b in batches)
        graph = tempered
        with torch.no_grad():
            for b in batches:
                ll, gamma = occupancy(beta * self.emissions(b), b["lengths"], graph)
                total += float(ll.sum())
                s = self.stats(b, gamma)
                acc = s if acc is None else acc + s
        if update:
            self.m_step(acc)
        return total / num_tokens

    def supervised(self) -> None:
        """The same model estimated from the reference labels: the ceiling."""
        if self.args.emission == "hybrid" and not self.aligned:
            raise ValueError(f"--emission hybrid --supervision sup needs time-aligned phones "
                             f"(token labels); {self.args.tokens_dir} has none")
        if not self.aligned:
            return self.supervised_from_transcripts()
        self.fit_posteriors([torch.nn.functional.one_hot(b["labels"], self.C).float()
                             for b in self.batches])

    def fit_posteriors(self, gammas: list[torch.Tensor]) -> None:
        """One M-step towards given occupancies ``[B, N, C]`` per batch (one-hot reference
        labels, or another model's posteriors); hybrid: cross-entropy sweeps from a fresh start."""
        if self.args.emission == "hybrid":
            from uasr.models.hybrid import train_supervised
            self.random_init(torch.Generator().manual_seed(self.args.seed))
            train_supervised(self.model, self.opt, self.batches,
                             self.args.sup_iters * self.args.hybrid_passes, self.gen, gammas)
            return
        acc = None
        for b, gamma in zip(self.batches, gammas):
            s = self.stats(b, gamma)
            acc = s if acc is None else acc + s
        self.m_step(acc)

    def posteriors_of(self, ckpt: dict, graph) -> list[torch.Tensor]:
        """Occupancies ``[B, N, C]`` per batch of another trained system (``--init-from``)."""
        from uasr.bin.decode import emissions_for
        from uasr.losses import occupancy
        em, _ = emissions_for(ckpt, self.data, self.lang.symbols)
        out = []
        with torch.no_grad():
            for b in self.batches:
                e = em[b["idx"], :int(b["lengths"].max())]
                out.append(occupancy(e, b["lengths"], graph)[1])
        return out

    def supervised_from_transcripts(self) -> None:
        """EM on each utterance's transcript graph (no time alignment known), from a random
        start: units under a ``loop`` topology, optional ``sil`` between them."""
        from uasr.graph import Graph, linear_graph, loop
        from uasr.lang.phones import SIL
        from uasr.losses import occupancy
        if not all(self.data.text):
            raise ValueError(f"--supervision sup needs a transcript for every utterance of "
                             f"{self.args.tokens_dir}/train.pt (or time-aligned phones)")
        sym = self.lang.symbols
        topo = loop(self.args.stay_prob if self.args.topology == "loop" else 0.5,
                    silence=sym[SIL], silence_prob=0.2)
        trans = [[sym[u] for u in self.lang.transcribe(t) if u != SIL] for t in self.data.text]
        graphs = [Graph.batch([linear_graph(trans[i], topo) for i in b["idx"]]) for b in self.batches]
        self.random_init(torch.Generator().manual_seed(self.args.seed))
        for it in tqdm(range(self.args.sup_iters), desc="supervised EM", unit="it"):
            acc, no_path = None, 0
            with torch.no_grad():
                for b, g in zip(self.batches, graphs):
                    ll, gamma = occupancy(self.emissions(b), b["lengths"], g)
                    no_path += int((gamma.flatten(1).sum(1) == 0).sum())  # no path: zero occupancy
                    s = self.stats(b, gamma)
                    acc = s if acc is None else acc + s
            self.m_step(acc)
        if no_path:
            logging.warning(f"{no_path} utterance(s) have fewer tokens than transcript units: skipped")

    def checkpoint(self, epoch: int, ll: float) -> dict:
        return {"model": self.model.state_dict(), "emission": self.args.emission,
                "num_labels": self.C, "num_units": self.K, "units": self.args.units,
                "perm": self.perm, "supervision": self.args.supervision, "epoch": epoch,
                "train_ll_per_token": ll, "lm_order": self.args.lm_order,
                "topology": self.args.topology, "stay_prob": self.args.stay_prob,
                "max_stay": self.args.max_stay,
                "tokens": str(self.args.tokens_dir), "token_kind": self.data.tokens, "model_config": getattr(self.model, "config", None),
                # hybrid: Adam and the batch-shuffling generator, so a resumed run continues exactly
                **({"optimizer": self.opt.state_dict(), "generator": self.gen.get_state()}
                   if self.args.emission == "hybrid" else {})}

    def start_from(self, state: dict) -> None:
        """Train on from ``state`` (the best restart, ``--init-from``); hybrid: a fresh Adam,
        not the moments of another restart's trajectory."""
        self.model.load_state_dict(state)
        if self.args.emission == "hybrid":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=self.args.lr)

    def resume(self, ckpt: dict) -> None:
        """Continue from a checkpoint of this run (``--start-epoch``)."""
        self.model.load_state_dict(ckpt["model"])
        if self.args.emission == "hybrid":
            if "optimizer" not in ckpt:
                raise ValueError("the checkpoint has no Adam state (written by an older uasr); "
                                 "train from scratch instead of resuming")
            self.opt.load_state_dict(ckpt["optimizer"])
            self.gen.set_state(ckpt["generator"])


def build_graph(lang_dir: Path, order: int, symbols: dict[str, int], topology: str, stay: float,
                max_stay: int = 0, lm_scale: float = 1.0):
    """The LM x topology graph of training and decoding (``max_stay`` 0: unbounded loop).
    ``lm_scale`` multiplies the LM's log-probabilities (not the topology's stay weights)."""
    from uasr.graph import compose, loop, ngram_acceptor, one_to_one, read_arpa
    arpa = lang_dir / f"lm_{order}gram.arpa"
    if not arpa.is_file():
        raise FileNotFoundError(f"{arpa} is missing: run stage 2 (with this LM order) first")
    topo = one_to_one() if topology == "one_to_one" else loop(stay_prob=stay, max_stay=max_stay or None)
    acc = ngram_acceptor(read_arpa(arpa), symbols)
    if lm_scale != 1.0:
        acc = dataclasses.replace(acc, weights=acc.weights * lm_scale, final=acc.final * lm_scale)
    return compose(acc, topo)


def load_init(path: Path, tokens_dir: Path) -> tuple[Path, dict]:
    """``--init-from``: a checkpoint, or an exp dir (its last epoch), trained on these tokens."""
    if path.is_dir():
        from uasr.bin.decode import latest_epoch
        path = path / f"epoch-{latest_epoch(path)}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"--init-from {path} is missing: train that system first")
    ckpt = torch.load(path, weights_only=False)
    if Path(ckpt["tokens"]).resolve() != tokens_dir.resolve():
        raise ValueError(f"--init-from {path} was trained on {ckpt['tokens']}, not {tokens_dir}: "
                         "start from a system on the same tokens")
    return path, ckpt


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(1)  # small shared machines: extra threads only oversubscribe
    from torch.utils.tensorboard import SummaryWriter

    from uasr.data.tokens import TokenSet
    from uasr.lang.langdir import LangDir
    t0 = time.time()
    try:
        lang = LangDir.load(args.lang_dir)
        symbols = lang.symbols
        data = TokenSet.load(args.tokens_dir / "train.pt")
        graph = build_graph(args.lang_dir, args.lm_order, symbols, args.topology, args.stay_prob,
                            args.max_stay, args.lm_scale)
    except FileNotFoundError as e:
        print(f"train: {e}", file=sys.stderr)
        return 1
    if args.max_utts and len(data) > args.max_utts:
        for f in ("ids", "speakers", "units", "pooled", "labels", "ref", "text"):
            setattr(data, f, getattr(data, f)[:args.max_utts])
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    try:
        tr = Trainer(args, data, lang)
        if args.supervision == "sup":
            tr.supervised()
    except (ValueError, KeyError) as e:
        print(f"train: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 1
    tb = SummaryWriter(str(args.exp_dir / "tensorboard"))
    info: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "train_utts": len(data),
                  "train_tokens": tr.num_tokens, "command": "uasr train " + " ".join(argv or sys.argv[1:]),
                  "tokens": "oracle-units" if args.units == "oracle" else data.tokens,
                  "emission": args.emission,
                  "supervision": args.supervision,
                  "lm_order": args.lm_order, "topology": args.topology,
                  **({"max_stay": args.max_stay} if args.topology == "loop" and args.max_stay else {})}
    torch.manual_seed(args.seed)

    if args.supervision != "unsup":
        ll = tr.em_iteration(graph, update=False) if args.supervision == "sup" else None  # lm-only: none
        info["train_ll_per_token"] = ll
        save_atomic(tr.checkpoint(0, ll), args.exp_dir / "epoch-0.pt")
        args.num_epochs = 0
    elif args.init_from is not None and args.start_epoch <= 1:
        try:
            args.init_from, src = load_init(args.init_from, args.tokens_dir)
        except (FileNotFoundError, ValueError) as e:
            print(f"train: {e}", file=sys.stderr)
            return 1
        if src["emission"] == args.emission:
            tr.start_from(src["model"])
        else:  # another model's posteriors (e.g. table -> hybrid): no labels involved
            tr.fit_posteriors(tr.posteriors_of(src, graph))
            if args.emission == "hybrid":
                tr.start_from(tr.model.state_dict())  # a fresh Adam for the epochs
        info["init_from"] = str(args.init_from)
        if src["supervision"] == "sup":  # a labelled start: not an unsupervised system
            info["supervision"] += "-init-from-sup"
        elif src["units"] == "oracle":
            info["supervision"] += "-init-from-oracle-units"
        save_atomic(tr.checkpoint(0, float("nan")), args.exp_dir / "epoch-0.pt")
    elif args.start_epoch <= 1:
        # phase 0: restarts under the cheap LM, chosen by training likelihood only
        rgraph = build_graph(args.lang_dir, args.restart_lm_order, symbols, args.topology,
                             args.stay_prob, args.max_stay, args.lm_scale)
        best, restarts = None, []
        bar = tqdm(total=args.num_restarts * args.restart_iters, desc="restarts", unit="it")
        for r in range(args.num_restarts):
            tr.random_init(torch.Generator().manual_seed(args.seed * 1000 + r))
            ll = -math.inf
            for it in range(args.restart_iters):
                ramp = min(1.0, it / max(1, args.restart_iters // 2))
                beta = args.anneal_from + (1.0 - args.anneal_from) * ramp
                ll = tr.em_iteration(rgraph, batches=tr.restart_batches, beta=beta)
                tb.add_scalar(f"restart{r}/ll_per_token", ll, it)
                bar.update(1)
            ll = tr.em_iteration(rgraph, update=False, batches=tr.restart_batches)
            restarts.append(ll)
            bar.set_postfix(restart=r, ll=f"{ll:.3f}")
            if best is None or ll > best[0]:
                best = (ll, {k: v.clone() for k, v in tr.model.state_dict().items()})
        bar.close()
        tr.start_from(best[1])
        info["restart_ll_per_token"] = restarts
        info["chosen_restart"] = restarts.index(best[0])
        save_atomic(tr.checkpoint(0, best[0]), args.exp_dir / "epoch-0.pt")
        logging.info(f"restarts (LL/token under the {args.restart_lm_order}-gram): "
                     f"{[round(x, 3) for x in restarts]}; kept #{info['chosen_restart']}")
    else:
        prev = args.exp_dir / f"epoch-{args.start_epoch - 1}.pt"
        if not prev.is_file():
            print(f"train: {prev} is missing: cannot resume from --start-epoch {args.start_epoch}",
                  file=sys.stderr)
            return 1
        try:
            tr.resume(torch.load(prev, weights_only=False))
        except ValueError as e:
            print(f"train: {prev}: {e}", file=sys.stderr)
            return 1

    lls = []
    epochs = range(max(args.start_epoch, 1), args.num_epochs + 1)
    for epoch in tqdm(epochs, desc="epochs", unit="ep", disable=not epochs):
        ll = tr.em_iteration(graph)
        lls.append(ll)
        tb.add_scalar("train/ll_per_token", ll, epoch)
        save_atomic(tr.checkpoint(epoch, ll), args.exp_dir / f"epoch-{epoch}.pt")
    if args.supervision == "unsup":
        ll = tr.em_iteration(graph, update=False)
        info["epoch_ll_per_token"] = lls
        info["train_ll_per_token"] = ll
        last = args.exp_dir / f"epoch-{args.num_epochs}.pt"
        save_atomic(tr.checkpoint(args.num_epochs, ll), last)
        if tr.aligned:  # diagnostic: the likelihood of the same model estimated from the labels
            tr.supervised()
            info["supervised_ll_per_token"] = tr.em_iteration(graph, update=False)
    tb.close()
    info["train_seconds"] = round(time.time() - t0, 2)
    tmp = args.exp_dir / "train.json.tmp"
    tmp.write_text(json.dumps(info, indent=1, allow_nan=False))
    os.replace(tmp, args.exp_dir / "train.json")
    logging.info(f"done in {info['train_seconds']} s; LL/token {info.get('train_ll_per_token')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
