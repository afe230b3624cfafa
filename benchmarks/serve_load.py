"""Load on `netspec serve`: N concurrent clients for D seconds against ResNet-18 and the digits
CNN, side by side with the same load on a plain ONNX Runtime session in-process (the ceiling).

    python benchmarks/serve_load.py [--duration 60] [--clients 64] [--models resnet18,digits_cnn]
                                    [--warmup 3] [--write]

Per model, three contenders, one after the other, each for `--duration` seconds after
`--warmup` seconds not counted:
- `serve`: `netspec serve SPEC --provider cpu` in a subprocess on a loopback port; the clients
  are Triton's asyncio HTTP client (`tritonclient.http.aio`), one request of batch 1 (binary
  tensors) at a time each, in this process;
- `serve --dynamic-batching`: the same, the server gathering concurrent requests (max batch 64,
  2 ms delay);
- `ORT in-process`: N threads each calling `session.run` on batch 1 in a loop, the session made
  as `netspec run` and the server make it (default options: ORT's own thread count).
A request counts when it ends inside the measured window (its latency is from its send to its
answer). Each contender's first answer is checked against the in-process session's (exactly;
within 1e-5 when batched). Printed: requests, failed requests, throughput, p50/p99 latency, and each
server's throughput as a ratio of the ceiling's. `--write` puts the table into RESULTS.md
between the `serve_load` markers. Clients and server share this machine's cores, so the
server's figures include the clients' cost; the ceiling has no HTTP, no JSON, no client.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from common import loadavg, replace_section

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
SPECS = {"resnet18": ROOT / "specs/resnet18.yaml", "digits_cnn": ROOT / "specs/digits_cnn.yaml"}
RESULTS = BENCH / "RESULTS.md"
MARK = ("<!-- serve_load -->", "<!-- /serve_load -->")


def sample(graph) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        n: rng.standard_normal([1, *v.shape]).astype(np.float32) for n, v in graph.inputs.items()
    }


class Tally:
    def __init__(self):
        self.latencies: list[float] = []
        self.failed = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def add(self, seconds: float | None, error: str | None = None) -> None:
        with self.lock:
            if error is None:
                self.latencies.append(seconds)
            else:
                self.failed += 1
                if len(self.errors) < 3:
                    self.errors.append(error)


def summary(name: str, tally: Tally, seconds: float) -> dict:
    lat = np.array(tally.latencies) if tally.latencies else np.array([np.nan])
    return {
        "contender": name,
        "requests": len(tally.latencies),
        "failed": tally.failed,
        "throughput": len(tally.latencies) / seconds,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "errors": tally.errors,
    }


def ort_load(session, feeds, clients: int, warmup: float, duration: float) -> Tally:
    tally = Tally()
    start = time.perf_counter()
    counted, stop = start + warmup, start + warmup + duration

    def worker():
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            try:
                session.run(None, feeds)
                error = None
            except Exception as e:  # counted as a failure
                error = f"{type(e).__name__}: {e}"
            t1 = time.perf_counter()
            if counted <= t1 <= stop:
                tally.add(t1 - t0, error)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


async def http_load(address, name, feeds, clients, warmup, duration) -> tuple[Tally, dict]:
    import tritonclient.http.aio as aio
    from tritonclient.http import InferInput

    tally = Tally()
    inputs = []
    for n, a in feeds.items():
        i = InferInput(n, list(a.shape), "FP32")
        i.set_data_from_numpy(a, binary_data=True)
        inputs.append(i)
    client = aio.InferenceServerClient(address, conn_limit=clients)
    first = await client.infer(name, inputs)
    first_out = {o["name"]: first.as_numpy(o["name"]) for o in first.get_response()["outputs"]}
    loop = asyncio.get_running_loop()
    start = loop.time()
    counted, stop = start + warmup, start + warmup + duration

    async def one():
        while True:
            t0 = loop.time()
            if t0 >= stop:
                return
            try:
                await client.infer(name, inputs)
                error = None
            except Exception as e:  # counted as a failure
                error = f"{type(e).__name__}: {e}"
            t1 = loop.time()
            if counted <= t1 <= stop:
                tally.add(t1 - t0, error)

    await asyncio.gather(*(one() for _ in range(clients)))
    await client.close()
    return tally, first_out


def serve(spec: Path, extra: list[str]):
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netspec", "serve", str(spec), "--provider", "cpu", "--port", "0",
         *extra],
        stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT,
    )  # fmt: skip
    line = proc.stdout.readline()
    m = re.search(r"at http://(\S+) ", line)
    if not m:
        proc.kill()
        err.seek(0)
        raise SystemExit(f"netspec serve did not start: {line!r} {err.read()[-2000:]}")
    return proc, m.group(1)


def run(models: list[str], clients: int, warmup: float, duration: float) -> list[dict]:
    import netspec
    from netspec.targets.onnx.run import make_session

    rows = []
    for model in models:
        graph = netspec.load(SPECS[model])
        feeds = sample(graph)
        session, _, _ = make_session(netspec.compile(graph, target="onnx"), "cpu")
        names = [o.name for o in session.get_outputs()]
        want = dict(zip(names, session.run(None, feeds), strict=True))
        for label, extra in (("serve", []), ("serve --dynamic-batching", ["--dynamic-batching"])):
            proc, address = serve(SPECS[model], extra)
            try:
                tally, got = asyncio.run(
                    http_load(address, graph.name, feeds, clients, warmup, duration)
                )
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            for n, a in want.items():
                tol = 1e-5 if extra else 0
                np.testing.assert_allclose(got[n], a, rtol=tol, atol=tol, err_msg=f"{label} {n}")
            rows.append({"model": model, **summary(label, tally, duration)})
            print(fmt_row(rows[-1]), flush=True)
        tally = ort_load(session, feeds, clients, warmup, duration)
        rows.append({"model": model, **summary("ORT in-process (ceiling)", tally, duration)})
        print(fmt_row(rows[-1]), flush=True)
        del session
    return rows


def fmt_row(r: dict) -> str:
    return (
        f"{r['model']:<11} {r['contender']:<26} {r['requests']:>7} req  {r['failed']} failed  "
        f"{r['throughput']:8.1f}/s  p50 {ms(r['p50']):>9}  p99 {ms(r['p99']):>9}"
        + (f"  errors: {r['errors']}" if r["errors"] else "")
    )


def ms(seconds: float) -> str:
    """Milliseconds with three significant digits (0.0213 ms, 4.56 ms, 1234 ms)."""
    v = seconds * 1000
    return f"{v:.0f} ms" if v >= 100 else f"{v:.3g} ms"


def table(rows: list[dict], args, load: tuple[str, str]) -> str:
    ceiling = {r["model"]: r["throughput"] for r in rows if r["contender"].startswith("ORT")}
    lines = [
        f"_{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load[0]} at the start, "
        f"{load[1]} at the end; {args.clients} concurrent clients, {args.duration:g} s each "
        f"(after {args.warmup:g} s of warm-up), batch 1 per request, CPU provider; "
        f"`python benchmarks/serve_load.py --duration {args.duration:g}`._",
        "",
        "| model | contender | requests | failed | throughput | p50 latency | p99 latency "
        "| throughput / ceiling |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ratio = r["throughput"] / ceiling[r["model"]] if ceiling.get(r["model"]) else float("nan")
        lines.append(
            f"| {r['model']} | {r['contender']} | {r['requests']} | {r['failed']} | "
            f"{r['throughput']:.1f}/s | {ms(r['p50'])} | {ms(r['p99'])} | "
            f"{ratio:.3f}x |"
        )
    return "\n".join(lines)


def write(text: str) -> None:
    replace_section(RESULTS, *MARK, text, heading="## serve\n\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds per contender (60)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds not counted first (3)")
    p.add_argument("--clients", type=int, default=64, help="concurrent clients (64)")
    p.add_argument("--models", default="resnet18,digits_cnn", help="resnet18,digits_cnn")
    p.add_argument("--write", action="store_true", help="put the table into RESULTS.md")
    args = p.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in SPECS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(SPECS)}")
    start = loadavg()
    rows = run(models, args.clients, args.warmup, args.duration)
    text = table(rows, args, (start, loadavg()))
    print()
    print(text)
    if args.write:
        write(text)
        print(f"\nwritten to {RESULTS}")
    failed = sum(r["failed"] for r in rows)
    if failed:
        print(f"\n{failed} request(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
