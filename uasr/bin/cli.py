"""``uasr <command> ...``: dispatches to the modules of :mod:`uasr.bin`.

A module joins the CLI by defining ``COMMAND = "name"``, ``HELP = "one line"`` and
``main(argv: list[str] | None = None) -> int | None``. ``python -m uasr.bin.<module>`` works too.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import uasr.bin


def _commands() -> dict[str, tuple[str, str]]:
    found = {}
    for info in pkgutil.iter_modules(uasr.bin.__path__):
        if info.name in ("cli", "__init__"):
            continue
        mod = importlib.import_module(f"uasr.bin.{info.name}")
        name = getattr(mod, "COMMAND", None)
        if name:
            found[name] = (f"uasr.bin.{info.name}", getattr(mod, "HELP", ""))
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmds = _commands()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: uasr <command> [options]\n\ncommands:")
        for name, (_, help_) in sorted(cmds.items()):
            print(f"  {name:<14} {help_}")
        return 0
    if argv[0] not in cmds:
        print(f"uasr: unknown command {argv[0]!r}; known: {', '.join(sorted(cmds))}", file=sys.stderr)
        return 2
    mod = importlib.import_module(cmds[argv[0]][0])
    return int(mod.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
