import re

import torch

from uasr.decode import decode, error_counts, per, write_results
from uasr.graph import loop, ngram_graph
from uasr.lm.ngram import train_ngram


def test_per_and_errs_file_agree(tmp_path):
    refs = [["a", "b", "c"], ["d", "e"]]
    hyps = [["a", "x", "c", "y"], ["e"]]
    c = error_counts(refs, hyps)
    assert (c["ins"], c["del"], c["sub"], c["ref"]) == (1, 1, 1, 5)
    assert per(refs, hyps) == 60.0
    res = write_results(tmp_path, "dev", ["u1", "u2"], refs, hyps)
    first = (tmp_path / "errs-dev.txt").read_text().splitlines()[0]
    m = re.match(r"%PER ([\d.]+) \[ (\d+) / (\d+),", first)
    assert float(m.group(1)) == res["per"] == 60.0 and m.group(2) == "3" and m.group(3) == "5"
    assert "ref=a b c" in (tmp_path / "recogs-dev.txt").read_text()


def test_viterbi_decode_follows_emissions_and_lm_scale():
    lm = train_ngram([["a", "b"], ["a", "b"], ["b", "a"]], 2)
    g = ngram_graph(lm, ["a", "b"], loop(stay_prob=0.5))
    em = torch.log(torch.tensor([[[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]]]))
    out = decode(em, torch.tensor([4]), g, lm_scale=1.0)
    assert out == [[0, 1]]


def _corpus(root, g: torch.Generator):
    """Tokens whose units are the labels with 20 % noise, and a lang dir with a bigram."""
    from uasr.lm.arpa import write_arpa
    syms = ["a", "b", "c", "d"]
    lang, tok = root / "lang", root / "tokens"
    lang.mkdir()
    tok.mkdir()
    (lang / "phones.txt").write_text("".join(f"{s} {i}\n" for i, s in enumerate(syms)))
    text = [[syms[int(i)] for i in torch.randint(4, (10,), generator=g)] for _ in range(200)]
    write_arpa(train_ngram(text, 2, vocab=syms), lang / "lm_2gram.arpa")
    for split in ("train", "dev", "test"):
        seqs = [torch.randint(4, (int(torch.randint(6, 12, (1,), generator=g)),), generator=g)
                for _ in range(40)]
        units = [torch.where(torch.rand(len(s), generator=g) < 0.2, torch.randint(4, (len(s),), generator=g), s)
                 for s in seqs]
        names = [[syms[int(c)] for c in s] for s in seqs]
        torch.save({"ids": [f"{split}{i}" for i in range(40)], "speakers": ["s"] * 40, "units": units,
                    "num_units": 4, "pooled": [torch.zeros(0)] * 40, "labels": names, "ref": names,
                    "text": [""] * 40, "tokens": "oracle"}, tok / f"{split}.pt")
    return tok, lang


def test_insertion_bonus_is_tuned_on_dev_and_only_for_loop(tmp_path, capsys):
    """A bonus per new token lengthens loop-topology hypotheses and is chosen on dev with the LM
    scale; one_to_one ignores it (its token count is fixed); a bad value is a one-line error."""
    import json

    from uasr.bin import decode as decode_cli
    from uasr.bin import train
    tok, lang = _corpus(tmp_path, torch.Generator().manual_seed(0))
    common = ["--tokens-dir", str(tok), "--lang-dir", str(lang), "--lm-order", "2", "--supervision", "sup"]
    assert train.main(common + ["--topology", "loop", "--stay-prob", "0.9", "--exp-dir", str(tmp_path / "loop")]) == 0
    assert train.main(common + ["--exp-dir", str(tmp_path / "o2o")]) == 0

    def run(exp: str, bonuses: str) -> dict:
        assert decode_cli.main(["--exp-dir", str(tmp_path / exp), "--tokens-dir", str(tok), "--lang-dir",
                                str(lang), "--lm-scales", "1", "--insertion-bonuses", bonuses]) == 0
        return json.loads((tmp_path / exp / "decode.json").read_text())

    none, big, tuned = run("loop", "0"), run("loop", "6"), run("loop", "0,2,6")
    assert none["test"]["del"] > big["test"]["del"] and big["test"]["ins"] > none["test"]["ins"]
    assert tuned["insertion_bonus"] in (0, 2, 6) and len(tuned["dev_per_by_bonus_and_scale"]) == 3
    assert abs(tuned["dev"]["per"] - min(tuned["dev_per_by_bonus_and_scale"].values())) < 0.01
    assert tuned["dev"]["per"] <= min(none["dev"]["per"], big["dev"]["per"])
    o0, o6 = run("o2o", "0"), run("o2o", "6")
    assert o6["insertion_bonus"] == 0 and o6["test"] == o0["test"]
    capsys.readouterr()
    assert decode_cli.main(["--exp-dir", str(tmp_path / "loop"), "--tokens-dir", str(tok), "--lang-dir",
                            str(lang), "--insertion-bonuses", "1,x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--insertion-bonuses" in err[0]
