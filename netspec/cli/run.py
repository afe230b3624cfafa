"""`netspec run MODEL.onnx --input NAME=FILE.npy...`: run an ONNX model on ONNX Runtime and
print (or save) its outputs. The session and the checks live in `targets.onnx.run`."""

from __future__ import annotations

import math
import os
import re
import sys
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
        out[name] = read_npy(Path(file), name)
    return out


NPY_HINT = "save each input with numpy.save(path, array) (text files such as CSV are not read)"


def read_npy(path: Path, name: str):
    """One `.npy` array, its header checked against the file's size before any data is read
    (a header declaring terabytes costs nothing); never a pickle."""
    import numpy as np

    from ..targets.onnx.run import RunError

    file = str(path)
    if path.is_dir():
        raise RunError(f"input file {file!r} (for {name!r}) is a folder", hint=NPY_HINT)
    if not path.is_file():
        raise RunError(f"input file {file!r} (for {name!r}) does not exist")
    with open(path, "rb") as f:
        start = f.read(6)
        if start[:4] == b"PK\x03\x04":
            raise RunError(
                f"input file {file!r} holds several arrays (an .npz); give one .npy per input"
            )
        if start != b"\x93NUMPY":
            raise RunError(
                f"input file {file!r} is not a readable .npy array (no .npy header)",
                hint=NPY_HINT,
            )
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except (ValueError, OSError, EOFError) as e:
            raise RunError(f"input file {file!r} is not a readable .npy array ({e})") from None
        if dtype.hasobject:
            raise RunError(
                f"input file {file!r} holds Python objects, which are not read (pickles)",
                hint=NPY_HINT,
            )
        need = math.prod(shape) * dtype.itemsize
        have = os.fstat(f.fileno()).st_size - f.tell()
        if need > have:
            raise RunError(
                f"input file {file!r} declares {need:,} bytes of data but holds {have:,}",
                hint="the file is truncated or its header is wrong; save it again",
            )
        f.seek(0)
        try:
            return np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise RunError(f"input file {file!r} is not a readable .npy array ({e})") from None


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


def file_names(names) -> dict[str, str]:
    """Each output's file name; two outputs whose names give the same file are an error (before
    anything is written)."""
    from ..targets.onnx.run import RunError

    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in names:
        f = file_name(name)
        if f.lower() in seen:  # case-insensitive file systems too
            raise RunError(
                f"outputs {seen[f.lower()]!r} and {name!r} would both be saved as {f}",
                hint="rename one of the model's outputs, or run without -o",
            )
        seen[f.lower()] = name
        out[name] = f
    return out


def save_outputs(outputs: dict, folder: str) -> list[Path]:
    """Every output as `<name>.npy` in `folder`, all or nothing (`outdir.commit`)."""
    import numpy as np

    from ..outdir import commit, output_error, prepare, remove_if_empty, staging

    names = file_names(outputs)
    root, created = prepare(folder)
    try:
        with staging(root, "run") as tmp:
            for name, a in outputs.items():
                try:
                    with open(tmp / names[name], "xb") as f:
                        np.save(f, a, allow_pickle=False)
                except OSError as e:
                    raise output_error(e, folder) from None
            return commit(tmp, root)
    except BaseException:
        if created:
            remove_if_empty(root)
        raise


def run(args) -> int:
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
        used, why = "openvino (CPU, f32)", None
    else:
        sess, used, why = make_session(args.model, args.provider)
        outputs = run_session(sess, inputs)
    if args.output:
        file_names(outputs)  # a clash is refused before anything is printed or written
    print(f"runtime: {used}" if args.runtime == "openvino" else f"provider: {used}")
    if why and args.provider == "auto":  # on stderr: stdout is the results
        print(f"netspec run: note: CUDA not used: {why}", file=sys.stderr)
    for name, a in outputs.items():
        print(f"{name}: shape {list(a.shape)} {a.dtype} {preview(a)}")
    if args.output:
        save_outputs(outputs, args.output)
        print(f"saved {len(outputs)} output(s) to {args.output}")
    return 0
