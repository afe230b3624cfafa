"""Quantized and half-precision variants of netspec's ONNX model (`netspec build --quantize`).

- `int8` without calibration data: dynamic quantization (ONNX Runtime's `quantize_dynamic`):
  int8 weights, activations quantized on the fly per batch; no data needed.
- `int8` with `--calibrate FILE`: static quantization (`quantize_static`, QDQ format, weights per
  channel), activation ranges measured on the calibration examples (MinMax).
- `fp16`: weights and computation in float16 (ONNX Runtime's float16 converter), inputs and
  outputs kept float32, so the same inputs feed both models; recurrent layers stay float32.

The variant is written beside the float model as `<name>.int8.onnx` or `<name>.fp16.onnx`.
Calibration data: an `.npz` with one array per model input (named as the inputs), an `.npy` or
a `.csv` (numbers only, one example per row, flattened) for a model with one input. Files are
read without pickles and bounded in size; every mismatch is a located error.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...errors import SpecError, did_you_mean
from ...ir import Graph

MODES = ("int8", "fp16")
MAX_CALIBRATION_BYTES = 1 << 30
MAX_CALIBRATION_ROWS = 4096  # static quantization's calibration runs every row
CALIBRATION_BATCH = 64
RECURRENT_OPS = ("LSTM", "GRU", "RNN")
SUFFIX = {"int8": ".int8.onnx", "fp16": ".fp16.onnx"}


def variant_name(graph: Graph, mode: str) -> str:
    return f"{graph.name}{SUFFIX[mode]}"


def read_calibration(path: str | os.PathLike, graph: Graph) -> dict[str, np.ndarray]:
    """The calibration examples of `path`, one array per input of `graph` (batch first, the
    inputs' dtypes), checked against the inputs' shapes."""
    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise SpecError("the calibration file does not exist", file=where)
    if p.stat().st_size > MAX_CALIBRATION_BYTES:
        raise SpecError(
            f"the calibration file is over {MAX_CALIBRATION_BYTES >> 20} MiB",
            file=where,
            hint=f"a few hundred examples are enough (at most {MAX_CALIBRATION_ROWS} are used)",
        )
    names = list(graph.inputs)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if len(names) == 1 and len(arrays) == 1:
                arrays = {names[0]: next(iter(arrays.values()))}
        elif suffix in (".npy", ".csv"):
            if len(names) != 1:
                raise SpecError(
                    f"the model has {len(names)} inputs ({', '.join(names)}); a {suffix} file "
                    "holds one",
                    file=where,
                    hint="give an .npz with one array per input, named as the inputs",
                )
            if suffix == ".npy":
                a = np.load(p, allow_pickle=False)
            else:
                a = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2)
            arrays = {names[0]: a}
        else:
            raise SpecError(
                f"the calibration file must be .npz, .npy or .csv, not {suffix or 'no suffix'!r}",
                file=where,
            )
    except SpecError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise SpecError(f"cannot read the calibration data: {e}", file=where) from None
    for k in arrays:
        if k not in graph.inputs:
            g = did_you_mean(k, names)
            raise SpecError(
                f"the calibration data has an array {k!r}, but the model's inputs are "
                f"{', '.join(names)}",
                file=where,
                hint=f"did you mean '{g}'?" if g else None,
            )
    out = {}
    rows = None
    for name, v in graph.inputs.items():
        if name not in arrays:
            raise SpecError(f"the calibration data has no array for input {name!r}", file=where)
        a = arrays[name]
        want = v.shape
        if suffix == ".csv" and all(isinstance(d, int) for d in want):
            size = int(np.prod(want))
            if a.shape[1] != size:
                raise SpecError(
                    f"each row must hold {size} numbers (input {name!r} is {list(want)}), "
                    f"got {a.shape[1]}",
                    file=where,
                )
            a = a.reshape(len(a), *want)
        if a.ndim != len(want) + 1 or any(
            isinstance(d, int) and d != n for d, n in zip(want, a.shape[1:], strict=True)
        ):
            shown = ", ".join("?" if not isinstance(d, int) else str(d) for d in want)
            raise SpecError(
                f"input {name!r}: the calibration array must be [N, {shown}], got {list(a.shape)}",
                file=where,
            )
        if a.dtype.kind not in "iufb" or (a.dtype.kind == "f" and not np.isfinite(a).all()):
            raise SpecError(
                f"input {name!r}: the calibration array must hold finite numbers", file=where
            )
        if rows is not None and len(a) != rows:
            raise SpecError(
                f"the calibration arrays have different numbers of rows ({rows} and {len(a)})",
                file=where,
            )
        rows = len(a)
        dtype = np.int64 if v.dtype == "int64" else np.float32
        out[name] = np.ascontiguousarray(a[:MAX_CALIBRATION_ROWS], dtype=dtype)
    if not rows:
        raise SpecError("the calibration data has no examples", file=where)
    return out


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol: batches of the calibration examples."""

    def __init__(self, data: Mapping[str, np.ndarray]):
        n = len(next(iter(data.values())))
        self._batches = iter(
            [
                {k: a[i : i + CALIBRATION_BATCH] for k, a in data.items()}
                for i in range(0, n, CALIBRATION_BATCH)
            ]
        )

    def get_next(self):
        return next(self._batches, None)


def quantize(
    model: str | os.PathLike,
    dest: str | os.PathLike,
    mode: str,
    calibration: Mapping[str, np.ndarray] | None = None,
) -> str:
    """Write the `mode` variant of the float32 model file `model` to `dest`; returns what was
    done ("int8 dynamic", "int8 static", "fp16")."""
    if mode not in MODES:
        raise SpecError(f"unknown quantization {mode!r}", hint="use int8 or fp16")
    if mode == "fp16":
        if calibration is not None:
            raise SpecError("--calibrate goes with --quantize int8 (fp16 needs no data)")
        import onnx
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

        proto = onnx.load(str(model))
        blocked = list(DEFAULT_OP_BLOCK_LIST)
        if any(n.op_type in RECURRENT_OPS for n in proto.graph.node):
            # recurrent layers stay float32, and so do the transposes and squeezes around them:
            # ONNX Runtime 1.31's CPU provider has no float16 LSTM / GRU / RNN kernel, and with
            # only the recurrent nodes kept float32 it crashed on the model (a segfault)
            blocked += [*RECURRENT_OPS, "Transpose", "Squeeze"]
        converted = convert_float_to_float16(proto, keep_io_types=True, op_block_list=blocked)
        onnx.save(converted, str(dest))
        return "fp16"
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix=".netspec-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        with contextlib.redirect_stdout(io.StringIO()):
            quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
            if calibration is None:
                quantize_dynamic(str(prepared), str(dest), weight_type=QuantType.QInt8)
                return "int8 dynamic"
            quantize_static(
                str(prepared),
                str(dest),
                _Reader(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
            )
    return "int8 static"


def write_variant(
    graph: Graph,
    outdir: str | os.PathLike,
    mode: str,
    calibration: Mapping[str, np.ndarray] | None = None,
) -> tuple[Path, str, float]:
    """Quantize `outdir/<name>.onnx` (written by the build) into `outdir/<name>.int8.onnx` or
    `.fp16.onnx`, all or nothing: (the file, what was done, its size over the float model's)."""
    from ...outdir import commit, staging

    root = Path(outdir).resolve()
    model = root / f"{graph.name}.onnx"
    with staging(root, "quantize") as tmp:
        done = quantize(model, tmp / variant_name(graph, mode), mode, calibration)
        (path,) = commit(tmp, root)
    return path, done, path.stat().st_size / model.stat().st_size
