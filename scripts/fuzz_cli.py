"""Fuzz the command line: random commands, options and input files (specs, weights, .npy,
folders, links, devices), each run in-process; any exit code 1 (an internal error, "please
report it") is printed with its arguments. Usage: python scripts/fuzz_cli.py SECONDS [SEED]."""

from __future__ import annotations

import io
import json
import os
import random
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netspec.cli import main  # noqa: E402

SPECS = sorted((ROOT / "specs").glob("*.yaml"))
SMALL = [p for p in SPECS if p.stat().st_size < 3000]


def files(d: Path, rng: random.Random) -> list[str]:
    """Hostile and ordinary input files in `d`."""
    out = []
    (d / "dir").mkdir(exist_ok=True)
    out.append(str(d / "dir"))
    out.append(str(d / "missing"))
    if not (d / "dangling").is_symlink():
        os.symlink(d / "nowhere", d / "dangling")
    out.append(str(d / "dangling"))
    out.append("/dev/null")
    text = rng.choice(SMALL).read_text()
    cut = text[: rng.randrange(len(text) + 1)]
    (d / "cut.yaml").write_text(cut)
    out.append(str(d / "cut.yaml"))
    (d / "bin.yaml").write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
    out.append(str(d / "bin.yaml"))
    (d / "x.csv").write_text("1,2,3\n")
    out.append(str(d / "x.csv"))
    for dtype in ("<f4", "<f8", "<i8", "|b1", "<c8"):
        np.save(d / f"a{dtype[1:]}.npy", np.ones((rng.randrange(1, 4), 3), dtype))
        out.append(str(d / f"a{dtype[1:]}.npy"))
    head = {
        "w": {
            "dtype": rng.choice(["F32", "BF16", "F8_E4M3", "BOOL", "XX"]),
            "shape": [rng.randrange(-1, 5)],
            "data_offsets": [0, rng.randrange(-4, 64)],
        }
    }
    t = json.dumps(head).encode()
    (d / "w.safetensors").write_bytes(len(t).to_bytes(8, "little") + t + bytes(16))
    out.append(str(d / "w.safetensors"))
    (d / "short.safetensors").write_bytes(b"\xff" * rng.randrange(12))
    out.append(str(d / "short.safetensors"))
    return out


def args(d: Path, rng: random.Random) -> list[str]:
    pool = files(d, rng)
    spec = str(rng.choice(SMALL)) if rng.random() < 0.7 else rng.choice(pool)
    cmd = rng.choice(["validate", "inspect", "build", "graph", "run", "schema"])
    a = [cmd]
    if cmd == "run":
        a.append(rng.choice([*pool, str(d / "out" / "mlp.onnx")]))
        for _ in range(rng.randrange(3)):
            a += ["--input", f"{rng.choice(['x', 'tokens', ''])}={rng.choice(pool)}"]
        if rng.random() < 0.5:
            a += ["-o", rng.choice([*pool, str(d / "runout")])]
        a += ["--provider", "cpu"]
        return a
    if cmd != "schema":
        a.append(spec)
    if cmd == "build":
        a += ["-t", "onnx", "-q"]
        a += ["-o", rng.choice([*pool, str(d / "out")])]
        if rng.random() < 0.5:
            a += ["--weights", rng.choice(pool)]
    if cmd == "graph":
        a += ["-o", rng.choice([*pool, str(d / "g.svg"), str(d / "g.mmd"), str(d / "g.dot")])]
    if cmd == "inspect" and rng.random() < 0.5:
        a += ["--dims", rng.choice(["tokens_1=5", "x=0", "a=b", "=", "tokens_1=99999999999"])]
    if rng.random() < 0.3:
        k = rng.choice(["hidden", "classes", "vocab", "x", ""])
        a += ["--set", f"{k}={rng.choice(['0', '-1', '1e400', 'null', '[1]', '99999999999', 'a'])}"]
    if rng.random() < 0.1:
        a += ["--max-params", rng.choice(["0", "-5", "1"])]
    return a


def run(seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    end = time.time() + seconds
    n = bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rc0, *_ = one(
            ["build", str(ROOT / "specs" / "mlp.yaml"), "-t", "onnx", "-q", "-o", str(d / "out")]
        )
        assert rc0 == 0
        while time.time() < end:
            a = args(d, rng)
            rc, out, err = one(a)
            n += 1
            if rc not in (0, 2):
                bad += 1
                print(f"rc={rc} netspec {' '.join(a)}\n{err[-600:]}", flush=True)
    print(f"{n} runs in {seconds:.0f} s, {bad} internal error(s)")
    return 1 if bad else 0


def one(a: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(a)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 0
    return rc, out.getvalue(), err.getvalue()


if __name__ == "__main__":
    sys.exit(run(float(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0))
