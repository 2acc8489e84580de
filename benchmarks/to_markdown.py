"""Render a bench_graph.py / bench_gpu JSON file as the Markdown table used in README.md.

    python benchmarks/to_markdown.py benchmarks/results/cpu.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(result: dict) -> str:
    threads = f", {result['threads']} intra-op threads" if "threads" in result else ""
    lines = [f"Device: {result['device']}, torch {result['torch']}{threads}", "",
             "| row | B | T | V | states | arcs | ours (ms) | F.ctc_loss (ms) | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['name']} | {r['B']} | {r['T']} | {r['V']} | {r['states']} | "
                     f"{r['arcs']} | {r['ms']:.1f} | {r['ctc_ms']:.1f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(table(json.loads(Path(path).read_text())))
        print()
