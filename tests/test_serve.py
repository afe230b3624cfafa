"""`netspec serve`: the Open Inference Protocol app in-process (Starlette's TestClient and httpx),
the tensor codec, the command line's usage errors, and every kind of bad request answered 400
(404 for an unknown model, version or route) with a JSON error, in-process and by a real server
process that keeps answering after each."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import re

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")
pytest.importorskip("prometheus_client")

from conftest import ROOT, netspec_serve, run_cli  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import netspec  # noqa: E402
from netspec.serve.app import create_app  # noqa: E402
from netspec.serve.model import Model  # noqa: E402
from netspec.serve.protocol import ProtocolError, Request, encode_response, parse_request  # noqa: E402
from netspec.targets.onnx.run import run_model  # noqa: E402

TWO_INPUTS = """\
netspec: 1
name: pair
inputs:
  a: {shape: [3]}
  b: {shape: [3]}
layers:
  - {op: concat, inputs: [a, b]}
  - {op: dense, units: 2}
"""


def onnx_bytes(path) -> bytes:
    return netspec.compile(netspec.load(path), target="onnx").SerializeToString()


@pytest.fixture(scope="module")
def pair_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "pair.yaml"
    path.write_text(TWO_INPUTS)
    return path


@pytest.fixture(scope="module")
def models(pair_spec):
    """mlp (float), char_lstm (int64 tokens, dynamic length), pair (two inputs), max batch 8."""
    out = [
        Model(name, onnx_bytes(path), "cpu", max_batch=8)
        for name, path in (
            ("mlp", ROOT / "specs/mlp.yaml"),
            ("char_lstm", ROOT / "specs/char_lstm.yaml"),
            ("pair", pair_spec),
        )
    ]
    return {m.name: m for m in out}


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(list(models.values()), max_body_bytes=100_000)) as c:
        yield c


def oip(name: str, a: np.ndarray, datatype: str = "FP32") -> dict:
    return {"name": name, "shape": list(a.shape), "datatype": datatype, "data": a.tolist()}


X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)


# -- the codec --------------------------------------------------------------------------------
def test_json_tensors_flat_or_nested_parse_alike():
    flat = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3.5, 4]}]}
    nested = {"inputs": [{**flat["inputs"][0], "data": [[1, 2], [3.5, 4]]}]}
    for doc in (flat, nested):
        r = parse_request(json.dumps(doc).encode(), None)
        assert r.inputs["x"].dtype == np.float32
        np.testing.assert_array_equal(r.inputs["x"], [[1, 2], [3.5, 4]])


def test_binary_tensors_are_read_in_input_order():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([[7, -1]], dtype=np.int64)
    head = json.dumps(
        {
            "inputs": [
                {"name": "a", "shape": [2, 3], "datatype": "FP32",
                 "parameters": {"binary_data_size": a.nbytes}},
                {"name": "b", "shape": [1, 2], "datatype": "INT64",
                 "parameters": {"binary_data_size": b.nbytes}},
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()  # fmt: skip
    r = parse_request(head + a.tobytes() + b.tobytes(), str(len(head)))
    np.testing.assert_array_equal(r.inputs["a"], a)
    np.testing.assert_array_equal(r.inputs["b"], b)
    assert r.wants_binary("anything")


def test_responses_encode_json_and_binary_outputs():
    y = np.array([[0.1, 0.2]], dtype=np.float32)
    body, n = encode_response("m", "1", {"y": y}, Request({}, id="r1"))
    doc = json.loads(body)
    assert n is None and doc["id"] == "r1" and doc["outputs"][0]["datatype"] == "FP32"
    assert np.array(doc["outputs"][0]["data"], np.float32).tolist() == y.ravel().tolist()
    body, n = encode_response("m", "1", {"y": y}, Request({}, binary_default=True))
    head = json.loads(body[:n])
    assert head["outputs"][0]["parameters"]["binary_data_size"] == y.nbytes
    assert np.frombuffer(body[n:], np.float32).tolist() == y.ravel().tolist()


@pytest.mark.parametrize(
    "data, datatype, message",
    [
        ([1.5, 2], "INT64", "must hold integers for INT64, got non-integer numbers"),
        ([True, False], "FP32", "must hold numbers for FP32"),
        ([1, 0], "BOOL", "must hold true/false for BOOL"),
        ([300, 1], "UINT8", "outside the range of UINT8"),
        (["1", "2"], "FP32", "strings, nulls or mixed values"),
        ([None, 1], "FP32", "strings, nulls or mixed values"),
        ([[1], [2, 3]], "FP32", "nested unevenly"),
    ],
)
def test_json_data_must_match_the_datatype(data, datatype, message):
    doc = {"inputs": [{"name": "x", "shape": [2], "datatype": datatype, "data": data}]}
    with pytest.raises(ProtocolError, match=re.escape(message)):
        parse_request(json.dumps(doc).encode(), None)


# -- the app in-process -----------------------------------------------------------------------
def test_health_and_metadata(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = client.get("/v2/models/char_lstm").json()
    assert meta["inputs"] == [{"name": "tokens", "datatype": "INT64", "shape": [-1, -1]}]
    assert meta["outputs"][0]["shape"] == [-1, -1, 65]
    assert client.get("/v2/models/mlp/versions/1/ready").json() == {"name": "mlp", "ready": True}


def test_json_inference_equals_onnx_runtime(client):
    r = client.post("/v2/models/mlp/infer", json={"id": "a", "inputs": [oip("x", X)]})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["id"] == "a" and doc["model_name"] == "mlp"
    (out,) = doc["outputs"]
    ref, _ = run_model(onnx_bytes(ROOT / "specs/mlp.yaml"), {"x": X}, "cpu")
    got = np.array(out["data"], np.float32).reshape(out["shape"])
    np.testing.assert_array_equal(got, ref["out"])


def test_binary_inference_with_gzip_equals_onnx_runtime(client):
    t = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    head = json.dumps(
        {
            "inputs": [{"name": "tokens", "shape": [2, 3], "datatype": "INT64",
                        "parameters": {"binary_data_size": t.nbytes}}],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()  # fmt: skip
    r = client.post(
        "/v2/models/char_lstm/versions/1/infer",
        content=gzip.compress(head + t.tobytes()),
        headers={"Inference-Header-Content-Length": str(len(head)), "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    (out,) = json.loads(r.content[:n])["outputs"]
    got = np.frombuffer(r.content[n:], np.float32).reshape(out["shape"])
    ref, _ = run_model(onnx_bytes(ROOT / "specs/char_lstm.yaml"), {"tokens": t}, "cpu")
    np.testing.assert_array_equal(got, ref["logits"])


def test_metrics_count_requests_and_latency(models):
    with TestClient(create_app([models["mlp"]])) as c:
        for _ in range(3):
            assert c.post("/v2/models/mlp/infer", json={"inputs": [oip("x", X)]}).status_code == 200
        assert c.post("/v2/models/mlp/infer", content=b"{").status_code == 400
        text = c.get("/metrics").text
    assert 'netspec_inference_requests_total{code="200",model="mlp"} 3.0' in text
    assert 'netspec_inference_requests_total{code="400",model="mlp"} 1.0' in text
    assert 'netspec_inference_request_duration_seconds_count{model="mlp"} 3.0' in text
    assert 'netspec_inference_batch_rows_sum{model="mlp"} 12.0' in text


def test_dynamic_batching_gathers_concurrent_requests(models):
    """32 concurrent requests of 1 to 3 rows: each gets its own rows back (equal to running it
    alone), in fewer runs than requests."""
    import httpx2 as httpx

    model = models["mlp"]
    app = create_app([model], dynamic_batching=True, batch_delay_ms=50)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1 + i % 3, 3)).astype(np.float32) for i in range(32)]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            rs = await asyncio.gather(
                *(c.post("/v2/models/mlp/infer", json={"inputs": [oip("x", x)]}) for x in xs)
            )
            return rs, (await c.get("/metrics")).text

    responses, text = asyncio.run(main())
    for x, r in zip(xs, responses, strict=True):
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
        got = np.array(out["data"], np.float32).reshape(out["shape"])
        np.testing.assert_allclose(got, model.run({"x": x})["out"], rtol=1e-6, atol=1e-6)
    runs = float(re.search(r'netspec_inference_batch_rows_count\{model="mlp"\} (\S+)', text)[1])
    rows = float(re.search(r'netspec_inference_batch_rows_sum\{model="mlp"\} (\S+)', text)[1])
    assert rows == sum(len(x) for x in xs)
    assert runs < len(xs)


def test_dynamic_batching_survives_a_new_event_loop(models):
    """A TestClient outside `with` runs each request on its own event loop: the batcher
    follows it (its queue is made anew) rather than waiting on a dead loop's queue."""
    client = TestClient(create_app([models["mlp"]], dynamic_batching=True))
    for _ in range(3):
        r = client.post("/v2/models/mlp/infer", json={"inputs": [oip("x", X)]})
        assert r.status_code == 200, r.text


