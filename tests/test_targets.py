"""The target contract (`netspec.targets.base.Target`) and the registry every caller reads: the
CLI's `--target` choices, `build --target all`, the library API and `owner`."""

from __future__ import annotations

import inspect
import sys
import types

import pytest
from conftest import ROOT, run_cli, spec

import netspec
from netspec import targets
from netspec.errors import SpecError
from netspec.ops import OPS
from netspec.targets.base import Artifact, Target, artifact, write_sources


def target_or_skip(name: str):
    try:
        return targets.get(name)
    except ImportError as e:  # the target's own dependency (onnx) is not installed
        pytest.skip(f"the {name} target needs {e.name}")


@pytest.mark.parametrize("name", targets.names())
def test_every_registered_target_keeps_the_contract(name):
    t = target_or_skip(name)
    assert isinstance(t, Target)
    assert t.NAME == name
    kinds = [a.kind for a in t.ARTIFACTS]
    assert kinds[0] == "model" and len(set(kinds)) == len(kinds)
    assert all(isinstance(a, Artifact) for a in t.ARTIFACTS)
    assert set(t.EMITTERS) == set(OPS)
    for method in ("generate", "compile", "export_weights", "write", "owns"):
        want = [
            p.name
            for p in inspect.signature(getattr(Target, method)).parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"
        ]
        sig = inspect.signature(getattr(t, method))
        sig.bind(*want)  # callable the way the registry's callers call it: positionally


@pytest.mark.parametrize("name", targets.names())
def test_write_produces_its_artifacts(name, tmp_path):
    t = target_or_skip(name)
    g = netspec.load(ROOT / "specs" / "mlp.yaml")
    files = t.write(g, netspec.init_weights(g), tmp_path)
    assert files and files[0] == artifact(t.ARTIFACTS, "model").path(g, tmp_path)
    named = {a.file(g) for a in t.ARTIFACTS}
    assert {p.name for p in files} <= named
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)
    if artifact(t.ARTIFACTS, "model").source is not None:
        assert files[0].read_text(encoding="utf-8") == t.generate(g)


def test_cli_and_build_read_the_registry(run_cli):
    from netspec.cli import make_parser

    build = next(a for a in make_parser()._actions if a.dest == "command").choices["build"]
    target = next(a for a in build._actions if a.dest == "target")
    assert list(target.choices) == [*targets.names(), "all"]
    rc, _, err = run_cli(["build", ROOT / "specs" / "mlp.yaml", "--target", "tensorflow"])
    assert rc == 2 and "invalid choice: 'tensorflow'" in err


def test_unknown_target_in_the_api_says_which_exist():
    g = spec("x: {shape: [2]}", "- {op: dense, units: 1}")
    with pytest.raises(SpecError) as e:
        netspec.generate(g, target="jax")
    assert "unknown target 'jax'" in str(e.value)
    assert e.value.hint == "expected one of: " + ", ".join(sorted(targets.names()))
    with pytest.raises(SpecError) as e:
        netspec.compile(g, target="pytorch")
    assert e.value.hint == "did you mean 'torch'?"


def test_owner_refuses_what_no_target_owns():
    with pytest.raises(TypeError, match="cannot take weights from a int"):
        targets.owner(3)

    class Fake:  # a class from a framework-named module that is no model of that framework
        pass

    Fake.__module__ = "onnx.fake"
    with pytest.raises(TypeError):
        targets.owner(Fake())


def test_owner_finds_the_onnx_target():
    onnx = pytest.importorskip("onnx")
    assert targets.owner(onnx.ModelProto()) is targets.get("onnx")


# -- a new target, and a new artifact, without touching the CLI or build -----------------------
def _toy_model(graph) -> str:
    return f"# model of {graph.name}\n"


def _toy_train(graph) -> str:
    return f"# training of {graph.name}\n"


@pytest.fixture
def toy(monkeypatch):
    """A target registered the way a real one is: a module plus one registry entry. It writes a
    model file and a training script: the training artifact is one more `Artifact`."""
    mod = types.ModuleType("netspec_toy_target")
    mod.NAME = "toy"
    mod.EMITTERS = dict.fromkeys(OPS)
    mod.ARTIFACTS = (
        Artifact("model", "{name}_toy.py", _toy_model),
        Artifact("train", "{name}_train_toy.py", _toy_train),
    )
    mod.generate = _toy_model
    mod.compile = lambda graph, weights, **options: (graph.name, dict(weights))
    mod.export_weights = lambda model, graph: model[1]
    mod.write = lambda graph, weights, outdir, **options: write_sources(
        mod.ARTIFACTS, graph, outdir
    )
    mod.owns = lambda obj: isinstance(obj, tuple) and len(obj) == 2
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(targets.REGISTRY, "toy", targets.Entry("toy", mod.__name__, ("builtins",)))
    return mod


def test_a_new_target_with_a_training_artifact_builds_through_the_cli(toy, tmp_path):
    assert isinstance(toy, Target)
    out = tmp_path / "o"
    rc, stdout, err = run_cli(["build", ROOT / "specs" / "mlp.yaml", "-t", "toy", "-o", out])
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "mlp.safetensors",
        "mlp_toy.py",
        "mlp_train_toy.py",
    ]
    assert (out / "mlp_train_toy.py").read_text() == "# training of mlp\n"
    assert sorted(stdout.split()) == sorted(str(p) for p in out.iterdir())
    g = netspec.load(ROOT / "specs" / "mlp.yaml")
    assert netspec.generate(g, target="toy") == "# model of mlp\n"
    model = netspec.compile(g, target="toy")
    assert targets.owner(model) is toy
    w = netspec.export_weights(model, g)
    assert list(w) == list(g.weight_shapes())
