"""Word decoding graphs (uasr.wfst) against an independent brute force over word sequences."""

import itertools
import math

import numpy as np
import pytest

pytest.importorskip("kaldifst")
pytest.importorskip("kaldi_decoder")
pytest.importorskip("kaldilm")

from uasr import wfst  # noqa: E402

PHONES = {p: i for i, p in enumerate(["ah", "d", "eh", "iy", "n", "r", "sil"])}
LEXICON = {  # a homophone pair (red/read) and prefixes (re/reed, knee/need)
    "red": ["r", "eh", "d"], "read": ["r", "eh", "d"], "re": ["r", "iy"],
    "reed": ["r", "iy", "d"], "knee": ["n", "iy"], "need": ["n", "iy", "d"],
    "ahh": ["xx"],  # a phone outside phones.txt: dropped
}
WORDS = ["knee", "need", "re", "read", "red", "reed"]
LN10 = math.log(10.0)


def make_lm(seed: int = 0):
    """A bigram over WORDS (+ ``zzz``, absent from the lexicon, and ``ahh``): log10 probs."""
    rng = np.random.default_rng(seed)
    vocab = WORDS + ["zzz", "ahh"]
    uni = {w: float(rng.uniform(-2.0, -0.3)) for w in vocab + ["</s>"]}
    uni["<s>"] = -99.0
    bow = {w: float(rng.uniform(-0.8, -0.05)) for w in vocab + ["<s>"]}
    bi = {}
    for h in vocab + ["<s>"]:
        nxt = rng.choice(len(vocab) + 1, size=4, replace=False)
        for j in nxt:  # every history has bigrams, so every history is a state of G
            w = (vocab + ["</s>"])[j]
            bi[(h, w)] = float(rng.uniform(-1.5, -0.05))
    return uni, bow, bi


def write_arpa(path, lm) -> None:
    uni, bow, bi = lm
    lines = ["\\data\\", f"ngram 1={len(uni)}", f"ngram 2={len(bi)}", "", "\\1-grams:"]
    for w, p in uni.items():
        lines.append(f"{p:.6f}\t{w}" + (f"\t{bow[w]:.6f}" if w in bow else ""))
    lines += ["", "\\2-grams:"]
    lines += [f"{p:.6f}\t{h} {w}" for (h, w), p in bi.items()]
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines))


def lm_logprob(lm, words) -> float:
    """Natural-log score of a word sequence read as a graph: at each step the better of the
    stored bigram and the back-off route (what a back-off G scores under Viterbi)."""
    uni, bow, bi = lm
    total, h = 0.0, "<s>"
    for w in list(words) + ["</s>"]:
        cands = [bow.get(h, 0.0) + uni[w]]
        if (h, w) in bi:
            cands.append(bi[(h, w)])
        total += max(cands) * LN10
        h = w
    return total


def realisations(words, sil_prob):
    """(phone sequence, log weight) for every optional-silence pattern of a word sequence:
    silence may open the utterance and follow each word."""
    for pattern in itertools.product([False, True], repeat=len(words) + 1):
        phones = ["sil"] if pattern[0] else []
        logw = math.log(sil_prob) if pattern[0] else math.log1p(-sil_prob)
        for w, s in zip(words, pattern[1:]):
            phones += LEXICON[w] + (["sil"] if s else [])
            logw += math.log(sil_prob) if s else math.log1p(-sil_prob)
        yield phones, logw


def acoustic(em, phones, topology, stay, lm_scale, max_stay=0):
    """Best score of a phone sequence over the N segments (all segmentations): emissions
    plus the topology's weights, which are graph weights (scaled like the LM)."""
    N, n = em.shape[0], len(phones)
    ids = [PHONES[p] for p in phones]
    if topology == "one_to_one":
        return sum(em[t, c] for t, c in enumerate(ids)) if n == N else -math.inf
    if not 1 <= n <= N:
        return -math.inf
    best = -math.inf
    for cuts in itertools.combinations(range(1, N), n - 1):
        bounds = (0,) + cuts + (N,)
        spans = [e - b for b, e in zip(bounds[:-1], bounds[1:])]
        if max_stay and max(spans) > max_stay + 1:
            continue
        # a phone that used every allowed stay leaves with weight 1
        leaves = sum(1 for d in spans[:-1] if not (max_stay and d == max_stay + 1))
        s = lm_scale * ((N - n) * math.log(stay) + leaves * math.log1p(-stay))
        for k, c in enumerate(ids):
            s += sum(em[t, c] for t in range(bounds[k], bounds[k + 1]))
        best = max(best, s)
    return best


