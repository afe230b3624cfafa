"""The ASGI application of `netspec serve`: the Open Inference Protocol (KServe v2) over HTTP,
on Starlette, for the models given.

    GET  /v2/health/live, /v2/health/ready, /v2          server liveness, readiness, metadata
    GET  /v2/models/NAME[/versions/V]                    model metadata
    GET  /v2/models/NAME[/versions/V]/ready              model readiness
    POST /v2/models/NAME[/versions/V]/infer              inference (JSON or binary tensors)
    GET  /metrics                                        Prometheus metrics

Every error answers JSON `{"error": "..."}`: 400 for a malformed request (the body, a tensor, a
limit), 404 for an unknown model, version or route, 405 for a wrong method. `create_app` makes the
app from loaded models (importable, and testable with Starlette's TestClient); `app_from_env` is
the factory each worker process of `netspec serve --workers N` calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..version import __version__
from .defaults import DEFAULT_BATCH_DELAY_MS, DEFAULT_MAX_BODY
from .model import Model
from .protocol import HEADER, ProtocolError, Request, encode_response, parse_request

CONFIG_ENV = "NETSPEC_SERVE_CONFIG"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip


class NotFound(Exception):
    """An unknown model or version (HTTP 404)."""


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Metrics:
    """The Prometheus metrics of one app (its own registry, or the multiprocess directory's)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "netspec_inference_requests",
            "Inference requests, by model and HTTP status code",
            ["model", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "netspec_inference_request_duration_seconds",
            "Time from the request's body read to its response, successful inferences",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch = Histogram(
            "netspec_inference_batch_rows",
            "Rows (batch size) of each ONNX Runtime run",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # --workers N: every process's values
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def create_app(
    models: Sequence[Model],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    dynamic_batching: bool = False,
    batch_delay_ms: float = DEFAULT_BATCH_DELAY_MS,
) -> Starlette:
    """The OIP app serving `models` (each already loaded)."""
    by_name = {m.name: m for m in models}
    metrics = Metrics()
    batchers = {}
    if dynamic_batching:
        from .batching import Batcher

        for m in models:
            if m.batched:
                observe = metrics.batch.labels(m.name).observe
                batchers[m.name] = Batcher(m, batch_delay_ms / 1000, observe)

    def lookup(request: HTTPRequest) -> Model:
        name = request.path_params["name"]
        model = by_name.get(name)
        if model is None:
            raise NotFound(f"unknown model {name!r} (this server has: {', '.join(by_name)})")
        version = request.path_params.get("version")
        if version is not None and version != model.version:
            raise NotFound(f"model {name!r} has no version {version!r} (it has: {model.version})")
        return model

    async def live(request):
        return JSONResponse({"live": True})

    async def ready(request):
        return JSONResponse({"ready": True})

    async def server_metadata(request):
        return JSONResponse(
            {"name": "netspec", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(request):
        return JSONResponse(lookup(request).metadata())

    async def model_ready(request):
        model = lookup(request)
        return JSONResponse({"name": model.name, "ready": True})

    async def metrics_endpoint(request):
        body, media = metrics.exposition()
        return Response(body, media_type=media)

    def prepare(model: Model, body: bytes, header: str | None):
        req = parse_request(body, header)
        return req, model.check(req)

    def finish(model: Model, req: Request, outputs):
        if req.outputs is not None:
            outputs = {n: outputs[n] for n in req.outputs}
        return encode_response(model.name, model.version, outputs, req)

    def whole(model: Model, body: bytes, header: str | None):
        req, feeds = prepare(model, body, header)
        outputs = model.run(feeds)
        if model.batched:
            metrics.batch.labels(model.name).observe(next(iter(feeds.values())).shape[0])
        return finish(model, req, outputs)

    async def infer(request: HTTPRequest):
        try:
            model = lookup(request)
        except NotFound:
            metrics.requests.labels("", "404").inc()
            raise
        try:
            body = await read_body(request, max_body_bytes)
            start = time.perf_counter()
            header = request.headers.get(HEADER)
            batcher = batchers.get(model.name)
            if batcher is None:
                content, n = await run_in_threadpool(whole, model, body, header)
            else:
                req, feeds = await run_in_threadpool(prepare, model, body, header)
                outputs = await batcher.submit(feeds)
                content, n = finish(model, req, outputs)
        except ProtocolError as e:
            metrics.requests.labels(model.name, "400").inc()
            return error(400, str(e))
        metrics.latency.labels(model.name).observe(time.perf_counter() - start)
        metrics.requests.labels(model.name, "200").inc()
        if n is None:
            return Response(content, media_type="application/json")
        return Response(
            content,
            media_type="application/octet-stream",
            headers={"Inference-Header-Content-Length": str(n)},
        )

    async def on_not_found(request, exc):
        return error(404, str(exc))

    async def on_http(request, exc: HTTPException):
        if exc.status_code == 404:
            return error(404, f"no route {request.method} {request.url.path}")
        if exc.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path}")
        return error(exc.status_code, str(exc.detail))

    async def on_internal(request, exc: Exception):
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for b in batchers.values():
            await b.close()

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    for base in (model, versioned):
        routes += [
            Route(base, model_metadata, methods=["GET"]),
            Route(base + "/ready", model_ready, methods=["GET"]),
            Route(base + "/infer", infer, methods=["POST"]),
        ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            NotFound: on_not_found,
            HTTPException: on_http,
            Exception: on_internal,
        },
        lifespan=lifespan,
    )
    app.state.models = by_name
    app.state.metrics = metrics
    return app


async def read_body(request: HTTPRequest, limit: int) -> bytes:
    """The request body, at most `limit` bytes (after decompressing `Content-Encoding: gzip` or
    `deflate`); ProtocolError past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise ProtocolError(
            f"the body has {int(declared)} bytes, over this server's limit of {limit} bytes "
            f"(--max-body-bytes)"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(
                f"the body is over this server's limit of {limit} bytes (--max-body-bytes)"
            )
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ProtocolError(
            f"unsupported Content-Encoding {encoding!r} (this server reads gzip and deflate)"
        )
    d = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise ProtocolError(f"the body is not valid {encoding} data: {e}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise ProtocolError(
            f"the decompressed body is over this server's limit of {limit} bytes (--max-body-bytes)"
        )
    if not d.eof:
        raise ProtocolError(f"the {encoding} body is truncated")
    return out


def app_from_env() -> Starlette:
    """The app of one worker process: the models and options `netspec serve` put in the
    NETSPEC_SERVE_CONFIG environment variable (JSON), each model from its .onnx file."""
    cfg = json.loads(os.environ[CONFIG_ENV])
    models = [Model(name, path, cfg["provider"], cfg["max_batch"]) for name, path in cfg["models"]]
    return create_app(
        models,
        max_body_bytes=cfg["max_body_bytes"],
        dynamic_batching=cfg["dynamic_batching"],
        batch_delay_ms=cfg["batch_delay_ms"],
    )
