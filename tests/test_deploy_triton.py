"""`netspec deploy --triton DIR`: the repository's config.pbtxt parses with Triton's own
model-config protobuf (from `tritonclient`) and says what the model is; model.onnx is the model
`netspec build` writes; errors are located, exit 2 and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

import netspec
from netspec.deploy.source import from_graph, from_onnx
from netspec.deploy.triton import DATA_TYPES, write_repository
from tests.conftest import SPECS, run_cli

onnx = pytest.importorskip("onnx")
mc = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="needs tritonclient")
from google.protobuf import text_format  # noqa: E402 - after the skip

ROOT = Path(__file__).resolve().parent.parent


def parse(path: Path):
    """config.pbtxt read by Triton's ModelConfig message (unknown fields are an error)."""
    return text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())


def dtype_name(elem: int) -> str:
    return DATA_TYPES[elem]


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_parses_and_matches_the_ir(spec, tmp_path):
    graph = netspec.load(spec)
    files, mbs = write_repository(from_graph(graph), tmp_path)
    assert sorted(f.relative_to(tmp_path).as_posix() for f in files) == [
        f"{graph.name}/1/model.onnx",
        f"{graph.name}/config.pbtxt",
    ]
    cfg = parse(tmp_path / graph.name / "config.pbtxt")
    assert cfg.name == graph.name
    assert cfg.backend == "onnxruntime"
    assert cfg.max_batch_size == mbs == 32
    assert cfg.dynamic_batching.max_queue_delay_microseconds > 0
    assert [g.kind for g in cfg.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    # the IR's per-example shapes, -1 for a dynamic axis; the batch axis is implicit
    want_in = {
        n: [d if isinstance(d, int) else -1 for d in v.shape] for n, v in graph.inputs.items()
    }
    got_in = {i.name: list(i.dims) for i in cfg.input}
    assert got_in == want_in
    want_out = {
        o: [d if isinstance(d, int) else -1 for d in graph.value(v).shape] or [1]
        for o, v in graph.outputs.items()
    }
    assert {o.name: list(o.dims) for o in cfg.output} == want_out
    for i in cfg.input:
        ir = "TYPE_INT64" if graph.inputs[i.name].dtype == "int64" else "TYPE_FP32"
        assert mc.DataType.Name(i.data_type) == ir
    # model.onnx is the spec's model with its weights
    model = onnx.load(str(tmp_path / graph.name / "1" / "model.onnx"))
    assert model.SerializeToString() == netspec.compile(graph, "onnx").SerializeToString()


def test_onnx_file_options_and_cli(tmp_path):
    spec = ROOT / "specs" / "char_lstm.yaml"
    rc, _, err = run_cli(["build", spec, "-t", "onnx", "-o", tmp_path / "b", "-q"])
    assert rc == 0, err
    rc, out, err = run_cli(
        [
            "deploy",
            tmp_path / "b" / "char_lstm.onnx",
            "--triton",
            tmp_path / "repo",
            "--name",
            "lstm",
            "--instance",
            "gpu",
            "--max-batch-size",
            "0",
        ]
    )
    assert rc == 0, err
    assert "max_batch_size 0" in out
    cfg = parse(tmp_path / "repo" / "lstm" / "config.pbtxt")
    assert cfg.name == "lstm" and cfg.max_batch_size == 0
    assert not cfg.HasField("dynamic_batching")
    assert [g.kind for g in cfg.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
    # without Triton's batch axis the dims list it, dynamic (-1)
    assert [list(i.dims) for i in cfg.input] == [[-1, -1]]
    assert [list(o.dims) for o in cfg.output] == [[-1, -1, 65]]
    same = (tmp_path / "b" / "char_lstm.onnx").read_bytes()
    assert (tmp_path / "repo" / "lstm" / "1" / "model.onnx").read_bytes() == same


def test_names_that_need_escaping(tmp_path):
    """Tensor names are free text in ONNX: quotes, backslashes and newlines survive."""
    from onnx import TensorProto, helper

    name_in, name_out = 'in "x"\\y\nz', "out\tü"
    g = helper.make_graph(
        [helper.make_node("Relu", [name_in], [name_out])],
        "odd",
        [helper.make_tensor_value_info(name_in, TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info(name_out, TensorProto.FLOAT, ["batch", 3])],
    )
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(g), str(path))
    write_repository(from_onnx(path), tmp_path / "repo")
    cfg = parse(tmp_path / "repo" / "odd" / "config.pbtxt")
    assert [i.name for i in cfg.input] == [name_in]
    assert [o.name for o in cfg.output] == [name_out]
    assert dtype_name(TensorProto.FLOAT) == mc.DataType.Name(cfg.input[0].data_type)


def test_no_batch_axis_needs_max_batch_size_0(tmp_path):
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])],
    )
    path = tmp_path / "fixed.onnx"
    onnx.save(helper.make_model(g), str(path))
    rc, _, err = run_cli(["deploy", path, "--triton", tmp_path / "r", "--max-batch-size", "8"])
    assert rc == 2 and "cannot batch it" in err and "--max-batch-size 0" in err
    assert not (tmp_path / "r").exists()
    files, mbs = write_repository(from_onnx(path), tmp_path / "r")  # the default: 0
    assert mbs == 0
    assert [list(i.dims) for i in parse(tmp_path / "r" / "fixed" / "config.pbtxt").input] == [
        [4, 3]
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["specs/mlp.yaml"], "give --triton DIR"),
        (["nowhere.onnx", "--triton", "{tmp}/r"], "nowhere.onnx: error: the model file does not"),
        (["{tmp}/junk.onnx", "--triton", "{tmp}/r"], "junk.onnx: error: not a readable ONNX"),
        (["{tmp}/m.onnx", "--weights", "w.safetensors", "--triton", "{tmp}/r"], "--weights goes"),
        (["specs/mlp.yaml", "--triton", "{tmp}/r", "--name", "../up"], "cannot name a deployed"),
        (["specs/mlp.yaml", "--triton", "{tmp}/r", "--max-batch-size", "-1"], "between 0 and"),
        (["specs/mlp.yaml", "--triton", "{tmp}/junk.onnx"], "is not a folder"),
        (["specs/nope.yaml", "--triton", "{tmp}/r"], "nope.yaml: error: cannot read the spec"),
        (["specs/mlp.yaml", "--triton", "{tmp}/r", "--instance", "tpu"], "invalid choice"),
    ],
)
def test_errors_exit_2_and_write_nothing(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a model\xff" * 3)
    (tmp_path / "m.onnx").write_bytes(
        netspec.compile(netspec.load("specs/mlp.yaml"), "onnx").SerializeToString()
    )
    rc, out, err = run_cli(["deploy", *(a.replace("{tmp}", str(tmp_path)) for a in args)])
    assert rc == 2, (out, err)
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_rewrite_keeps_other_models(tmp_path):
    for spec in ("mlp", "xor"):
        rc, _, err = run_cli(
            ["deploy", ROOT / "specs" / f"{spec}.yaml", "--triton", tmp_path, "-q"]
        )
        assert rc == 0, err
    rc, _, err = run_cli(["deploy", ROOT / "specs" / "mlp.yaml", "--triton", tmp_path, "-q"])
    assert rc == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [netspec.load(ROOT / "specs" / f"{s}.yaml").name for s in ("mlp", "xor")]
    )
    assert not list(tmp_path.glob(".netspec-*"))


def test_failed_write_into_a_new_folder_keeps_what_another_writer_put_there(tmp_path, monkeypatch):
    # the folder is this call's, but a concurrent deploy finished a model in it meanwhile
    import netspec.deploy.triton as triton

    repo = tmp_path / "new"

    def other_writer_then_fail(*args, **kwargs):
        (repo / "other").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(triton, "config_text", other_writer_then_fail)
    src = from_graph(netspec.load(ROOT / "specs" / "mlp.yaml"))
    with pytest.raises(KeyboardInterrupt):
        write_repository(src, repo)
    assert sorted(p.name for p in repo.iterdir()) == ["other"]
