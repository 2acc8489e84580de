"""``uasr`` finds every command without importing the modules, and runs the chosen one."""

import importlib

from uasr.bin import cli


def test_every_command_module_declares_and_imports():
    cmds = cli._commands()
    assert {"train-lm", "simulate", "train", "decode"} <= set(cmds)
    for name, (module, help_) in cmds.items():
        mod = importlib.import_module(module)
        assert mod.COMMAND == name and mod.HELP == help_ and callable(mod.main)


def test_unknown_command(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err
