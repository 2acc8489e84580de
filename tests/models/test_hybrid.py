"""The ``hybrid`` emission: prior-normalised posteriors through the sequence-level loss."""

import json

import torch

from uasr.decode import decode, per
from uasr.graph import ngram_graph, one_to_one
from uasr.lm.ngram import train_ngram
from uasr.losses import sequence_ce
from uasr.models.hybrid import HybridEmission, log_likelihood, train_passes, update_prior

SYMS = ["a", "b", "c", "d", "e"]


def _bigram(g: torch.Generator) -> torch.Tensor:
    """A sparse-ish random bigram over 5 labels (+ a start row): every label has 2 successors."""
    C = len(SYMS)
    P = torch.zeros(C + 1, C)
    for r in range(C + 1):
        succ = torch.randperm(C, generator=g)[:2]
        P[r, succ] = torch.tensor([0.75, 0.25])
    return P


def _sample(P: torch.Tensor, n: int, g: torch.Generator, lo: int = 8, hi: int = 12) -> list[list[int]]:
    out = []
    for _ in range(n):
        L = int(torch.randint(lo, hi + 1, (1,), generator=g))
        seq, prev = [], len(SYMS)  # start row
        for _ in range(L):
            prev = int(torch.multinomial(P[prev], 1, generator=g))
            seq.append(prev)
        out.append(seq)
    return out


def _graph(P: torch.Tensor, g: torch.Generator):
    lm = train_ngram([[SYMS[c] for c in s] for s in _sample(P, 400, g)], 2, vocab=SYMS)
    return ngram_graph(lm, {s: i for i, s in enumerate(SYMS)}, one_to_one())


