"""Shared machinery: timing (whole processes and in-process calls), peak memory, tables.

Everything here is standard library only, so that importing it costs nothing measurable and
imports no framework into the harness process.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:  # tools/ (random weights and inputs) is not installed
    sys.path.insert(0, str(ROOT))
PY = sys.executable
THREADS = 2  # every contender runs with the same number of compute threads

# the benchmarked networks' specs (torch-free here; benchmarks/models.py has their twins)
SPECS = {
    "mlp": ROOT / "specs/mlp.yaml",
    "resnet18": ROOT / "specs/resnet18.yaml",
    "resnet50": BENCH / "specs/resnet50.yaml",
    "char_lstm": ROOT / "specs/char_lstm.yaml",
    "deep_mlp": BENCH / "specs/deep_mlp.yaml",
}


def netspec_cmd() -> list[str]:
    """The installed `netspec` console script beside this interpreter (what a user runs)."""
    exe = Path(PY).with_name("netspec")
    return [str(exe)] if exe.exists() else [PY, "-m", "netspec"]


def proc_status_kb(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM: the resident set, its peak); -1 if
    missing."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def pinned_env(threads: int = THREADS) -> dict[str, str]:
    """The environment every subprocess contender gets: same thread counts for every library."""
    env = dict(os.environ)
    for k in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
    ):
        env[k] = str(threads)
    env["TF_NUM_INTEROP_THREADS"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("NETSPEC_DEBUG", None)
    return env


def pin_threads(threads: int = THREADS) -> None:
    """Pin the in-process frameworks (call before importing torch / TF / ORT sessions)."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[k] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# -- statistics ----------------------------------------------------------------------------------


@dataclass
class Sample:
    """Repeated measurements of one contender (seconds, or any unit)."""

    values: list[float] = field(default_factory=list)
    error: str | None = None
    peak_kb: int = 0  # whole processes: the largest peak RSS seen over the runs, KiB

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def min(self) -> float:
        return min(self.values) if self.values else float("nan")


def paired_ratio(a: Sample, b: Sample) -> float:
    """The median over rounds of a's time / b's time in the same round. In-process contenders
    run back to back in every round, so a load burst that slows one round slows both sides of
    its pair: the paired ratio is steadier than the ratio of the two medians. Falls back to
    the ratio of medians when the rounds do not pair up."""
    if not (a.ok and b.ok):
        return float("nan")
    if len(a.values) != len(b.values):
        return ratio(a, b)
    return statistics.median(x / y for x, y in zip(a.values, b.values, strict=True) if y > 0)


def ratio(a: Sample, b: Sample) -> float:
    """median(a) / median(b); nan when either failed."""
    if not (a.ok and b.ok) or b.median == 0:
        return float("nan")
    return a.median / b.median


# -- whole processes -----------------------------------------------------------------------------


@dataclass
class Proc:
    rc: int
    wall: float  # seconds, perf_counter around the process
    maxrss_kb: int  # this child's peak resident set (wait4's rusage), KiB
    stdout: str
    stderr: str


def run_process(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 600,
) -> Proc:
    """Run one process; wall time by perf_counter around it, peak RSS from wait4's rusage
    (per child, unlike RUSAGE_CHILDREN, which is a high-water mark over all children)."""
    env = pinned_env() if env is None else env
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd
        )
        killer = threading.Timer(timeout, p.kill)  # a blocking wait4, no polling
        killer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Proc(
            p.returncode,
            wall,
            int(ru.ru_maxrss),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def _order(d: dict, rnd: int) -> list:
    """The contenders' order in round `rnd`: a shuffle (seeded, so a run is repeatable) in
    which no contender runs twice in a row across the rounds' boundary. A fixed order, even one
    reversed every other round, gives some contender a fixed predecessor: with three or more,
    the reversal made the first one run twice in a row every other round (warm caches: 2-8%
    faster for small models), and put another right after PyTorch's spinning threads; an A/A
    control (one ONNX model in two sessions) read 0.92-0.99x. Random orders share such effects
    out evenly."""
    items = list(d.items())
    if len(items) < 3:  # two contenders alternate: each always follows the other
        return items
    rng = random.Random(0)
    order, prev_last = items, None
    for _ in range(rnd + 1):
        while True:
            order = rng.sample(items, len(items))
            if order[0][0] != prev_last:
                break
        prev_last = order[-1][0]
    return order


def time_processes(
    contenders: dict[str, Callable[[int], list[str]] | list[str]],
    repeat: int,
    warmup: int = 1,
    env: dict[str, str] | None = None,
    log: Callable[[str], None] = print,
    cleanup: Callable[[], None] | None = None,
) -> dict[str, Sample]:
    """Time whole processes, the contenders interleaved round by round, the order reversed
    every other round (so slow drifts in the machine's load hit all of them alike). `warmup`
    rounds first, discarded (page cache, .pyc).
    A contender is an argv or a function of the round index giving one. A contender that fails
    once is dropped, with its error kept."""
    samples = {name: Sample() for name in contenders}
    for rnd in range(warmup + repeat):
        for name, argv in _order(contenders, rnd):
            s = samples[name]
            if s.error:
                continue
            args = argv(rnd) if callable(argv) else argv
            p = run_process(args, env=env)
            if cleanup:
                cleanup()
            if p.rc != 0:
                tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:] or ["?"]
                if p.rc == -9:  # SIGKILL: our timeout, or the kernel's OOM killer
                    tail = [
                        f"killed after {p.wall:.0f} s (timeout or out of memory), "
                        f"peak RSS {p.maxrss_kb / 1024:.0f} MiB"
                    ]
                s.error = f"exit {p.rc}: {tail[0][:200]}"
                log(f"    {name}: FAILED ({s.error})")
                continue
            if rnd >= warmup:
                s.values.append(p.wall)
                s.peak_kb = max(s.peak_kb, p.maxrss_kb)
        log(
            "    round {}/{}{}".format(
                rnd + 1, warmup + repeat, " (warm-up)" if rnd < warmup else ""
            )
        )
    return samples