def test_a_faulty_request_in_a_batch_fails_alone(models):
    import httpx2 as httpx

    app = create_app([models["char_lstm"]], dynamic_batching=True, batch_delay_ms=50)
    good = np.array([[1, 2, 3]], np.int64)
    bad = np.array([[1, 2, 1000]], np.int64)  # a token outside the vocabulary

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(
                *(
                    c.post(
                        "/v2/models/char_lstm/infer",
                        json={"inputs": [oip("tokens", t, "INT64")]},
                    )
                    for t in (good, bad, good)
                )
            )

    codes = [r.status_code for r in asyncio.run(main())]
    assert codes == [200, 400, 200]


# -- bad requests ---------------------------------------------------------------------------
def _req(inputs, **extra) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def _t(name="x", shape=(1, 3), datatype="FP32", data=None, **extra) -> dict:
    n = int(np.prod(shape))
    return {"name": name, "shape": list(shape), "datatype": datatype,
            "data": [0.5] * n if data is None else data, **extra}  # fmt: skip


HEAD = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                 "parameters": {"binary_data_size": 12}}]}
).encode()  # fmt: skip
MLP = "/v2/models/mlp/infer"
# (id, path, body, headers, status, a piece of the error message)
BAD = [
    ("not-json", MLP, b"{inputs: ]", {}, 400, "not valid JSON"),
    ("not-utf8", MLP, b"\xff\xfe{}", {}, 400, "not valid JSON"),
    ("not-an-object", MLP, b"[1, 2]", {}, 400, "must be a JSON object"),
    ("no-inputs", MLP, b'{"id": "1"}', {}, 400, "needs 'inputs'"),
    ("empty-inputs", MLP, _req([]), {}, 400, "needs 'inputs'"),
    ("input-not-object", MLP, _req([3]), {}, 400, "inputs[0] must be an object"),
    ("input-without-name", MLP, _req([{"shape": [1], "datatype": "FP32", "data": [1]}]),
     {}, 400, "needs a 'name'"),
    ("wrong-input-name", MLP, _req([_t("X")]), {}, 400, "has no input 'X'"),
    ("input-twice", MLP, _req([_t(), _t()]), {}, 400, "given twice"),
    ("missing-input", "/v2/models/pair/infer", _req([_t("a")]), {}, 400, "missing input(s): b"),
    ("wrong-rank", MLP, _req([_t(shape=(3,))]), {}, 400, "must have rank 2"),
    ("wrong-shape", MLP, _req([_t(shape=(1, 4))]), {}, 400, "must have shape [batch, 3]"),
    ("negative-shape", MLP, _req([_t(shape=(1, -3), data=[])]), {}, 400, "non-negative"),
    ("wrong-datatype", MLP, _req([_t(datatype="INT64", data=[1, 2, 3])]), {}, 400,
     "must be FP32, got INT64"),
    ("datatype-not-string", MLP, _req([_t(datatype=["FP32"])]), {}, 400, "needs a 'datatype'"),
    ("unknown-datatype", MLP, _req([_t(datatype="FP33")]), {}, 400, "unknown datatype 'FP33'"),
    ("bytes-datatype", MLP, _req([_t(datatype="BYTES", data=["a", "b", "c"])]), {}, 400,
     "BYTES is not supported"),
    ("data-length", MLP, _req([_t(data=[1, 2])]), {}, 400, "has 2 elements, but its shape takes 3"),
    ("data-strings", MLP, _req([_t(data=["1", "2", "3"])]), {}, 400, "must hold numbers"),
    ("no-data", MLP, _req([{"name": "x", "shape": [1, 3], "datatype": "FP32"}]), {}, 400,
     "neither 'data' nor"),
    ("header-length-not-int", MLP, HEAD + bytes(12), {"Inference-Header-Content-Length": "x"},
     400, "must be an integer"),
    ("header-length-past-body", MLP, HEAD, {"Inference-Header-Content-Length": "9999"}, 400,
     "says 9999 bytes"),
    ("binary-size-vs-shape", MLP, HEAD.replace(b": 12", b": 16") + bytes(16),
     {"Inference-Header-Content-Length": str(len(HEAD))}, 400, "takes 12 bytes"),
    ("binary-short", MLP, HEAD + bytes(8), {"Inference-Header-Content-Length": str(len(HEAD))},
     400, "binary data ends after 8 bytes"),
    ("binary-extra", MLP, HEAD + bytes(20), {"Inference-Header-Content-Length": str(len(HEAD))},
     400, "20 bytes of binary data, but the inputs declare 12"),
    ("unknown-output", MLP, _req([_t()], outputs=[{"name": "nope"}]), {}, 400, "has no output"),
    ("bad-parameter", MLP, _req([_t()], parameters={"binary_data_output": "yes"}), {}, 400,
     "must be true or false"),
    ("batch-too-big", MLP, _req([_t(shape=(9, 3))]), {}, 400, "over this server's limit of 8"),
    ("body-too-big", MLP, b" " * 100_001, {}, 400, "over this server's limit of 100000 bytes"),
    ("token-out-of-range", "/v2/models/char_lstm/infer",
     _req([_t("tokens", (1, 2), "INT64", [1, 1000])]), {}, 400, "ONNX Runtime failed"),
    ("unknown-encoding", MLP, _req([_t()]), {"Content-Encoding": "br"}, 400,
     "unsupported Content-Encoding"),
    ("bad-gzip", MLP, b"not gzip", {"Content-Encoding": "gzip"}, 400, "not valid gzip"),
    ("unknown-model", "/v2/models/nope/infer", _req([_t()]), {}, 404, "unknown model 'nope'"),
    ("unknown-version", "/v2/models/mlp/versions/2/infer", _req([_t()]), {}, 404,
     "has no version '2'"),
    ("unknown-route", "/v2/modelz/mlp/infer", _req([_t()]), {}, 404, "no route"),
]  # fmt: skip