def _batch(seqs: list[list[int]], R: torch.Tensor, g: torch.Generator, noise: float) -> dict:
    """Pooled features: a noisy one-hot of the true label (padded to D dims) through rotation R."""
    D = R.shape[0]
    L = torch.tensor([len(s) for s in seqs])
    x = torch.zeros(len(seqs), int(L.max()), D)
    lab = torch.zeros(len(seqs), int(L.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        onehot = torch.zeros(len(s), D)
        onehot[torch.arange(len(s)), torch.tensor(s)] = 2.0
        x[i, :len(s)] = (onehot + noise * torch.randn(len(s), D, generator=g)) @ R.t()
        lab[i, :len(s)] = torch.tensor(s)
    return {"pooled": x, "lengths": L, "labels": lab}


def test_input_independent_network_scores_zero_and_gives_the_lm_only_loss():
    g = torch.Generator().manual_seed(0)
    graph = _graph(_bigram(g), g)
    m = HybridEmission(len(SYMS), 6, hidden=8)
    with torch.no_grad():
        m.net[-1].weight.zero_()  # output = bias only: q(c|x) does not depend on x
        m.net[-1].bias.copy_(torch.tensor([2.0, -1.0, 0.5, 0.0, 3.0]))
    x, L = torch.randn(3, 7, 6), torch.tensor([7, 4, 5])
    s = m(x, L)
    assert s.abs().max() < 1e-6
    assert torch.allclose(sequence_ce(s, L, graph), sequence_ce(torch.zeros(3, 7, 5), L, graph), atol=1e-5)
    update_prior(m, [{"pooled": x, "lengths": L}])  # the stored training prior: zero as well
    assert m(x, L, batch_prior=False).abs().max() < 1e-6


def test_prior_is_the_average_posterior_over_valid_segments_only():
    m = HybridEmission(len(SYMS), 4, hidden=8)
    x, L = torch.randn(2, 5, 4), torch.tensor([5, 2])
    s = m(x, L)
    q = m.log_posteriors(x).exp()
    valid = torch.cat([q[0, :5], q[1, :2]])
    assert torch.allclose(s[1, :2], q[1, :2].log() - valid.mean(0).log(), atol=1e-5)
    assert (s[1, 2:] == 0).all()
    # the implied q(x|c) = p(x) q(c|x) / q̄(c) sums to one over the batch's empirical segments
    assert torch.allclose((s[0, :5].exp().sum(0) + s[1, :2].exp().sum(0)) / 7, torch.ones(5), atol=1e-5)


def test_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(1)
    graph = _graph(_bigram(g), g)
    m = HybridEmission(len(SYMS), 3, hidden=4, layers=1).double()
    x, L = torch.randn(2, 4, 3, dtype=torch.float64), torch.tensor([4, 3])
    names, params = zip(*m.named_parameters())

    def loss(*ps):
        out = torch.func.functional_call(m, dict(zip(names, ps)), (x, L))
        return sequence_ce(out, L, graph).sum()

    assert torch.autograd.gradcheck(loss, tuple(p.detach().clone().requires_grad_(True) for p in params),
                                    eps=1e-6, atol=1e-5)


def test_unsupervised_training_beats_the_lm_only_floor():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    P = _bigram(g)
    graph = _graph(P, g)
    R = torch.linalg.qr(torch.randn(8, 8, generator=g))[0]
    train = [_batch(_sample(P, 64, g), R, g, 0.4) for _ in range(2)]
    test_seqs = _sample(P, 40, g)
    test = _batch(test_seqs, R, g, 0.4)
    refs = [[SYMS[c] for c in s] for s in test_seqs]

    def test_per(em: torch.Tensor) -> float:
        return per(refs, [[SYMS[c] for c in h] for h in decode(em, test["lengths"], graph)])

    floor = test_per(torch.zeros(len(test_seqs), test["pooled"].shape[1], len(SYMS)))
    best = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only slow it down
    try:
        for r in range(2):  # restarts, chosen by training likelihood
            m = HybridEmission(len(SYMS), 8, hidden=32)
            m.random_init(torch.Generator().manual_seed(100 + r))
            opt = torch.optim.Adam(m.parameters(), lr=1e-2)
            train_passes(m, opt, train, graph, passes=30, generator=torch.Generator().manual_seed(r))
            ll = log_likelihood(m, train, graph)
            if best is None or ll > best[0]:
                best = (ll, m)
    finally:
        torch.set_num_threads(threads)
    ll, m = best
    with torch.no_grad():
        hybrid = test_per(m(test["pooled"], test["lengths"], batch_prior=False))
    tokens = sum(int(b["lengths"].sum()) for b in train)
    lm_only_ll = -sum(float(sequence_ce(torch.zeros(b["labels"].shape + (len(SYMS),)), b["lengths"], graph).sum())
                      for b in train) / tokens
    assert ll > lm_only_ll + 0.2, (ll, lm_only_ll)
    assert hybrid < 0.5 * floor, (hybrid, floor)


def _tokens_dir(root, P: torch.Tensor, R: torch.Tensor, g: torch.Generator, aligned: bool = True,
                units_noise: float | None = None):
    """Oracle-style token sets (pooled features as in :func:`_batch`) + a lang dir with a bigram.
    ``units_noise``: units are the true labels, each replaced by a random one with this
    probability (for ``table`` systems); else one dummy unit."""
    from uasr.lm.arpa import write_arpa
    lang, tok = root / "lang", root / "tokens"
    lang.mkdir()
    tok.mkdir()
    (lang / "phones.txt").write_text("".join(f"{s} {i}\n" for i, s in enumerate(SYMS)))
    write_arpa(train_ngram([[SYMS[c] for c in s] for s in _sample(P, 400, g)], 2, vocab=SYMS),
               lang / "lm_2gram.arpa")
    for split, n in (("train", 96), ("dev", 20), ("test", 30)):
        seqs = _sample(P, n, g)
        b = _batch(seqs, R, g, 0.4)
        names = [[SYMS[c] for c in s] for s in seqs]
        if units_noise is None:
            units, K = [torch.zeros(len(s), dtype=torch.long) for s in seqs], 1
        else:
            units, K = [], len(SYMS)
            for s in seqs:
                u = torch.tensor(s)
                flip = torch.rand(len(s), generator=g) < units_noise
                units.append(torch.where(flip, torch.randint(K, (len(s),), generator=g), u))
        torch.save({"ids": [f"{split}{i}" for i in range(n)], "speakers": ["s"] * n,
                    "units": units, "num_units": K,
                    "pooled": [b["pooled"][i, :len(s)].half() for i, s in enumerate(seqs)],
                    "labels": names if aligned else [[] for _ in seqs], "ref": names, "text": [""] * n,
                    "tokens": "oracle"}, tok / f"{split}.pt")
    return tok, lang


def test_train_and_decode_cli(tmp_path, capsys):
    from uasr.bin import decode as decode_cli
    from uasr.bin import train
    g = torch.Generator().manual_seed(3)
    P = _bigram(g)
    R = torch.linalg.qr(torch.randn(8, 8, generator=g))[0]
    tok, lang = _tokens_dir(tmp_path, P, R, g)
    common = ["--tokens-dir", str(tok), "--lang-dir", str(lang), "--lm-order", "2", "--emission", "hybrid",
              "--hybrid-hidden", "32", "--lr", "1e-2", "--batch-size", "48"]
    pers = {}
    for name, opts in (("unsup", ["--num-restarts", "2", "--restart-iters", "3", "--num-epochs", "2"]),
                       ("sup", ["--supervision", "sup", "--sup-iters", "4"]),
                       ("floor", ["--supervision", "lm-only"])):
        exp = tmp_path / name
        assert train.main(common + ["--exp-dir", str(exp), *opts]) == 0
        assert decode_cli.main(["--exp-dir", str(exp), "--tokens-dir", str(tok), "--lang-dir", str(lang),
                                "--lm-scales", "1"]) == 0
        pers[name] = json.loads((exp / "decode.json").read_text())["test"]["per"]
    t = json.loads((tmp_path / "unsup" / "train.json").read_text())
    assert t["emission"] == "hybrid" and len(t["restart_ll_per_token"]) == 2
    assert t["epoch_ll_per_token"][-1] > t["restart_ll_per_token"][t["chosen_restart"]] - 0.05
    assert pers["sup"] < 10 and pers["unsup"] < 0.5 * pers["floor"], pers
    # supervision needs token labels
    bare = tmp_path / "bare"
    bare.mkdir()
    tok2, lang2 = _tokens_dir(bare, P, R, g, aligned=False)
    capsys.readouterr()  # drop the progress bars of the runs above
    assert train.main(["--tokens-dir", str(tok2), "--lang-dir", str(lang2), "--lm-order", "2", "--emission",
                       "hybrid", "--supervision", "sup", "--exp-dir", str(bare / "e")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs time-aligned phones" in err[0]
    # frame tokens carry no pooled features
    d = torch.load(tok2 / "train.pt", weights_only=False)
    d.update(pooled=[torch.zeros(0) for _ in d["ids"]], tokens="frames")
    torch.save(d, tok2 / "train.pt")
    assert train.main(["--tokens-dir", str(tok2), "--lang-dir", str(lang2), "--lm-order", "2", "--emission",
                       "hybrid", "--exp-dir", str(bare / "e2")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs pooled segment features" in err[0]


def test_annealed_training_and_exact_resume(tmp_path):
    """--anneal-from applies to the hybrid too, and --start-epoch continues exactly (Adam and
    batch-shuffling state are in the checkpoints)."""
    from uasr.bin import train
    g = torch.Generator().manual_seed(5)
    P = _bigram(g)
    R = torch.linalg.qr(torch.randn(8, 8, generator=g))[0]
    tok, lang = _tokens_dir(tmp_path, P, R, g)
    common = ["--tokens-dir", str(tok), "--lang-dir", str(lang), "--lm-order", "2", "--emission",
              "hybrid", "--hybrid-hidden", "16", "--batch-size", "48", "--num-restarts", "1",
              "--restart-iters", "2", "--hybrid-passes", "1"]
    runs = {}
    for name, opts in (("whole", ["--num-epochs", "3"]), ("part", ["--num-epochs", "1"])):
        assert train.main(common + opts + ["--exp-dir", str(tmp_path / name)]) == 0
    assert train.main(common + ["--num-epochs", "3", "--start-epoch", "2",
                                "--exp-dir", str(tmp_path / "part")]) == 0
    for name in ("whole", "part"):
        runs[name] = torch.load(tmp_path / name / "epoch-3.pt", weights_only=False)["model"]
    for k, v in runs["whole"].items():
        torch.testing.assert_close(runs["part"][k], v, rtol=0, atol=0)
    # annealing changes the restart phase (flatter posteriors early on)
    assert train.main(common + ["--num-epochs", "0", "--anneal-from", "0.3",
                                "--exp-dir", str(tmp_path / "annealed")]) == 0
    a = torch.load(tmp_path / "annealed" / "epoch-0.pt", weights_only=False)["model"]
    w = torch.load(tmp_path / "whole" / "epoch-0.pt", weights_only=False)["model"]
    assert any(not torch.equal(a[k], w[k]) for k in w)


def test_soft_targets_equal_labels_when_one_hot():
    """train_supervised on one-hot targets takes exactly the steps of training on the labels."""
    from uasr.models.hybrid import train_supervised
    g = torch.Generator().manual_seed(4)
    P = _bigram(g)
    R = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
    batches = [_batch(_sample(P, 8, g), R, g, 0.4) for _ in range(3)]
    onehot = [torch.nn.functional.one_hot(b["labels"], len(SYMS)).float() for b in batches]
    params = []
    for targets in (None, onehot):
        torch.manual_seed(0)
        m = HybridEmission(len(SYMS), 6, hidden=8)
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        train_supervised(m, opt, batches, 3, torch.Generator().manual_seed(1), targets)
        params.append(m.state_dict())
    for k, v in params[0].items():
        torch.testing.assert_close(params[1][k], v)


def test_init_from_another_models_posteriors(tmp_path, capsys):
    """--init-from a table system (units: labels with 30 % noise): the hybrid's first M-step
    fits the table's posteriors on the clean features, without looking at any label, and
    decodes better than the table; EM goes on from there."""
    from uasr.bin import decode as decode_cli
    from uasr.bin import train
    g = torch.Generator().manual_seed(7)
    P = _bigram(g)
    R = torch.linalg.qr(torch.randn(8, 8, generator=g))[0]
    tok, lang = _tokens_dir(tmp_path, P, R, g, units_noise=0.3)
    common = ["--tokens-dir", str(tok), "--lang-dir", str(lang), "--lm-order", "2", "--batch-size", "48"]
    hybrid = ["--emission", "hybrid", "--hybrid-hidden", "32", "--lr", "1e-2", "--sup-iters", "4"]
    table = tmp_path / "table" / "epoch-3.pt"
    runs = {
        "table": common + ["--num-restarts", "2", "--restart-iters", "5", "--num-epochs", "3"],
        "table_sup": common + ["--supervision", "sup"],
        "hyb0": common + hybrid + ["--init-from", str(table), "--num-epochs", "0"],
        "hyb": common + hybrid + ["--init-from", str(table.parent), "--num-epochs", "2"],  # its last epoch
        "hyb_sup": common + hybrid + ["--init-from", str(tmp_path / "table_sup" / "epoch-0.pt"),
                                      "--num-epochs", "0"],
    }
    pers = {}
    for name, opts in runs.items():
        if name == "hyb0":  # from here on the training labels are wrong: they must not matter
            d = torch.load(tok / "train.pt", weights_only=False)
            d["labels"] = [[SYMS[(SYMS.index(c) + 1) % len(SYMS)] for c in s] for s in d["labels"]]
            torch.save(d, tok / "train.pt")
        exp = tmp_path / name
        assert train.main(opts + ["--exp-dir", str(exp)]) == 0
        assert decode_cli.main(["--exp-dir", str(exp), "--tokens-dir", str(tok), "--lang-dir", str(lang),
                                "--lm-scales", "1"]) == 0
        pers[name] = json.loads((exp / "decode.json").read_text())["test"]["per"]
    info = {n: json.loads((tmp_path / n / "train.json").read_text()) for n in runs}
    assert info["hyb"]["supervision"] == "unsup" and info["hyb"]["init_from"] == str(table)
    assert info["hyb_sup"]["supervision"] == "unsup-init-from-sup"
    assert pers["table"] > 10 and pers["hyb0"] < 0.5 * pers["table"], pers
    assert pers["hyb"] <= pers["hyb0"] + 2, pers
    lls = info["hyb"]["epoch_ll_per_token"]
    assert lls[-1] >= lls[0] - 0.01, lls
    # a system on other tokens, or one not trained yet: a one-line error
    other = tmp_path / "other"
    other.mkdir()
    tok2, _ = _tokens_dir(other, P, R, g, units_noise=0.3)
    capsys.readouterr()
    for src, msg in ((table, "was trained on"), (tmp_path / "nope" / "epoch-3.pt", "is missing")):
        assert train.main(["--tokens-dir", str(tok2), "--lang-dir", str(lang), "--lm-order", "2", *hybrid,
                           "--init-from", str(src), "--exp-dir", str(other / "e")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
