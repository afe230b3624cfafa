"""`netspec serve MODEL.onnx|SPEC...`: serve models over HTTP with the Open Inference Protocol
(KServe v2), on ONNX Runtime. A spec is built to ONNX as `netspec build --target onnx` builds it
(its `--weights`, else init_weights(seed=0)); the server lives in `netspec.serve`."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

from .common import UsageError, load_spec, spec_options, weights_option

MISSING = "netspec serve needs {name}: pip install 'netspec[serve]'"


def add_parser(sub) -> None:
    from ..serve.defaults import DEFAULT_BATCH_DELAY_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY

    sp = sub.add_parser(
        "serve",
        help="serve models over HTTP (Open Inference Protocol, KServe v2)",
        description="Serve ONNX models (an .onnx file, or a spec built to ONNX) over HTTP with "
        "the Open Inference Protocol (KServe v2), on ONNX Runtime: the same clients work "
        "against it, Triton and KServe. Ctrl-C stops it.",
    )
    sp.add_argument("model", nargs="+", metavar="MODEL.onnx|SPEC", help="one or more models")
    weights_option(sp)
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sp.add_argument(
        "--port", type=int, default=8000, metavar="N", help="port (default 8000; 0: a free one)"
    )
    sp.add_argument(
        "--workers", type=int, default=1, metavar="N", help="server processes (default 1)"
    )
    sp.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY,
        metavar="N",
        help=f"refuse request bodies over N bytes (default {DEFAULT_MAX_BODY})",
    )
    sp.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        metavar="N",
        help=f"refuse batches over N rows; the most rows one dynamic batch gathers "
        f"(default {DEFAULT_MAX_BATCH})",
    )
    sp.add_argument(
        "--dynamic-batching",
        action="store_true",
        help="gather concurrent requests into one ONNX Runtime run",
    )
    sp.add_argument(
        "--batch-delay-ms",
        type=float,
        metavar="MS",
        help=f"with --dynamic-batching: how long a batch waits for more requests after its "
        f"first (default {DEFAULT_BATCH_DELAY_MS})",
    )
    # the choices are targets.onnx.run.PROVIDERS, as for `netspec run`
    sp.add_argument(
        "--provider",
        default="auto",
        choices=["auto", "cuda", "tensorrt", "cpu"],
        help="ONNX Runtime execution provider, as for `netspec run` (default auto)",
    )
    sp.add_argument("--access-log", action="store_true", help="log every request to stderr")
    spec_options(sp)
    sp.set_defaults(func=run)


def _check_options(args) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    for flag, value in (
        ("--workers", args.workers),
        ("--max-body-bytes", args.max_body_bytes),
        ("--max-batch", args.max_batch),
    ):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if args.batch_delay_ms is not None:
        if not args.dynamic_batching:
            raise UsageError("--batch-delay-ms goes with --dynamic-batching")
        if not 0 <= args.batch_delay_ms <= 10_000:
            raise UsageError(
                f"--batch-delay-ms must be between 0 and 10000, got {args.batch_delay_ms}"
            )
    if args.weights is not None and len(args.model) > 1:
        raise UsageError("--weights goes with a single spec")
    for mod in ("starlette", "uvicorn", "prometheus_client"):
        try:
            __import__(mod)
        except ImportError:
            raise UsageError(MISSING.format(name=mod)) from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    family, kind, proto, _, addr = infos[0]
    # proto IPPROTO_TCP (not 0): asyncio then sets TCP_NODELAY on each connection (else Nagle's
    # algorithm holds back a response's second write ~40 ms for the client's delayed ACK)
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def _source(args, path: str):
    """(model name, ONNX source): an .onnx file (named by its stem), or a spec built to ONNX as
    `netspec build --target onnx` builds it (named by the spec's name)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        if args.weights is not None:
            raise UsageError(f"--weights goes with a spec, not with an .onnx model ({path})")
        if not p.is_file():
            raise UsageError(f"no such file: {path}")
        return p.stem, str(p)
    from ..api import compile

    graph = load_spec(args, path)
    return graph.name, compile(graph, target="onnx", weights=args.weights).SerializeToString()


def run(args) -> int:
    _check_options(args)
    from ..serve.app import create_app
    from ..serve.defaults import DEFAULT_BATCH_DELAY_MS
    from ..serve.model import Model

    sources = []
    for path in args.model:
        name, source = _source(args, path)
        if any(name == n for n, _ in sources):
            raise UsageError(f"two models are named {name!r}; each model needs its own name")
        sources.append((name, source))
    delay = args.batch_delay_ms if args.batch_delay_ms is not None else DEFAULT_BATCH_DELAY_MS

    from ..targets.onnx.run import RunError

    try:
        models = [Model(n, s, args.provider, args.max_batch) for n, s in sources]
    except RunError as e:  # its text says `netspec run`; the message and hint are the same
        hint = f"\n  hint: {e.hint}" if e.hint else ""
        raise UsageError(f"{e.message}{hint}") from None
    if args.dynamic_batching:
        for m in models:
            if not m.batched:
                raise UsageError(
                    f"--dynamic-batching: model '{m.name}' has an input or output whose first "
                    f"axis is not dynamic, so requests cannot be stacked"
                )
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    provider = models[0].provider
    note = f" (CUDA not used: {models[0].cuda_note})" if models[0].cuda_note else ""
    print(
        f"serving {', '.join(m.name for m in models)} at http://{shown}:{port} "
        f"(provider: {provider}{note}; {args.workers} worker(s)"
        f"{', dynamic batching' if args.dynamic_batching else ''})",
        flush=True,
    )
    if not _loopback(args.host):
        print(
            f"netspec serve: warning: listening on {args.host}, not loopback: anyone who can "
            f"reach it can run the models (there is no authentication)",
            file=sys.stderr,
            flush=True,
        )
    import uvicorn

    options = dict(log_level="warning", access_log=args.access_log, lifespan="on")
    try:
        if args.workers == 1:
            app = create_app(
                models,
                max_body_bytes=args.max_body_bytes,
                dynamic_batching=args.dynamic_batching,
                batch_delay_ms=delay,
            )
            uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
        else:
            del models  # each worker makes its own sessions
            _run_workers(args, sources, sock, delay, options)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def _run_workers(args, sources, sock, delay: float, options: dict) -> None:
    """`--workers N`: N processes (uvicorn's supervisor) share the socket; each loads the models
    from .onnx files (specs written to a private temporary folder) and metrics are gathered
    across processes in another (prometheus_client's multiprocess mode)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from ..serve.app import CONFIG_ENV

    with tempfile.TemporaryDirectory(prefix="netspec-serve-") as tmp:
        paths = []
        for name, source in sources:
            if isinstance(source, bytes):
                path = Path(tmp) / f"model-{len(paths)}.onnx"
                path.write_bytes(source)
                source = str(path)
            paths.append([name, os.path.abspath(source)])
        metrics_dir = Path(tmp) / "metrics"
        metrics_dir.mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        os.environ[CONFIG_ENV] = json.dumps(
            {
                "models": paths,
                "provider": args.provider,
                "max_batch": args.max_batch,
                "max_body_bytes": args.max_body_bytes,
                "dynamic_batching": args.dynamic_batching,
                "batch_delay_ms": delay,
            }
        )
        config = uvicorn.Config(
            "netspec.serve.app:app_from_env", factory=True, workers=args.workers, **options
        )
        Multiprocess(config, sockets=[sock]).run()
