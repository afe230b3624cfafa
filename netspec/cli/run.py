"""`netspec run MODEL.onnx --input NAME=FILE.npy...`: run an ONNX model on ONNX Runtime and
print (or save) its outputs. The session and the checks live in `targets.onnx.run`."""

from __future__ import annotations

import re
from pathlib import Path


def add_parser(sub) -> None:
    sp = sub.add_parser("run", help="run an ONNX model on ONNX Runtime")
    sp.add_argument("model", metavar="MODEL.onnx")
    sp.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy")
    # the choices are targets.onnx.run.PROVIDERS (not imported here: it loads numpy; a test
    # checks they agree)
    sp.add_argument("--provider", default="auto", choices=["auto", "cuda", "cpu"])
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
    from ..targets.onnx.run import make_session, run_session

    inputs = parse_inputs(args.input)
    sess, used, why = make_session(args.model, args.provider)
    outputs = run_session(sess, inputs)
    if args.output:
        file_names(outputs)  # a clash is refused before anything is printed or written
    note = f" (CUDA not used: {why})" if why and args.provider == "auto" else ""
    print(f"provider: {used}{note}")
    for name, a in outputs.items():
        print(f"{name}: shape {list(a.shape)} {a.dtype} {preview(a)}")
    if args.output:
        save_outputs(outputs, args.output)
        print(f"saved {len(outputs)} output(s) to {args.output}")
    return 0
