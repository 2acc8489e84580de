"""prepare-tokens option errors: one line naming the option, nothing written."""

import pytest

from uasr.bin import prepare_tokens


@pytest.mark.parametrize("bad", ["shift:2", "delete", "delete:lots"])
def test_bad_oracle_errors_fail_before_any_work(bad, tmp_path, capsys):
    out = tmp_path / "tokens"
    rc = prepare_tokens.main(["--manifest-dir", str(tmp_path / "manifests"), "--feat-dir",
                              str(tmp_path / "feats"), "--out-dir", str(out), "--oracle-errors", bad])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--oracle-errors" in err and "delete:0.15" in err
    assert not out.exists() and not (tmp_path / "feats").exists()
