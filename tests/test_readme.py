"""The README's engine example runs as written; the docs' links resolve; results are strict JSON."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_engine_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    (tmp_path / "phones.arpa").write_text(
        "\\data\\\nngram 1=5\nngram 2=1\n\n\\1-grams:\n-0.5\t</s>\n-99\t<s>\t-0.1\n"
        "-0.4\taa\t-0.2\n-0.3\tb\t-0.2\n-0.6\tk\n\n\\2-grams:\n-0.2\taa b\n\n\\end\\\n")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[0], str(README), "exec"), scope)
    assert len(scope["hyps"]) == 8
    assert scope["theta"].grad is not None


def test_markdown_links_resolve():
    """Every relative link in the committed docs names a file in the repository."""
    docs = [README, *ROOT.glob("recipes/*/*.md"), *ROOT.glob("recipes/*/results/*/*.md")]
    broken = []
    for doc in docs:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            path = (doc.parent / target.split("#")[0]).resolve()
            if "://" in target or target.startswith("#") or not path.is_relative_to(ROOT):
                continue  # web links, anchors, and ../shared (outside the repository)
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_committed_results_are_strict_json():
    """results.json files load in strict readers (no NaN/Infinity literals)."""
    def refuse(constant: str):
        raise ValueError(constant)

    files = list(ROOT.glob("recipes/**/results.json"))
    assert files
    for f in files:
        if "exp" in f.relative_to(ROOT).parts:  # local experiment dirs, not committed results
            continue
        json.loads(f.read_text(), parse_constant=refuse)
