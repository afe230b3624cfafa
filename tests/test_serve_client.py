"""`netspec serve` as a real process on a loopback port, driven by Triton's own HTTP client
(`tritonclient[http]`): every spec's outputs, as JSON and as binary tensors, equal ONNX Runtime's
on the same model in-process (what `netspec run` runs) and `netspec run`'s own saved outputs;
dynamic batching and several worker processes give the same answers."""

from __future__ import annotations

import re
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpclient = pytest.importorskip("tritonclient.http")

from conftest import ROOT, SPECS, netspec_serve, run_cli  # noqa: E402

import netspec  # noqa: E402
from netspec.targets.onnx.run import run_model  # noqa: E402

SMALL = ["mlp", "iris", "digits_cnn", "char_lstm", "bigru_classifier"]
NUMPY = {"FP32": np.float32, "INT64": np.int64}


def inputs_for(meta: dict, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs from a model's metadata: dynamic axes 5 long (batch `batch`), integers
    (token ids) in [0, 10)."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in meta["inputs"]:
        shape = [batch] + [d if d >= 0 else 5 for d in t["shape"][1:]]
        if t["datatype"] == "FP32":
            out[t["name"]] = rng.standard_normal(shape).astype(np.float32)
        else:
            out[t["name"]] = rng.integers(0, 10, shape).astype(NUMPY[t["datatype"]])
    return out


def infer(
    client, name: str, xs: dict[str, np.ndarray], binary: bool, compression: str | None = None
) -> dict[str, np.ndarray]:
    ins = []
    for n, a in xs.items():
        i = httpclient.InferInput(
            n, list(a.shape), {np.float32: "FP32", np.int64: "INT64"}[a.dtype.type]
        )
        i.set_data_from_numpy(a, binary_data=binary)
        ins.append(i)
    meta = client.get_model_metadata(name)
    outs = [httpclient.InferRequestedOutput(o["name"], binary_data=binary) for o in meta["outputs"]]
    r = client.infer(
        name,
        ins,
        outputs=outs,
        request_compression_algorithm=compression,
        response_compression_algorithm=compression,
    )
    return {o["name"]: r.as_numpy(o["name"]) for o in meta["outputs"]}


def check_specs(paths) -> None:
    with netspec_serve(*paths, "--provider", "cpu") as (_, address):
        client = httpclient.InferenceServerClient(address, network_timeout=300)
        assert client.is_server_live() and client.is_server_ready()
        for path in paths:
            graph = netspec.load(path)
            assert client.is_model_ready(graph.name)
            meta = client.get_model_metadata(graph.name)
            xs = inputs_for(meta)
            ref, _ = run_model(netspec.compile(graph, target="onnx"), xs, "cpu")
            for binary in (True, False):
                got = infer(client, graph.name, xs, binary)
                assert list(got) == list(ref)
                for n in ref:
                    assert got[n].dtype == ref[n].dtype and got[n].shape == ref[n].shape
                    np.testing.assert_array_equal(got[n], ref[n], err_msg=f"{graph.name}.{n}")


def test_small_specs_equal_onnx_runtime():
    check_specs([ROOT / "specs" / f"{s}.yaml" for s in SMALL])


@pytest.mark.slow
def test_every_spec_equals_onnx_runtime():
    check_specs(SPECS)


def test_an_onnx_file_equals_netspec_run(tmp_path):
    """`netspec build --target onnx`, then `netspec run -o` and `netspec serve` on the file
    (requests JSON or binary, plain or compressed)."""
    rc, _, err = run_cli(
        ["build", ROOT / "specs/digits_cnn.yaml", "--target", "onnx", "-o", tmp_path]
    )
    assert rc == 0, err
    model = tmp_path / "digits_cnn.onnx"
    x = np.random.default_rng(3).standard_normal((5, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "image.npy", x)
    rc, _, err = run_cli(
        ["run", model, "--input", f"image={tmp_path / 'image.npy'}", "--provider", "cpu",
         "-o", tmp_path / "out"]
    )  # fmt: skip
    assert rc == 0, err
    want = np.load(tmp_path / "out" / "digit.npy")
    with netspec_serve(model, "--provider", "cpu") as (_, address):
        client = httpclient.InferenceServerClient(address)
        for binary in (True, False):
            for compression in (None, "gzip", "deflate"):
                got = infer(client, "digits_cnn", {"image": x}, binary, compression)
                np.testing.assert_array_equal(got["digit"], want)


def metrics(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as r:
        return r.read().decode()


def metric(text: str, name: str, model: str) -> float:
    return sum(
        float(v) for v in re.findall(rf'^{name}\{{.*model="{model}".*\}} (\S+)$', text, re.M)
    )


def test_dynamic_batching_with_concurrent_clients():
    spec = ROOT / "specs/digits_cnn.yaml"
    graph = netspec.load(spec)
    xs = [inputs_for({"inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]},
                     batch=1 + k % 3, seed=k) for k in range(24)]  # fmt: skip
    model = netspec.compile(graph, target="onnx")
    with netspec_serve(
        spec, "--provider", "cpu", "--dynamic-batching", "--batch-delay-ms", "20"
    ) as (_, address):
        client = httpclient.InferenceServerClient(address, concurrency=8)
        pending = []
        for x in xs:
            i = httpclient.InferInput("image", list(x["image"].shape), "FP32")
            i.set_data_from_numpy(x["image"])
            pending.append(client.async_infer("digits_cnn", [i]))
        for x, p in zip(xs, pending, strict=True):
            ref, _ = run_model(model, x, "cpu")
            got = p.get_result().as_numpy("digit")
            np.testing.assert_allclose(got, ref["digit"], rtol=1e-6, atol=1e-6)
        text = metrics(address)
    runs = metric(text, "netspec_inference_batch_rows_count", "digits_cnn")
    rows = metric(text, "netspec_inference_batch_rows_sum", "digits_cnn")
    assert rows == sum(len(x["image"]) for x in xs)
    assert runs < len(xs)
    assert metric(text, "netspec_inference_requests_total", "digits_cnn") == len(xs)


@pytest.mark.slow  # two server processes start: ~12 s on a quiet machine, 30 s on a busy one
def test_worker_processes_serve_and_count_together():
    """--workers 2: answers equal ONNX Runtime's; /metrics adds up the processes' counts."""
    spec = ROOT / "specs/xor.yaml"
    x = {"bits": np.array([[0, 1], [1, 1]], np.float32)}
    ref, _ = run_model(netspec.compile(netspec.load(spec), target="onnx"), x, "cpu")
    with netspec_serve(spec, "--provider", "cpu", "--workers", "2") as (_, address):
        for _ in range(8):
            client = httpclient.InferenceServerClient(address)  # new connections
            np.testing.assert_array_equal(infer(client, "xor", x, True)["out"], ref["out"])
            client.close()
        text = metrics(address)
    # each request asks the metadata, then infers: 8 inferences over both processes
    assert metric(text, "netspec_inference_requests_total", "xor") == 8
    # read from every process's files (prometheus_client's multiprocess mode has no _created)
    assert "_created" not in text
