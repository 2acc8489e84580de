"""run.sh / prepare.sh: option parsing and clear errors (no stage is executed here)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "run.sh"), *args], capture_output=True, text=True,
                          timeout=60)


def _bash(script: str) -> subprocess.CompletedProcess:
    """A snippet run in the repository root (for the helpers in local/)."""
    return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_unknown_recipe_lists_known_ones():
    res = _run("--recipe", "nope")
    assert res.returncode == 1
    assert "unknown recipe 'nope'" in res.stderr and "synth" in res.stderr


def test_missing_stage_is_named():
    res = _run("--recipe", "simulation", "--stage", "0", "--stop-stage", "99")
    assert res.returncode == 1 and "has no stage" in res.stderr
    res = _run("--recipe", "simulation", "--stage", "7")
    assert res.returncode == 1 and "is after --stop-stage" in res.stderr


def test_unknown_option_and_help():
    res = _run("--no-such-option", "1")
    assert res.returncode == 1 and "unknown option --no-such-option" in res.stderr
    res = _run("--recipe=simulation", "--help")
    assert res.returncode == 0 and "stages:" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["positional"], "unexpected argument 'positional'"),
    (["stray", "--help"], "unexpected argument 'stray'"),   # --help after it is never reached
    (["-size", "tiny"], "unexpected argument '-size'"),
    ([""], "unexpected argument ''"),
    (["--PATH", "x"], "unknown option --PATH"),             # shell variables are not options
    (["--help-message", "x"], "unknown option --help-message"),
    (["--force", "yes"], "--force takes true or false, not 'yes'"),
    (["--size", "huge"], "--size takes one of: tiny default large; not 'huge'"),
    (["--recipe", "custom", "--units", "phonez"], "--units takes one of: phones graphemes"),
    (["--recipe", "custom", "--word-decode", "1"], "--word-decode takes true or false"),
    (["--recipe", "librispeech", "--download", "yes"], "--download takes true or false"),
])
def test_bad_command_lines_stop_before_any_stage(args, message):
    res = _run(*args)
    assert res.returncode == 1 and message in res.stderr, res.stderr
    assert "stage 0" not in res.stderr


def test_help_lists_the_recipe_options():
    res = _run("--recipe", "custom", "--help")
    assert res.returncode == 0
    assert "--lm-text ''" in res.stderr and "--units 'phones'" in res.stderr
    assert "--prepare-stop-stage" not in res.stderr and "--invocation-dir" not in res.stderr


def test_relative_paths_the_user_typed_are_taken_from_where_run_sh_started(tmp_path):
    script = (f'source local/log.sh; source local/stage_lib.sh; invocation_dir={tmp_path}; '
              'given_options=(lm_text work_dir); lm_text=lm.txt; work_dir=/abs/exp; '
              'train=data/train; abs_path lm_text work_dir train; echo "$lm_text $work_dir $train"')
    res = _bash(script)
    assert res.returncode == 0, res.stderr
    # given and relative: taken from the user's folder; absolute: kept; not given: the default
    assert res.stdout.split() == [f"{tmp_path}/lm.txt", "/abs/exp", "data/train"]


def test_prepare_needs_data_stages():
    res = subprocess.run([str(ROOT / "prepare.sh"), "--recipe", "simulation"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "prepare_stop_stage" in res.stderr


def test_system_options_override_the_recipe_defaults():
    """A system's own options replace the shared ones (with their values), so the logged
    command names each option once."""
    script = ('source local/asr_stages.sh; '
              '_override_opts "--lm-order 3 --num-epochs 20 --seed 1 --flag" "--num-epochs 3 --flag"; '
              '_override_opts "--lm-order 3" ""')
    res = _bash(script)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["--lm-order 3 --seed 1 --num-epochs 3 --flag",
                                          "--lm-order 3 "]


def test_stage_time_adds_up_over_reruns_and_force_starts_afresh(tmp_path):
    """A rerun that trains one more system adds its time to the stage; --force true resets it."""
    script = (f'source local/stage_lib.sh; exp={tmp_path}; '
              'echo 600 > $exp/.seconds_stage_3; _timed 3 sleep 1; cat $exp/.seconds_stage_3; '
              'force=true; _timed 3 true; cat $exp/.seconds_stage_3')
    res = _bash(script)
    assert res.returncode == 0, res.stderr
    first, second = (int(x) for x in res.stdout.split())
    assert 601 <= first <= 603 and second == 0


def test_a_rerun_with_other_settings_stops_instead_of_keeping_stale_outputs(tmp_path):
    script = (f'source local/log.sh; source local/stage_lib.sh; d={tmp_path}/tokens; force=false; '
              'same_settings $d tokens "--num-units 64"; same_settings $d tokens "--num-units 64" && echo same; '
              'force=true; same_settings $d tokens "--num-units 32" && echo forced; '
              'force=false; same_settings $d tokens "--num-units 64"; echo not reached')
    res = _bash(script)
    assert res.returncode == 1 and res.stdout.split() == ["same", "forced"], (res.stdout, res.stderr)
    assert (f"{tmp_path}/tokens holds tokens outputs made with '--num-units 32', not '--num-units 64': "
            "add --force true") in res.stderr