def test_there_are_at_least_twenty_kinds_of_bad_request():
    assert len({b[0] for b in BAD}) == len(BAD) >= 20


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_bad_request_in_process(client, case):
    _, path, body, headers, status, message = case
    r = client.post(path, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_bad_requests_to_a_server_process_each_get_an_error_and_it_keeps_serving(pair_spec):
    """The real server, over a real socket: each bad request gets its status and a JSON error,
    then /v2/health/ready answers and a good inference still works."""
    with netspec_serve(
        ROOT / "specs/mlp.yaml",
        ROOT / "specs/char_lstm.yaml",
        pair_spec,
        "--provider", "cpu", "--max-batch", "8", "--max-body-bytes", "100000",
    ) as (proc, address):  # fmt: skip
        host, port = address.rsplit(":", 1)
        for name, path, body, headers, status, message in BAD:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            doc = json.loads(r.read())
            conn.close()
            assert (r.status, message in doc["error"]) == (status, True), (name, doc)
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("GET", "/v2/health/ready")
            assert conn.getresponse().status == 200, f"not ready after {name}"
            conn.close()
        # a body sent in chunks, with no Content-Length: cut off at the limit too
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", MLP, body=iter([b" " * 65536] * 4), encode_chunked=True)
        r = conn.getresponse()
        assert r.status == 400 and "limit of 100000 bytes" in json.loads(r.read())["error"]
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", MLP, body=_req([_t()]))
        assert conn.getresponse().status == 200
        assert proc.poll() is None


# -- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["specs/mlp.yaml", "--port", "70000"], "--port must be between 0 and 65535"),
        (["specs/mlp.yaml", "--workers", "0"], "--workers must be at least 1"),
        (["specs/mlp.yaml", "--max-batch", "0"], "--max-batch must be at least 1"),
        (["specs/mlp.yaml", "--batch-delay-ms", "5"], "--batch-delay-ms goes with"),
        (["specs/mlp.yaml", "specs/xor.yaml", "--weights", "w.safetensors"], "single spec"),
        (["nope.onnx"], "no such file: nope.onnx"),
        (["specs/mlp.yaml", "specs/mlp.yaml"], "two models are named 'mlp'"),
        (["specs/mlp.yaml", "--host", "no.such.host.invalid"], "cannot listen on"),
    ],
)
def test_usage_errors_exit_2(args, message, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, err = run_cli(["serve", *args])
    assert rc == 2, err
    assert message in err and "Traceback" not in err


def test_weights_go_with_a_spec_not_an_onnx_file(tmp_path, monkeypatch):
    model = tmp_path / "mlp.onnx"
    model.write_bytes(onnx_bytes(ROOT / "specs/mlp.yaml"))
    rc, _, err = run_cli(["serve", model, "--weights", tmp_path / "w.safetensors"])
    assert rc == 2 and "--weights goes with a spec" in err


def test_a_port_in_use_is_a_usage_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, _, err = run_cli(["serve", ROOT / "specs/xor.yaml", "--port", port])
    assert rc == 2 and f"cannot listen on 127.0.0.1:{port}" in err


def test_dynamic_batching_needs_a_dynamic_batch_axis(tmp_path):
    """An ONNX model with a fixed first axis cannot be stacked: refused at start."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "fixed", [x], [y])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "fixed.onnx"
    onnx.save(model, path)
    rc, _, err = run_cli(["serve", path, "--dynamic-batching", "--provider", "cpu"])
    assert rc == 2 and "first axis is not dynamic" in err


def test_provider_choices_are_the_runners():
    from netspec.cli import make_parser
    from netspec.targets.onnx.run import PROVIDERS

    sub = next(a for a in make_parser()._actions if a.dest == "command").choices["serve"]
    assert tuple(next(a for a in sub._actions if a.dest == "provider").choices) == PROVIDERS


def test_provider_cuda_without_cuda_is_a_usage_error():
    """No silent fallback: where the CUDA execution provider cannot run, exit 2 and say why."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        sess_providers = ort.InferenceSession(
            onnx_bytes(ROOT / "specs/xor.yaml"), providers=["CUDAExecutionProvider"]
        ).get_providers()
        if "CUDAExecutionProvider" in sess_providers:
            pytest.skip("CUDA runs here")
    rc, _, err = run_cli(["serve", ROOT / "specs/xor.yaml", "--provider", "cuda"])
    assert rc == 2 and "the CUDA execution provider cannot run here" in err
    assert err.startswith("netspec: error: --provider cuda: ")


