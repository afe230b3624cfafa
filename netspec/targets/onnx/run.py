"""Run an ONNX model on ONNX Runtime (the library behind `netspec run`, which lives in `cli.run`).

`provider`: `cpu`; `cuda` or `tensorrt` (an error naming the providers this build has, never a
silent fallback, when that execution provider cannot run here); `auto` (CUDA when it can run,
else CPU; the provider that ran is reported). On CUDA and TensorRT the session runs with IO
binding (inputs copied to the device once, outputs bound there and copied back).
ONNX Runtime falls back to the CPU silently when the CUDA provider fails to load (missing CUDA
or cuDNN libraries, no GPU), so the session's actual providers are checked, and ONNX Runtime's
log text says why.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SpecError, did_you_mean, printable

CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
CPU = "CPUExecutionProvider"
PROVIDERS = ("auto", "cuda", "tensorrt", "cpu")
DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


class RunError(SpecError):
    """A user error of `netspec run` (exit code 2): bad model file, inputs or provider."""

    def __str__(self) -> str:
        text = f"netspec run: error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return printable(text, lines=True)


class RuntimeUnavailable(RunError):
    """The requested execution provider cannot run on this machine (exit code 2)."""


# -- sessions ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _captured_stderr() -> Iterator[io.StringIO]:
    """Capture what native code writes to file descriptor 2 (ONNX Runtime's log)."""
    buf = io.StringIO()
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2: nothing to capture
        yield buf
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield buf
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            buf.write(tmp.read().decode("utf-8", "replace"))


def cuda_failure_reason(log: str) -> str:
    """The useful part of ONNX Runtime's log when the CUDA provider did not load."""
    log = re.sub(r"\x1b\[[0-9;]*m", "", log)
    parts = []
    m = re.search(r"with error: ([^\n]+)", log)
    if m:
        parts.append(m.group(1).strip())
    m = re.search(r"CUDA failure \d+: ([^;\n]+)", log)
    if m:
        parts.append(m.group(1).strip())
    m = re.search(r"Require ([^.]+\.\*(?: and [^.]+\.\*)?)", log)
    if m:
        parts.append(f"ONNX Runtime requires {m.group(1)}")
    if not parts:
        lines = [ln.strip() for ln in log.splitlines() if "CUDA" in ln or "cuda" in ln]
        if lines:
            parts.append(re.sub(r"^.*?\] ", "", lines[0])[:300])
    return "; ".join(parts) or "the provider failed to initialize"


def _ort():
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - an install problem
        raise RunError("onnxruntime is not installed", hint="pip install 'netspec[onnx]'") from None
    return onnxruntime


def _model_bytes(model: Any) -> bytes | str:
    if isinstance(model, bytes):
        return model
    if hasattr(model, "SerializeToString"):
        return model.SerializeToString()
    path = Path(model)
    if path.is_dir():
        raise RunError(f"model file {str(path)!r} is a folder", hint="give the .onnx file in it")
    if not path.is_file():
        raise RunError(f"model file {str(path)!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(4096)
    if path.suffix.lower() in (".yaml", ".yml") or head.lstrip().startswith(b"netspec:"):
        raise RunError(
            f"{str(path)!r} is a spec, not an ONNX model",
            hint=f"build it first (netspec build {path} -t onnx) and run the .onnx it writes",
        )
    return str(path)


def make_session(model: Any, provider: str = "auto") -> tuple[Any, str, str | None]:
    """An InferenceSession on the asked provider: (session, provider used, why CUDA did not run
    or None). `provider="cuda"` raises RuntimeUnavailable instead of falling back."""
    if provider not in PROVIDERS:
        raise RunError(f"unknown provider {provider!r}", hint="use auto, cuda, tensorrt or cpu")
    ort = _ort()
    src = _model_bytes(model)
    opts = ort.SessionOptions()
    why = None
    if provider in ("auto", "cuda", "tensorrt"):
        want = TENSORRT if provider == "tensorrt" else CUDA
        available = ort.get_available_providers()
        if want not in available:
            why = (
                f"this onnxruntime build ({ort.__version__}) has no {_short(want)} execution "
                f"provider (it has {', '.join(available)})"
            )
        else:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
                ort.preload_dlls()  # CUDA / cuDNN from nvidia-* wheels, when installed
            # TF32 off: float32 means float32 (the design page's parity rule)
            chain = [(CUDA, {"use_tf32": "0"}), CPU]
            if want == TENSORRT:
                chain.insert(0, (TENSORRT, {"trt_fp16_enable": "False"}))
            printed = io.StringIO()  # ONNX Runtime prints its fallback from TensorRT
            with _captured_stderr() as log, contextlib.redirect_stdout(printed):
                try:
                    sess = _session(ort, src, opts, chain)
                    error = None
                except RunError:
                    raise
                except Exception as e:  # the provider present but failing at session creation
                    sess, error = None, str(e)
            if sess is not None and want in sess.get_providers():
                return sess, want, None
            why = cuda_failure_reason(error or log.getvalue())
            if want == TENSORRT and "install TensorRT libraries" in printed.getvalue():
                why = f"the TensorRT libraries (libnvinfer) are not installed; {why}"
            if provider == "auto" and sess is not None:  # ONNX Runtime fell back to the CPU
                return sess, sess.get_providers()[0], why
        if provider != "auto":
            raise RuntimeUnavailable(
                f"--provider {provider}: the {_short(want)} execution provider cannot run here: "
                f"{why}; this onnxruntime build lists {', '.join(map(_short, available))}; "
                "use --provider cpu (or auto)"
            )
    return _session(ort, src, opts, [CPU]), CPU, why


def _short(provider: str) -> str:
    """`CUDAExecutionProvider` -> `CUDA`, `TensorrtExecutionProvider` -> `TensorRT`."""
    return "TensorRT" if provider == TENSORRT else provider.removesuffix("ExecutionProvider")


def ort_message(e: BaseException, limit: int = 400) -> str:
    """ONNX Runtime's error text without its code prefix and C++ source location."""
    text = " ".join(str(e).split()) or type(e).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"/\S+\.(?:cc|h|cpp):\d+ .*?\) (?=[A-Z])", "", text)  # /x.cc:12 void f(..)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _session(ort, src, opts, providers):
    try:
        return ort.InferenceSession(src, opts, providers=providers)
    except Exception as e:
        if providers == [CPU]:
            raise RunError(f"ONNX Runtime cannot load the model: {ort_message(e)}") from None
        raise


# -- inputs -----------------------------------------------------------------------------------
def check_inputs(sess, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inputs by name, checked against the model: names, dtypes, ranks, sizes."""
    want = {i.name: i for i in sess.get_inputs()}
    for name in inputs:
        if name not in want:
            g = did_you_mean(name, want)
            raise RunError(
                f"the model has no input {name!r} (its inputs: {', '.join(want)})",
                hint=f"did you mean '{g}'?" if g else None,
            )
    missing = [n for n in want if n not in inputs]
    if missing:
        raise RunError(
            f"missing input(s): {', '.join(missing)}", hint="give each as --input NAME=FILE.npy"
        )
    symbols: dict[str, tuple[int, str]] = {}
    out = {}
    for name, info in want.items():
        a = np.asarray(inputs[name])
        dtype = DTYPES.get(info.type)
        if dtype is not None and a.dtype != dtype:
            hint = None
            if np.dtype(dtype).kind == a.dtype.kind or (
                np.dtype(dtype).kind in "iu" and a.dtype.kind in "iu"
            ):
                hint = (
                    f"save it as {np.dtype(dtype).name}: np.save(path, a.astype(np."
                    f"{np.dtype(dtype).name}))"
                )
            raise RunError(
                f"input {name!r} must be {np.dtype(dtype).name}, got {a.dtype}", hint=hint
            )
        shape = info.shape
        if len(shape) != a.ndim:
            raise RunError(
                f"input {name!r} must have rank {len(shape)} ({_shape(shape)}), got "
                f"shape {list(a.shape)}"
            )
        for axis, (d, n) in enumerate(zip(shape, a.shape, strict=True)):
            if isinstance(d, int) and d != n:
                raise RunError(
                    f"input {name!r} must have shape {_shape(shape)}, got "
                    f"{list(a.shape)} (axis {axis} is {n}, not {d})"
                )
            if isinstance(d, str) and d:
                if d in symbols and symbols[d][0] != n:
                    first_n, first = symbols[d]
                    raise RunError(
                        f"axis '{d}' has size {first_n} in input {first!r} but {n} in "
                        f"input {name!r}; they must agree"
                    )
                symbols.setdefault(d, (n, name))
        out[name] = a
    return out


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) if d not in (None, "") else "?" for d in shape) + "]"


def run_model(
    path: Any, inputs: Mapping[str, np.ndarray], provider: str = "auto"
) -> tuple[dict[str, np.ndarray], str]:
    """Run `path` (a .onnx file, or a ModelProto / bytes) on ONNX Runtime; returns the outputs
    by name (in the model's order) and the provider that ran."""
    sess, used, _ = make_session(path, provider)
    return run_session(sess, inputs), used


def run_session(sess, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a session made by `make_session` on checked inputs; outputs by name, in order."""
    feeds = check_inputs(sess, inputs)
    names = [o.name for o in sess.get_outputs()]
    try:
        if sess.get_providers()[0] in (CUDA, TENSORRT):
            binding = sess.io_binding()
            for name, a in feeds.items():
                binding.bind_cpu_input(name, a)
            for name in names:
                binding.bind_output(name, "cuda")
            sess.run_with_iobinding(binding)
            values = binding.copy_outputs_to_cpu()
        else:
            values = sess.run(names, feeds)
    except Exception as e:  # e.g. a token id outside the vocabulary
        raise RunError(f"ONNX Runtime failed on these inputs: {ort_message(e)}") from None
    return dict(zip(names, values, strict=True))