def brute_force(em, lm, topology, lm_scale, stay=0.6, sil_prob=0.5, word_penalty=0.0,
                max_stay=0):
    """{word sequence: best score} over all sequences that fit the N segments."""
    N = em.shape[0]
    best: dict = {}
    for n in range(0, N // 2 + 1):  # every word has >= 2 phones
        for words in itertools.product(WORDS, repeat=n):
            lmw = lm_logprob(lm, words) - word_penalty * len(words)
            for phones, silw in realisations(words, sil_prob):
                a = acoustic(em, phones, topology, stay, lm_scale, max_stay)
                if a > -math.inf:
                    s = a + lm_scale * (lmw + silw)
                    if s > best.get(words, -math.inf):
                        best[words] = s
    return best


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "words.arpa"
    write_arpa(path, make_lm())
    return path


def test_disambig_symbols():
    lex, k = wfst.add_disambig({w: LEXICON[w] for w in WORDS})
    assert lex["read"][-1] != lex["red"][-1] and lex["read"][-1].startswith("#")
    assert lex["re"][-1].startswith("#") and lex["knee"][-1].startswith("#")
    assert lex["reed"] == LEXICON["reed"] and lex["need"] == LEXICON["need"]
    assert k == 2


@pytest.mark.parametrize("topology,penalty,max_stay", [("one_to_one", 0.0, 0), ("loop", 0.0, 0),
                                                       ("loop", 1.5, 0), ("loop", 0.0, 1)])
def test_decode_matches_brute_force(arpa, topology, penalty, max_stay):
    lm = make_lm()
    g = wfst.build_word_graph(LEXICON, arpa, PHONES, topology=topology, stay_prob=0.6,
                              max_stay=max_stay, sil_prob=0.5, word_penalty=penalty, oov="drop")
    assert g.info["words"] == len(WORDS)
    assert g.info["dropped"] == {"no_pronunciation": 1, "unknown_phones": 1}
    rng = np.random.default_rng(1)
    for trial in range(3):
        N = 6 if topology == "one_to_one" else 5
        em = rng.normal(0.0, 2.0, size=(N, len(PHONES))).astype(np.float32)
        for lm_scale in (0.5, 2.0):
            ref = brute_force(em.astype(np.float64), lm, topology, lm_scale, word_penalty=penalty,
                              max_stay=max_stay)
            ranked = sorted(ref.items(), key=lambda kv: -kv[1])
            hyp = wfst.decode(g, em, lm_scale=lm_scale, beam=1000.0)
            assert hyp.final
            assert abs(hyp.score - ranked[0][1]) < 1e-4, (trial, lm_scale, hyp, ranked[:3])
            if ranked[0][1] - ranked[1][1] > 1e-3:  # a clear argmax
                assert tuple(hyp.words) == ranked[0][0], (trial, lm_scale, hyp, ranked[:3])


def test_homophones_follow_the_lm(tmp_path):
    # "r eh d": the LM decides between red and read
    uni = {w: -1.0 for w in WORDS + ["</s>"]}
    uni["<s>"] = -99.0
    bow = {w: -0.1 for w in WORDS + ["<s>"]}
    for first, other in (("red", "read"), ("read", "red")):
        bi = {("<s>", first): -0.1, ("<s>", other): -2.0}
        bi.update({(w, "</s>"): -0.2 for w in WORDS})
        write_arpa(tmp_path / "lm.arpa", (uni, bow, bi))
        g = wfst.build_word_graph(LEXICON, tmp_path / "lm.arpa", PHONES, sil=None, oov="drop")
        em = np.full((3, len(PHONES)), -10.0, dtype=np.float32)
        for t, p in enumerate(["r", "eh", "d"]):
            em[t, PHONES[p]] = 0.0
        assert wfst.decode(g, em).words == [first]


def test_graph_cache_is_reused(arpa, tmp_path):
    lex = tmp_path / "lexicon.txt"
    lex.write_text("".join(f"{w} {' '.join(p)}\n" for w, p in LEXICON.items()))
    cache = tmp_path / "graphs"
    g1 = wfst.cached_word_graph(cache, lex, arpa, PHONES, topology="loop", stay_prob=0.6, oov="drop")
    assert not g1.info["cached"]
    files = sorted(cache.iterdir())
    assert [f.suffix for f in files] == [".fst", ".json", ".txt"]
    mtimes = [f.stat().st_mtime_ns for f in files]
    g2 = wfst.cached_word_graph(cache, lex, arpa, PHONES, topology="loop", stay_prob=0.6, oov="drop")
    assert g2.info["cached"] and g2.words == g1.words
    assert [f.stat().st_mtime_ns for f in sorted(cache.iterdir())] == mtimes
    em = np.random.default_rng(3).normal(size=(5, len(PHONES))).astype(np.float32)
    h1, h2 = wfst.decode(g1, em, beam=1000.0), wfst.decode(g2, em, beam=1000.0)
    assert h1.words == h2.words and abs(h1.score - h2.score) < 1e-4
    # other options -> another graph next to it
    g3 = wfst.cached_word_graph(cache, lex, arpa, PHONES, topology="one_to_one", oov="drop")
    assert not g3.info["cached"] and len(list(cache.glob("*.fst"))) == 2
    assert not list(cache.glob("*.tmp*"))


def test_missing_arpa_message(tmp_path, capsys):
    lex = tmp_path / "lexicon.txt"
    lex.write_text("red r eh d\n")
    with pytest.raises(FileNotFoundError, match=r"nope\.arpa is missing: .*--word-orders"):
        wfst.cached_word_graph(tmp_path / "g", lex, tmp_path / "nope.arpa", PHONES)
    from uasr.bin.decode_words import main
    lang = tmp_path / "lang"
    lang.mkdir()
    (lang / "phones.txt").write_text("".join(f"{p} {i}\n" for p, i in PHONES.items()))
    rc = main(["--exp-dir", str(tmp_path / "exp"), "--tokens-dir", str(tmp_path / "tok"),
               "--lang-dir", str(lang), "--lexicon", str(lex)])
    err = capsys.readouterr().err
    assert rc == 1 and "lm_words_" in err and "--word-orders" in err
    rc = main(["--exp-dir", str(tmp_path / "exp"), "--tokens-dir", str(tmp_path / "tok"),
               "--lang-dir", str(lang), "--word-lm", str(tmp_path / "x.arpa")])
    err = capsys.readouterr().err
    assert rc == 1 and "x.arpa is missing" in err and err.count("\n") == 1


def test_bad_emission_shape(arpa):
    g = wfst.build_word_graph(LEXICON, arpa, PHONES, oov="drop")
    with pytest.raises(ValueError, match=r"\[N, 7\]"):
        wfst.decode(g, np.zeros((4, 5), dtype=np.float32))


def test_decode_words_cli(arpa, tmp_path, capsys):
    """A table model whose units are the phones: word decoding recovers the transcripts."""
    import json

    import torch

    from uasr.bin.decode_words import main
    lang, tok, exp = tmp_path / "lang", tmp_path / "tok", tmp_path / "exp"
    for d in (lang, tok, exp):
        d.mkdir()
    (lang / "phones.txt").write_text("".join(f"{p} {i}\n" for p, i in PHONES.items()))
    (lang / "lexicon.txt").write_text("".join(f"{w} {' '.join(p)}\n" for w, p in LEXICON.items()))
    (lang / "lang.json").write_text(json.dumps({"units": "phones", "sil": "sil", "normalize": "none"}))
    (lang / "lm_words_2gram.arpa").write_text(arpa.read_text())
    C = len(PHONES)
    texts = {"dev": ["need re", "knee reed"], "test": ["reed knee need", "re"]}
    for split, sents in texts.items():
        units = []
        for s in sents:
            ph = ["sil"] + [p for w in s.lower().split() for p in LEXICON[w] + ["sil"]]
            units.append(torch.tensor([PHONES[p] for p in ph]))
        torch.save({"ids": [f"{split}-{i}" for i in range(len(sents))], "speakers": ["s"] * len(sents),
                    "units": units, "pooled": [torch.zeros(len(u), 1) for u in units],
                    "labels": [[] for _ in sents], "ref": [[] for _ in sents], "num_units": C,
                    "tokens": "unsup", "text": sents}, tok / f"{split}.pt")
    torch.save({"units": "unsup", "supervision": "unsup", "emission": "table", "num_labels": C,
                "num_units": C, "model": {"logits": 8.0 * torch.eye(C)}, "topology": "one_to_one",
                "stay_prob": 0.5}, exp / "epoch-1.pt")
    argv = ["--exp-dir", str(exp), "--tokens-dir", str(tok), "--lang-dir", str(lang), "--oov", "drop",
            "--lm-scales", "0.5,1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "dev\tWER 0.00%" in out and "test\tWER 0.00%" in out
    res = json.loads((exp / "decode_words.json").read_text())
    assert set(res["dev_wer_by_scale"]) == {"0.5", "1.0"} and res["test"]["wer"] == 0.0
    assert (exp / "errs-words-test.txt").read_text().startswith("%WER 0.00 [ 0 / 4,")
    assert "hyp=knee reed" in (exp / "recogs-words-dev.txt").read_text()
    assert not res["graph"]["cached"]
    assert main(argv) == 0
    assert json.loads((exp / "decode_words.json").read_text())["graph"]["cached"]
