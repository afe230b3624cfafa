"""Error messages: every spec under tests/invalid/ against its golden stderr, and input limits.

Each `tests/invalid/NAME.yaml` has `NAME.err`, the exact stderr of

    netspec validate tests/invalid/NAME.yaml [ARGS]

run from the repository root, where ARGS come from a `# args: ...` line at the top of the spec.
Regenerate the goldens after changing a message, then review the diff by eye:

    NETSPEC_REGEN=1 .venv/bin/pytest tests/test_errors.py
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from workcount import calls

import netspec
from netspec import SpecError, yamlload
from netspec.lower import MAX_BLOCK_DEPTH, MAX_NODES

INVALID = ROOT / "tests" / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))
REGEN = os.environ.get("NETSPEC_REGEN") == "1"


def args_of(spec: Path) -> list[str]:
    m = re.search(r"^# args:(.*)$", spec.read_text("utf-8", "replace"), re.M)
    return shlex.split(m.group(1)) if m else []


def validate(spec: Path) -> tuple[int, str, str]:
    rel = spec.relative_to(ROOT).as_posix()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return run_cli(["validate", rel, *args_of(spec)])
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("spec", CASES, ids=[p.stem for p in CASES])
def test_invalid_spec_matches_golden(spec: Path):
    rc, out, err = validate(spec)
    golden = spec.with_suffix(".err")
    if REGEN:
        golden.write_text(err, "utf-8")
    assert rc == 2, err
    assert out == ""
    assert "Traceback" not in err and "internal error" not in err
    assert golden.exists(), f"no golden {golden.name}: run with NETSPEC_REGEN=1"
    assert err == golden.read_text("utf-8")


@pytest.mark.parametrize("spec", CASES, ids=[p.stem for p in CASES])
def test_golden_is_located(spec: Path):
    """file:line:col first, then (where the node has one) the path, and one error only."""
    text = spec.with_suffix(".err").read_text("utf-8")
    first = text.splitlines()[0]
    rel = re.escape(spec.relative_to(ROOT).as_posix())
    assert re.match(rf"{rel}:\d+:\d+: error: ", first), first
    assert text.count(": error: ") == 1


def test_enough_cases_and_no_orphan_goldens():
    assert len(CASES) >= 45
    orphans = {p.stem for p in INVALID.glob("*.err")} - {p.stem for p in CASES}
    assert not orphans


def test_real_command_line_prints_the_goldens():
    """The installed entry point, in a subprocess, prints exactly the goldens in order."""
    picks = [INVALID / f"{n}.yaml" for n in ("unknown_op", "tab", "python_tag", "not_utf8")]
    proc = subprocess.run(
        [sys.executable, "-m", "netspec", "validate", *[p.relative_to(ROOT) for p in picks]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr == "".join(p.with_suffix(".err").read_text("utf-8") for p in picks)


# -- input limits (issue 5) ------------------------------------------------------------------


def test_file_size_limit(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * (yamlload.MAX_FILE_BYTES // 10 + 1))
    rc, _, err = run_cli(["validate", big])
    assert rc == 2 and "Traceback" not in err
    assert "specs are limited to 4,194,304" in err
    with pytest.raises(SpecError, match="characters long; specs are limited"):
        netspec.loads("#" * (yamlload.MAX_FILE_BYTES + 1))


def test_nesting_depth_limit():
    deep = "netspec: " + "[" * (yamlload.MAX_DEPTH + 5) + "]" * (yamlload.MAX_DEPTH + 5)
    with pytest.raises(SpecError, match=f"nested deeper than {yamlload.MAX_DEPTH} levels"):
        netspec.loads(deep)
    # libyaml's own limit (1000 levels) is reported as a syntax error, without recursion
    with pytest.raises(SpecError, match="YAML syntax error"):
        netspec.loads("[" * 100_000)


def test_value_count_limit_without_aliases(monkeypatch):
    monkeypatch.setattr(yamlload, "MAX_NODES", 1000)
    many = "x: [" + ", ".join(["1"] * 1000) + "]"
    with pytest.raises(SpecError, match="the spec has 1,003 values; specs are limited to 1,000"):
        netspec.loads(many)


def _alias_levels(depth: int) -> str:
    """`depth` anchors, each a list of ten aliases of the one before: 10**depth values."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, depth):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(levels)


def test_alias_bomb_is_refused_before_expanding():
    rc, _, err = validate(INVALID / "alias_bomb.yaml")
    assert rc == 2 and "alias bomb" in err
    # 10**30 values are refused like 10**10: the work grows with the text, not the expansion
    for depth in (10, 30):
        with pytest.raises(SpecError, match="alias bomb"):
            netspec.loads(_alias_levels(depth))
    shallow = calls(lambda: netspec.loads(_alias_levels(10)))
    deep = calls(lambda: netspec.loads(_alias_levels(30)))
    assert deep < 5 * shallow, (shallow, deep)


def test_layer_count_limit():
    assert MAX_NODES == 100_000
    for name in ("too_many_layers", "too_many_layers_nested"):  # validated by the goldens
        assert "more than 100,000 layers" in (INVALID / f"{name}.err").read_text()


def test_max_params_limit_and_override():
    spec = INVALID / "too_many_params.yaml"
    rc, _, err = validate(spec)
    assert rc == 2 and "40.0 GB of float32" in err and "--max-params" in err
    rc, _, err = run_cli(["validate", spec, "--max-params", "20000000000"])
    assert rc == 0, err
    mlp = ROOT / "specs" / "mlp.yaml"
    rc, _, err = run_cli(["validate", mlp, "--max-params", "40"])
    assert rc == 2 and "41 numbers" in err and "the limit of 40" in err
    with pytest.raises(SpecError, match="limit of 40 "):
        netspec.load(mlp, max_params=40)


def test_block_nesting_limit():
    n = MAX_BLOCK_DEPTH + 3
    blocks = "".join(f"  b{i}:\n    layers: [{{block: b{i + 1}}}]\n" for i in range(n))
    blocks += f"  b{n}:\n    layers: [relu]\n"
    head = "netspec: 1\nname: m\ninputs: {x: {shape: [2]}}\n"
    text = f"{head}blocks:\n{blocks}layers: [{{block: b0}}]\n"
    with pytest.raises(SpecError, match=f"blocks nested more than {MAX_BLOCK_DEPTH} levels"):
        netspec.loads(text)


def _uses(n: int) -> str:
    return (
        "netspec: 1\nname: m\ninputs: {x: {shape: [2]}}\nblocks: {b: {layers: [relu]}}\n"
        f"layers: [{{block: b, repeat: {n}}}]\n"
    )


def _nested(k: int) -> str:
    """k uses of a block of k layers: k * k layers."""
    return (
        "netspec: 1\nname: m\ninputs: {x: {shape: [8]}}\nblocks:\n  wide:\n    layers:\n"
        f"      - {{op: relu, repeat: {k}}}\nlayers:\n  - {{block: wide, repeat: {k}}}\n"
    )


def test_many_block_uses_lower_in_linear_time():
    """Twice the uses, about twice the work (it was quadratic: four times)."""
    assert len(netspec.loads(_uses(20000)).uses) == 20000
    work = [calls(lambda n=n: netspec.loads(_uses(n))) for n in (5000, 10000)]
    assert work[1] < 2.3 * work[0], work


def test_nested_block_layers_lower_in_linear_time():
    """Four times the layers (twice the uses of a block twice as long), about four times the
    work."""
    work = [calls(lambda k=k: netspec.loads(_nested(k))) for k in (100, 200)]
    assert work[1] < 4.6 * work[0], work
