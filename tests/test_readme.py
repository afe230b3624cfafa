"""The README's examples are what netspec really prints."""

from __future__ import annotations

import re

from conftest import ROOT, run_cli

BAD_SPEC = """netspec: 1
name: bad
inputs:
  x: {shape: [2]}
layers:
  - {op: dense, units: 8}
  - {op: dense, unit: 4}
"""


def readme_block(after: str) -> str:
    """The first fenced block after the line that starts with `after`."""
    text = (ROOT / "README.md").read_text()
    m = re.search(re.escape(after) + r".*?\n```\w*\n(.*?)```", text, re.S)
    assert m, f"no block after {after!r} in README.md"
    return m[1]


def test_error_example_is_the_real_message(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "bad.yaml").write_text(BAD_SPEC)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(["validate", "specs/bad.yaml"])
    assert rc == 2 and out == ""
    assert err == readme_block("Example of an error")


def test_training_example_is_the_specs():
    """The README's `training:` block says what specs/exam_score.yaml says (a subset of keys)."""
    import yaml

    shown = yaml.safe_load(readme_block("Add a `training:` section"))["training"]
    spec = yaml.safe_load((ROOT / "specs" / "exam_score.yaml").read_text())["training"]
    assert shown == {k: spec[k] for k in shown}
