"""Differential tests: random valid specs on every target, outputs compared.

`tools.randspec` draws specs from seeds (image, 1-D signal, vector, sequence and token-id
families; chains, skips, gates, several inputs and outputs, blocks with params and repeat). Each
spec runs on every target that exists, with `random_weights` (batch_norm statistics included)
and `random_inputs` (batch 1, 2 or 3 by seed; dynamic axes 5), and:
- each target's outputs have the shapes the IR's shape rules give (batch axis first; Keras'
  channels-last outputs moved back), and
- every pair of targets agrees within the design page's bound (`assert_close`).
Keras is slow to build, so it runs on every `KERAS_EVERY`-th spec; TensorFlow is imported once.

CI mode runs `COUNT` specs; `NETSPEC_DIFF_LONG=1` runs `LONG_COUNT` (or the number it is set to,
if larger than 1). `scripts/differential.py --count 5000 [--shrink]` is the long mode outside
pytest, and reduces failures to small specs.

Every disagreement found is kept, reduced, under `tests/differential/NAME.yaml` (the comment on
top says what is wrong) and `test_reproducer` runs it on every target.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.ir import Graph
from netspec.ops import OPS
from tools import randspec
from tools.testing import random_inputs, random_weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
REPRODUCERS = sorted((HERE / "differential").glob("*.yaml"))
_long = os.environ.get("NETSPEC_DIFF_LONG", "")
LONG_COUNT = 3000
if _long in ("", "0"):
    COUNT = 600
elif _long.isdigit() and int(_long) > 1:
    COUNT = int(_long)
else:
    COUNT = LONG_COUNT
CHUNK = 50
KERAS_EVERY = 3
TARGETS = randspec.available_targets()  # torch, onnx, keras: the first is the reference


@dataclass
class Known:
    """A target bug not fixed yet, with its reproducer (tests/differential/<key>.yaml): which
    target, and how to recognize it in a random spec: a regex on the problem and a predicate on
    the graph and batch size (both must hold; neither given: only the reproducer shows it)."""

    target: str
    reason: str
    pattern: str | None = None
    graph: Callable[[Graph, int], bool] | None = None


# Known target bugs: a random spec that fails only in these ways is an expected failure (the
# reproducer's own test is a strict xfail). Remove an entry when its bug is fixed.
KNOWN: dict[str, Known] = {}


def batch_of(seed: int) -> int:
    return (2, 3, 1)[seed % 3]


def shape_matches(got: tuple[int, ...], graph: Graph, value: str, batch: int) -> bool:
    """The IR's shape with the batch axis in front: a named dynamic axis (an input's) has size 5
    here, an unnamed one (None: computed from dynamic sizes) any size."""
    want = (batch, *(5 if isinstance(d, str) else d for d in graph.value(value).shape))
    return len(got) == len(want) and all(
        w is None or g == w for g, w in zip(got, want, strict=True)
    )


def check_spec(graph: Graph, seed: int, targets: list[str]) -> tuple[list[str], dict]:
    """Run `graph` on `targets`; (problems, outputs by target)."""
    batch = batch_of(seed)
    w = random_weights(graph, seed=seed)
    x = random_inputs(graph, batch=batch, seed=seed)
    problems: list[str] = []
    results: dict[str, list[np.ndarray]] = {}
    for t in targets:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[t] = randspec.run_target(t, graph, w, x)
        except Exception as e:  # noqa: BLE001 - any failure of a valid spec is a finding
            problems.append(f"{t}: {type(e).__name__}: {str(e)[:500]}")
            continue
        outs = results[t]
        if len(outs) != len(graph.outputs):
            problems.append(f"{t}: {len(outs)} outputs, the spec has {len(graph.outputs)}")
            del results[t]
            continue
        for (oname, vname), y in zip(graph.outputs.items(), outs, strict=True):
            if not shape_matches(tuple(y.shape), graph, vname, batch):
                problems.append(
                    f"{t}: output {oname!r} has shape {tuple(y.shape)}, the IR says "
                    f"[{batch}, {', '.join(map(str, graph.value(vname).shape))}]"
                )
    if "onnx" in results:
        import onnx

        try:
            onnx.checker.check_model(netspec.compile(graph, "onnx", w), full_check=True)
        except onnx.checker.ValidationError as e:
            problems.append(f"onnx: the checker refuses the model: {str(e)[:300]}")
    if len(results) > 1:
        noise = None
        if "torch" in results:  # how much float32 rounding alone moves each output
            try:
                noise = randspec.float64_noise(graph, w, x, results["torch"])
            except Exception:  # noqa: BLE001 - then the plain bound
                noise = None
        problems += randspec.disagreements(graph, results, noise=noise)
    return problems, results


def known_issue(graph: Graph, seed: int, problem: str) -> str | None:
    """The reproducer of a known bug that explains `problem`, if any."""
    for name, k in KNOWN.items():
        if not problem.startswith(k.target):
            continue
        if k.pattern is None and k.graph is None:
            continue  # only its reproducer shows it
        if k.pattern is not None and not re.search(k.pattern, problem):
            continue
        if k.graph is not None and not k.graph(graph, batch_of(seed)):
            continue
        return name
    return None


def _keras_add_bias(graph: Graph, batch: int) -> bool:
    """An add whose second or later input has size 1 on every per-example axis, where the batch
    size is also the size of an axis of the result (keras.ops.add's bias_add shortcut)."""
    for n in graph.nodes:
        if n.op != "add" or batch < 2:
            continue
        dims = {d for d in n.shape if isinstance(d, int)}
        for v in n.inputs[1:]:
            if all(d == 1 for d in graph.value(v).shape) and batch in dims:
                return True
    return False


# -- the generator ----------------------------------------------------------------------------
def test_generator_is_deterministic_and_round_trips():
    """A seed gives the same spec text every time; the YAML text reads back to the same graph
    (node names, ops, shapes, weights, outputs) as the data it was written from."""
    for seed in range(40):
        a = randspec.generate(seed)
        b = randspec.generate(seed)
        assert a.text == b.text
        g = netspec.loads(a.text, file=f"<seed {seed}>")
        assert [(n.name, n.op, n.shape, n.inputs) for n in g.nodes] == [
            (n.name, n.op, n.shape, n.inputs) for n in a.graph.nodes
        ]
        assert g.outputs == a.graph.outputs
        assert g.weight_shapes() == a.graph.weight_shapes()


def test_generator_covers_the_op_table():
    """The first few hundred seeds use every op of the table, every family, blocks (nested,
    repeated, with several inputs and outputs), several inputs and outputs, dynamic axes and
    params; and nearly every candidate is valid by construction."""
    ops: Counter[str] = Counter()
    feats: Counter[str] = Counter()
    attempts = []
    for seed in range(300):
        gen = randspec.generate(seed)
        g = gen.graph
        attempts.append(gen.attempts)
        ops.update(n.op for n in g.nodes)
        feats[gen.family] += 1
        feats["blocks"] += bool(g.uses)
        feats["nested"] += any(u.scope for u in g.uses.values())
        feats["block_multi_out"] += any(len(u.outputs) > 1 for u in g.uses.values())
        feats["block_multi_in"] += any(len(u.inputs) > 1 for u in g.uses.values())
        feats["repeat"] += "repeat:" in gen.text
        feats["params"] += bool(g.params)
        feats["multi_in"] += len(g.inputs) > 1
        feats["multi_out"] += len(g.outputs) > 1
        feats["dynamic"] += any(not isinstance(d, int) for v in g.inputs.values() for d in v.shape)
        feats["int64"] += any(v.dtype == "int64" for v in g.inputs.values())
        for n in g.nodes:
            feats[f"act:{(n.attrs.get('activation') or {}).get('op')}"] += 1
            if (
                n.op in ("add", "multiply", "subtract")
                and len({g.value(v).shape for v in n.inputs}) > 1
            ):
                feats["broadcast"] += 1
    missing = sorted(set(OPS) - set(ops))
    assert not missing, f"ops never generated: {missing}"
    for f in [
        *randspec.FAMILIES,
        "blocks",
        "nested",
        "block_multi_out",
        "block_multi_in",
        "repeat",
        "params",
        "multi_in",
        "multi_out",
        "dynamic",
        "int64",
        "broadcast",
        "act:softmax",
        "act:leaky_relu",
    ]:
        assert feats[f] >= 5, f"{f}: only {feats[f]} of 300 specs"
    assert sum(a == 1 for a in attempts) >= 0.95 * len(attempts), Counter(attempts)


# -- targets against each other ---------------------------------------------------------------
def _chunks() -> list[tuple[int, int]]:
    return [(lo, min(lo + CHUNK, COUNT)) for lo in range(0, COUNT, CHUNK)]


@pytest.mark.skipif(not TARGETS, reason="no target package yet")
@pytest.mark.parametrize("lo,hi", _chunks(), ids=[f"seeds{lo}-{hi - 1}" for lo, hi in _chunks()])
def test_random_specs(lo, hi):
    failures: list[str] = []
    known: set[str] = set()
    ran = Counter()
    for seed in range(lo, hi):
        gen = randspec.generate(seed)
        here = [t for t in TARGETS if t != "keras" or seed % KERAS_EVERY == 0]
        ran.update(here)
        problems, _ = check_spec(gen.graph, seed, here)
        for p in problems:
            k = known_issue(gen.graph, seed, p)
            if k:
                known.add(k)
            else:
                failures.append(f"seed {seed} ({gen.family}): {p}")
    assert not failures, (
        f"{len(failures)} disagreements (targets run: {dict(ran)}); reduce one with "
        f"`scripts/differential.py --seeds N --shrink`:\n" + "\n".join(failures[:20])
    )
    if known:
        pytest.xfail("only known target bugs: " + ", ".join(sorted(known)))


# -- reproducers ------------------------------------------------------------------------------
def _reproducer_params():
    out = []
    for p in REPRODUCERS:
        marks = []
        if p.stem in KNOWN:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[p.stem].reason))
        out.append(pytest.param(p, id=p.stem, marks=marks))
    return out


