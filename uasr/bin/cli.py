"""``uasr <command> ...``: dispatches to the modules of :mod:`uasr.bin`.

A module joins the CLI by defining ``COMMAND = "name"``, ``HELP = "one line"`` (plain
string literals at the top level: the CLI reads them without importing) and
``main(argv: list[str] | None = None) -> int | None``. ``python -m uasr.bin.<module>`` works too.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import uasr.bin


_DECL = re.compile(r'^(COMMAND|HELP)\s*=\s*"([^"]*)"', re.M)


def _commands() -> dict[str, tuple[str, str]]:
    """Command name -> (module, help), read from the sources: importing every module would
    cost seconds per call (torch, lhotse), and only the chosen one is needed."""
    found = {}
    for path in sorted(Path(uasr.bin.__file__).parent.glob("*.py")):
        if path.stem in ("cli", "__init__"):
            continue
        decl = dict(_DECL.findall(path.read_text(encoding="utf-8")))
        if "COMMAND" in decl:
            found[decl["COMMAND"]] = (f"uasr.bin.{path.stem}", decl.get("HELP", ""))
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmds = _commands()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: uasr <command> [options]\n\ncommands:")
        for name, (_, help_) in sorted(cmds.items()):
            print(f"  {name:<20} {help_}")
        return 0
    if argv[0] not in cmds:
        print(f"uasr: unknown command {argv[0]!r}; known: {', '.join(sorted(cmds))}", file=sys.stderr)
        return 2
    mod = importlib.import_module(cmds[argv[0]][0])
    return int(mod.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
