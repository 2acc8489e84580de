from uasr.bin.report import target_checks


def _row(system, supervision, ll, per, tokens="unsupervised-segments", topology="loop"):
    return {"system": system, "tokens": tokens, "rung": 3, "emission": "table",
            "supervision": supervision, "topology": topology, "per_test": per,
            "train_ll_per_token": ll, "supervised_ll_per_token": None}


def _verdict(rand_ll, rand_per, sup_ll, sup_per):
    rows = [_row("rand", "unsup", rand_ll, rand_per),
            _row("from-sup", "unsup-init-from-sup", sup_ll, sup_per),
            _row("other-topology", "unsup", -9.0, 99.0, topology="one_to_one")]
    lines = [x for x in target_checks(rows) if x.startswith("- from-sup vs")]
    assert len(lines) == 1 and "rand" in lines[0]  # compared with its own topology only
    return lines[0]


def test_from_sup_comparison_names_criterion_and_search_failures():
    assert "criterion itself prefers the worse" in _verdict(-4.3, 85.0, -4.4, 75.0)
    assert "search failure" in _verdict(-4.5, 85.0, -4.4, 75.0)
    assert "agree" in _verdict(-4.3, 70.0, -4.4, 75.0)
