"""`netspec run MODEL.onnx --input NAME=FILE.npy...`: run an ONNX model on ONNX Runtime and
print (or save) its outputs. The session and the checks live in `targets.onnx.run`."""

from __future__ import annotations

import re
from pathlib import Path


def add_parser(sub) -> None:
    sp = sub.add_parser("run", help="run an ONNX model on ONNX Runtime (or OpenVINO)")
    sp.add_argument("model", metavar="MODEL.onnx")
    sp.add_argument(
        "--runtime",
        default="onnxruntime",
        choices=["onnxruntime", "openvino"],
        help="the runtime (openvino: OpenVINO's CPU plugin, f32)",
    )
    sp.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy")
    # the choices are targets.onnx.run.PROVIDERS (not imported here: it loads numpy; a test
    # checks they agree)
    sp.add_argument("--provider", default="auto", choices=["auto", "cuda", "tensorrt", "cpu"])
    sp.add_argument("-o", "--output", metavar="DIR", help="save each output as DIR/<name>.npy")
    sp.set_defaults(func=run)


def parse_inputs(pairs: list[str]) -> dict:
    """`NAME=FILE.npy` pairs read as arrays (never pickles)."""
    import numpy as np

    from ..targets.onnx.run import RunError

    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise RunError(f"--input takes NAME=FILE.npy, got {item!r}")
        name, file = (s.strip() for s in item.split("=", 1))
        if not name or not file:
            raise RunError(f"--input takes NAME=FILE.npy, got {item!r}")
        if name in out:
            raise RunError(f"input {name!r} is given twice")
        path = Path(file)
        if not path.is_file():
            raise RunError(f"input file {file!r} (for {name!r}) does not exist")
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise RunError(f"input file {file!r} is not a readable .npy array ({e})") from None
        if not isinstance(a, np.ndarray):
            raise RunError(
                f"input file {file!r} holds several arrays (an .npz); give one .npy per input"
            )
        out[name] = a
    return out


def preview(a, n: int = 6) -> str:
    """The first `n` values of an array, for the printed summary."""
    flat = a.reshape(-1)[:n]
    if a.dtype.kind == "f":
        vals = ", ".join(f"{float(v):.6g}" for v in flat)
    else:
        vals = ", ".join(str(v) for v in flat.tolist())
    return f"[{vals}{', ...' if a.size > n else ''}]"


def file_name(name: str) -> str:
    """A safe `.npy` file name for an output name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")
    return (safe or "output") + ".npy"


def run(args) -> int:
    import numpy as np

    from ..targets.onnx.run import RunError, make_session, run_session

    inputs = parse_inputs(args.input)
    if args.runtime == "openvino":
        from ..deploy.openvino import Session

        if args.provider not in ("auto", "cpu"):
            raise RunError(
                f"--provider {args.provider} is an ONNX Runtime provider; OpenVINO runs on the CPU",
                hint="leave out --provider with --runtime openvino",
            )
        outputs = Session(args.model).run(inputs)
        print("runtime: openvino (CPU, f32)")
    else:
        sess, used, why = make_session(args.model, args.provider)
        outputs = run_session(sess, inputs)
        note = f" (CUDA not used: {why})" if why and args.provider == "auto" else ""
        print(f"provider: {used}{note}")
    outdir = Path(args.output) if args.output else None
    if outdir:
        outdir.mkdir(parents=True, exist_ok=True)
    for name, a in outputs.items():
        print(f"{name}: shape {list(a.shape)} {a.dtype} {preview(a)}")
        if outdir:
            np.save(outdir / file_name(name), a, allow_pickle=False)
    if outdir:
        print(f"saved {len(outputs)} output(s) to {outdir}")
    return 0
