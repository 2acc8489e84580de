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


def test_collect_names_diagnostic_tokens_and_bounded_loops(tmp_path):
    import json

    from uasr.bin.report import collect

    def system(name, tokens, **extra):
        d = tmp_path / name
        d.mkdir()
        (d / "train.json").write_text(json.dumps({
            "tokens": tokens, "supervision": "unsup", "emission": "table", "lm_order": 3,
            "topology": "loop", "train_seconds": 1.0, "command": "uasr train ...", **extra}))
        (d / "decode.json").write_text(json.dumps({"dev": {"per": 50.0}, "test": {"per": 40.0},
                                                   "lm_scale": 1.0}))

    system("a", "oracle_delete0.15", max_stay=1)
    system("b", "unsup")
    rows = {r["system"]: r for r in collect(tmp_path)}
    assert (rows["a"]["tokens"], rows["a"]["rung"]) == ("oracle-segments+delete0.15", 2)
    assert rows["a"]["topology"] == "loop max_stay 1"
    assert (rows["b"]["tokens"], rows["b"]["rung"], rows["b"]["topology"]) == \
        ("unsupervised-segments", 3, "loop")