# -- in-process calls ----------------------------------------------------------------------------


def time_calls(
    fns: dict[str, Callable[[], object]],
    repeat: int,
    number: int = 1,
    warmup: int = 2,
    budget_s: float | None = None,
) -> dict[str, Sample]:
    """Time in-process calls: `warmup` calls each first (excluded), then `repeat` rounds, each
    contender in turn (interleaved; the order reversed every other round), each round timing
    `number` consecutive calls and recording the time per call. `budget_s` caps the rounds
    when one call is slow (at least 3 rounds)."""
    samples = {name: Sample() for name in fns}
    for name, fn in fns.items():
        try:
            for _ in range(warmup):
                fn()
        except Exception as e:  # noqa: BLE001 - reported in the table
            samples[name].error = f"{type(e).__name__}: {str(e)[:160]}"
    t_start = time.perf_counter()
    for rnd in range(repeat):
        for name, fn in _order(fns, rnd):
            s = samples[name]
            if s.error:
                continue
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            s.values.append((time.perf_counter() - t0) / number)
        if budget_s is not None and rnd >= 2 and time.perf_counter() - t_start > budget_s:
            break
    return samples


def rounds_for(t_call: float, number: int, repeat: int, budget_s: float) -> int:
    """At least `repeat` rounds; more (up to 40) while they fit in `budget_s` per contender,
    so that fast calls get enough rounds for a steady median on a noisy machine."""
    return max(repeat, min(40, int(budget_s / max(t_call * number, 1e-6))))


def calls_for(seconds_per_call: float, target_s: float = 0.05) -> int:
    """How many calls make one timed round last about `target_s` (timer resolution vs noise)."""
    if seconds_per_call <= 0:
        return 100
    return max(1, min(1000, int(target_s / seconds_per_call)))


# -- reporting -----------------------------------------------------------------------------------


def fmt_s(x: float) -> str:
    if x != x:  # nan
        return "-"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms" if x >= 0.1 else f"{x * 1e3:.2f} ms"
    return f"{x * 1e6:.1f} us"


def fmt_ratio(x: float, digits: int = 2) -> str:
    if x != x:
        return "-"
    return f"{x:.{digits}f}x" if x < 100 else f"{x:.0f}x"


def fmt_mb(nbytes: float) -> str:
    if nbytes != nbytes:
        return "-"
    return f"{nbytes / 2**20:.1f} MiB"


def fmt_sample(s: Sample) -> str:
    if s.error:
        return "failed"
    return f"{fmt_s(s.median)} (min {fmt_s(s.min)})"


@dataclass
class Table:
    """One results table: printed to the terminal and written into RESULTS.md."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in self.columns) + " |")
        lines.append(
            "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + " |"
        )
        for r in self.rows:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        widths = [
            max(len(c), *(len(r[i]) for r in self.rows)) if self.rows else len(c)
            for i, c in enumerate(self.columns)
        ]
        out = [f"== {self.title}"]
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(self.columns, widths, strict=True))
            )
        )
        out.append("  ".join("-" * w for w in widths))
        for r in self.rows:
            out.append(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                )
            )
        out += [f"  * {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def goal(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "MISSED")


@dataclass
class Context:
    """What a section gets from run.py."""

    quick: bool
    repeat: int
    tmp: Path
    log: Callable[[str], None] = print
    findings: list[str] = field(default_factory=list)  # one line per goal verdict


def replace_section(path: Path, begin: str, end: str, block: str, heading: str = "") -> None:
    """Put `block` between the `begin` and `end` markers of `path` (RESULTS.md), replacing what
    is there, or append it (after `heading`) when the markers are missing; written atomically."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    marked = f"{begin}\n{block}\n{end}"
    if begin in text and end in text:
        a, b = text.index(begin), text.index(end) + len(end)
        text = text[:a] + marked + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + heading + marked + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "?"
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