def reproducer_problems(path: Path) -> list[str]:
    graph = netspec.load(path)
    problems = []
    for seed in (0, 1, 2):  # batches 2, 3, 1
        got, _ = check_spec(graph, seed, TARGETS)
        problems += [f"batch {batch_of(seed)}: {p}" for p in got]
    return problems


@pytest.mark.skipif(not TARGETS, reason="no target package yet")
@pytest.mark.parametrize("path", _reproducer_params())
def test_reproducer(path):
    """A spec that once made two targets disagree (or crash): now every target runs it, with
    batch 1, 2 and 3, and they agree. A `crash_*` reproducer runs in a subprocess, so that a
    crash fails this test instead of ending the test run."""
    if not path.stem.startswith("crash_"):
        problems = reproducer_problems(path)
        assert not problems, "\n".join(problems)
        return
    code = (
        "import sys, warnings; warnings.simplefilter('ignore'); "
        f"sys.path.insert(0, {str(HERE)!r}); import test_differential as T; "
        "from pathlib import Path; p = T.reproducer_problems(Path(sys.argv[1])); "
        "print('\\n'.join(p)); sys.exit(1 if p else 0)"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, (
        f"exit status {r.returncode}{' (killed by a signal)' if r.returncode < 0 else ''}:\n"
        f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    )


def test_reproducers_are_minimal_and_documented():
    """Each reproducer is a valid spec of a few layers whose first lines say what went wrong."""
    for p in REPRODUCERS:
        text = p.read_text(encoding="utf-8")
        assert text.startswith("#"), f"{p.name}: say on top what is wrong and where"
        g = netspec.load(p)
        assert len(g.nodes) <= 12, f"{p.name}: reduce it (scripts/differential.py --shrink)"


def test_upstream_conv_crash_still_needs_the_torch_targets_copy():
    """The canary for `netspec/targets/torch/emitters.py: conv_input`: PyTorch's CPU
    convolution still crashes on a permuted view with a length-1 spatial axis (upstream
    pytorch/pytorch#195394), and the copy the PyTorch target makes avoids it. When the first
    half fails, PyTorch has fixed the bug: drop the copy (and this test)."""
    pytest.importorskip("torch")
    conv = (
        "import torch; c = torch.nn.Conv1d(3, 3, 1, stride=2, dilation=2, padding=1).eval(); "
        "x = torch.randn(2, 1, 3).permute(0, 2, 1){copy}; "
        "torch.inference_mode().__enter__(); print(tuple(c(x).shape))"
    )
    raw = subprocess.run([sys.executable, "-c", conv.format(copy="")], capture_output=True)
    assert raw.returncode != 0, "PyTorch no longer crashes here: remove the copy in conv_input"
    copy = ".clone(memory_format=torch.contiguous_format)"
    fixed = subprocess.run(
        [sys.executable, "-c", conv.format(copy=copy)], capture_output=True, text=True
    )
    assert fixed.returncode == 0 and fixed.stdout.strip() == "(2, 3, 2)", fixed.stderr
    spec = HERE / "differential" / "crash_torch_conv1d_strided_length1.yaml"
    source = netspec.generate(netspec.load(spec), "torch")
    assert copy in source
    for name in ("resnet18", "char_lstm", "dcgan_generator"):  # no copy where none is needed
        assert ".clone(" not in netspec.generate(
            netspec.load(HERE.parent / "specs" / f"{name}.yaml"), "torch"
        )
