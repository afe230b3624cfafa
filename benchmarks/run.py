"""netspec's benchmarks, one command:

    python benchmarks/run.py [--quick] [--only SECTION,...] [--repeat N] [--write]

Sections (default: all, in this order): coldstart, export, scaling, inference, reference, gpu.
Each section runs in its own fresh Python process (so one section's frameworks, thread pools and
heap do not bleed into the next) and prints one table of figures measured side by side, with
the ratios. `--write` puts the tables, the machine, the date, the versions and the load average
into benchmarks/RESULTS.md (only the sections that ran are replaced; hand-written findings
outside the generated blocks are kept). No test asserts a time: this is the only place times
are judged, against the goals printed beside them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH, PY, Context, Table, loadavg, machine, pin_threads  # noqa: E402

SECTIONS = ["coldstart", "export", "scaling", "inference", "reference", "training", "gpu"]
RESULTS = BENCH / "RESULTS.md"
PACKAGES = [
    "netspec",
    "torch",
    "onnx",
    "onnxruntime-gpu",
    "onnxruntime",
    "onnxscript",
    "tensorflow",
    "keras",
    "numpy",
    "protobuf",
    "PyYAML",
    "safetensors",
]


def versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return out


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def section_worker(name: str, quick: bool, repeat: int, tmp: str, out: str) -> int:
    """Run one section in this (fresh) process and write its tables as JSON to `out`."""
    pin_threads()
    Path(tmp).mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=quick, repeat=repeat, tmp=Path(tmp), log=log)
    mod = importlib.import_module(name)
    t0 = time.perf_counter()
    tables = mod.run(ctx)
    data = {
        "tables": [asdict(t) for t in tables],
        "findings": ctx.findings,
        "seconds": time.perf_counter() - t0,
    }
    Path(out).write_text(json.dumps(data))
    return 0


def run_section(name: str, args, tmp: Path) -> dict:
    out = tmp / f"{name}.json"
    cmd = [
        PY,
        str(Path(__file__).resolve()),
        "--section-worker",
        name,
        "--repeat",
        str(args.repeat),
        "--tmp",
        str(tmp),
    ]
    if args.quick:
        cmd.append("--quick")
    cmd += ["--out", str(out)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL)  # the section logs to our stderr
    if p.returncode != 0 or not out.exists():
        t = Table(
            f"{name}: the section failed (exit {p.returncode}); see the log above",
            ["section"],
            [[name]],
        )
        return {
            "tables": [asdict(t)],
            "findings": [f"{name}: section failed"],
            "seconds": time.perf_counter() - t0,
        }
    return json.loads(out.read_text())


def header(
    started: str, load_start: str, load_end: str, argv: list[str], sections: list[str]
) -> str:
    m = machine()
    v = versions()
    lines = [
        f"- latest `--write` run: {started}, sections {', '.join(sections)} (each section's "
        "block below starts with the date and load of the run that wrote it)",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM; {m['os']}; "
        f"Python {m['python']}",
        "- threads: every contender pinned to 2 compute threads (OMP/MKL/TF env, "
        "torch.set_num_threads(2), ORT intra_op_num_threads=2, inter_op 1)",
        f"- load average (1/5/15 min) of that run at start: {load_start}; at end: {load_end}",
        "- versions: " + ", ".join(f"{k} {x}" for k, x in v.items()),
        f"- command: `python benchmarks/run.py {' '.join(argv)}`",
    ]
    return "\n".join(lines) + "\n"


def write_results(head: str, blocks: dict[str, str]) -> None:
    """Replace the generated header and the blocks of the sections that ran; keep the rest."""
    text = (
        RESULTS.read_text()
        if RESULTS.exists()
        else (
            "# Benchmark results\n\n"
            "Written by `python benchmarks/run.py --write`; everything between the `generated` "
            "markers is rewritten by it, the rest (findings) is hand-written.\n\n"
            "<!-- generated:header -->\n<!-- /generated:header -->\n\n"
            + "".join(
                f"## {s}\n\n<!-- generated:{s} -->\n<!-- /generated:{s} -->\n\n" for s in SECTIONS
            )
            + "## Findings\n\n(none yet)\n"
        )
    )

    def put(text: str, key: str, body: str) -> str:
        pat = re.compile(rf"<!-- generated:{key} -->.*?<!-- /generated:{key} -->", re.S)
        block = f"<!-- generated:{key} -->\n{body.rstrip()}\n<!-- /generated:{key} -->"
        if pat.search(text):
            return pat.sub(lambda _: block, text)
        return text.rstrip() + f"\n\n## {key}\n\n{block}\n"

    text = put(text, "header", head)
    for key, body in blocks.items():
        text = put(text, key, body)
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="fewer networks and runs (~2 min)")
    p.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections (default all: {','.join(SECTIONS)})",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed runs per contender (default 5; 3 with --quick); warm-ups extra",
    )
    p.add_argument("--write", action="store_true", help="rewrite benchmarks/RESULTS.md")
    p.add_argument("--gpu", action="store_true", help="add the gpu section to --only")
    p.add_argument("--section-worker", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.section_worker:
        return section_worker(args.section_worker, args.quick, args.repeat, args.tmp, args.out)

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.gpu and "gpu" not in only:
        only.append("gpu")
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    only = [s for s in SECTIONS if s in only]

    # Byte-compile netspec first, as installing a wheel does (site-packages, torch included, is
    # compiled by pip): without it every netspec process, whose environment may forbid writing
    # .pyc files, would recompile its ~40 modules (~30 ms) and the comparison would be unfair.
    subprocess.run(
        [PY, "-m", "compileall", "-q", str(BENCH.parent / "netspec")],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = loadavg()
    m = machine()
    print(
        f"netspec benchmarks, {started}: {m['cpu']}, {m['cores']} cores, {m['ram']}; "
        f"load {load_start}; repeat {args.repeat}{'; quick' if args.quick else ''}",
        flush=True,
    )
    results: dict[str, dict] = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="netspec-bench-") as tmp:
        for name in only:
            log(f"[{name}]")
            ls = loadavg()
            res = run_section(name, args, Path(tmp) / name)
            res["load_start"], res["load_end"] = ls, loadavg()
            results[name] = res
            for t in res["tables"]:
                print("\n" + Table(**t).text(), flush=True)
            log(f"[{name}] {res['seconds']:.0f} s, load {loadavg()}")
    load_end = loadavg()
    findings = [f for r in results.values() for f in r["findings"]]
    print("\n== Goals")
    for f in findings:
        print(f"  {f}")
    print(
        f"\ntotal {time.perf_counter() - t_all:.0f} s; load average at start {load_start}, "
        f"at end {load_end}"
    )
    if args.write:
        blocks = {}
        for name, res in results.items():
            body = (
                f"_{started}, load average {res.get('load_start', '?')} at the "
                f"section's start, {res.get('load_end', '?')} at its end; repeat "
                f"{args.repeat}{', quick' if args.quick else ''}; {res['seconds']:.0f} s._"
                "\n\n"
            )
            body += "\n".join(Table(**t).markdown() for t in res["tables"])
            if res["findings"]:
                body += "\nGoals:\n\n" + "".join(f"- {f}\n" for f in res["findings"])
            blocks[name] = body
        write_results(header(started, load_start, load_end, argv, list(results)), blocks)
        shown = RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS
        print(f"wrote {shown}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