def test_a_model_onnx_runtime_cannot_load_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    rc, _, err = run_cli(["serve", bad, "--provider", "cpu"])
    assert rc == 2 and err.startswith("netspec: error: ONNX Runtime cannot load the model")


# -- any JSON at all: a 400 or an answer, never an internal error --------------------------------
def test_any_json_request_is_a_protocol_error_or_runs(models):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalar = (
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5)
    )
    value = st.recursive(
        scalar,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
        max_leaves=12,
    )
    tensor = st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["x", "tokens", "a", "b"]) | value,
            "shape": st.lists(st.integers(-1, 4), max_size=3) | value,
            "datatype": st.sampled_from(["FP32", "INT64", "BOOL", "FP16", "BYTES"]) | value,
            "data": st.lists(st.floats(width=32) | st.integers(-3, 70), max_size=12) | value,
            "parameters": st.dictionaries(
                st.sampled_from(["binary_data_size", "binary_data"]), value, max_size=2
            ),
        },
    )
    request = st.fixed_dictionaries(
        {},
        optional={
            "inputs": st.lists(tensor, max_size=3) | value,
            "outputs": st.lists(
                st.fixed_dictionaries({"name": st.text(max_size=4) | value}), max_size=2
            )
            | value,
            "parameters": st.dictionaries(st.just("binary_data_output"), value, max_size=1),
            "id": value,
        },
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request, st.sampled_from(list(models)), st.binary(max_size=16))
    def check(doc, name, tail):
        body = json.dumps(doc).encode()
        for b, header in ((body, None), (body + tail, str(len(body)))):
            try:
                req = parse_request(b, header)
                models[name].run(models[name].check(req))
            except ProtocolError:
                pass

    check()
