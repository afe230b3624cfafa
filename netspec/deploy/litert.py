"""LiteRT (TensorFlow Lite) for phones and small devices: the Keras target converted to a
`.tflite` flatbuffer (`netspec deploy SPEC --litert DIR`), run with the LiteRT interpreter.

The flatbuffer has one signature (`serving_default`) whose inputs and outputs carry the spec's
names. Its tensors are in the Keras target's boundary layout: channels-last from per-example
rank 3 up (an image [3, 224, 224] is fed as [N, 224, 224, 3]); `Session` takes and gives the
logical (channels-first) layout of `netspec run`, moving axes at the boundary.

What LiteRT cannot convert is an error that says so: recurrent layers (char_lstm,
bigru_classifier) with a dynamic batch size need TensorFlow ops that LiteRT's builtins lack
(`TensorListReserve` with a dynamic element shape); with the batch size fixed (`batch=1`,
`--litert-batch 1`) they convert, even over a sequence of dynamic length.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..outdir import commit, remove_if_empty, staging
from ..targets.keras.layout import boundary
from ..targets.onnx.run import RunError, _captured_stderr
from .source import DeployError, Source, check_name

SUFFIX = ".tflite"


def _to_keras(a: np.ndarray) -> np.ndarray:
    perm = boundary(a.ndim - 1)
    return np.ascontiguousarray(a.transpose(0, *(p + 1 for p in perm)))


def _from_keras(a: np.ndarray) -> np.ndarray:
    perm = boundary(a.ndim - 1)
    inverse = np.argsort(perm)
    return np.ascontiguousarray(a.transpose(0, *(int(p) + 1 for p in inverse)))


def _why(text: str) -> str:
    """The converter's reason, short: its first `error:` line."""
    for line in text.splitlines():
        m = re.search(r"error: (.+)", line)
        if m and "loc(" not in m.group(1)[:5]:
            return m.group(1).strip()[:300]
    return " ".join(text.split())[:300]


def convert(graph, weights: Mapping[str, np.ndarray], batch: int | None = None) -> bytes:
    """The `.tflite` flatbuffer of `graph` with `weights` (canonical arrays), through the Keras
    target, for any batch size or for exactly `batch`; a DeployError naming what LiteRT cannot
    convert."""
    if batch is not None and not 1 <= batch <= 1 << 16:
        raise DeployError(f"--litert-batch must be between 1 and 65536, got {batch}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import keras
        import tensorflow as tf
    except ImportError:
        raise DeployError(
            "--litert needs TensorFlow (the Keras target)", hint="pip install 'netspec[keras]'"
        ) from None
    from ..targets import keras as keras_target

    model = keras_target.compile(graph, weights)
    # the same model with its outputs named (a dict), so that the signature carries the names
    named = keras.Model(model.inputs, dict(zip(graph.outputs, model.outputs, strict=True)))
    if batch is not None:
        ins = [
            keras.Input(batch_shape=(batch, *t.shape[1:]), dtype=t.dtype, name=n)
            for n, t in zip(graph.inputs, model.inputs, strict=True)
        ]
        named = keras.Model(ins, named(ins if len(ins) > 1 else ins[0]))
    try:  # the converter's log (to Python's stdout and to file descriptor 2) is kept quiet
        with contextlib.redirect_stdout(io.StringIO()), _captured_stderr() as log:
            return tf.lite.TFLiteConverter.from_keras_model(named).convert()
    except Exception as e:  # the converter's ConverterError, or a tracing failure
        why = _why(str(e) or log.getvalue())
        hint = None
        if "TensorList" in str(e) and batch is None:
            why = (
                "its recurrent layers need a fixed batch size: with a dynamic one they need "
                f"TensorFlow ops that LiteRT's builtins lack ({why})"
            )
            hint = "fix the batch size with --litert-batch 1"
        raise DeployError(
            f"LiteRT cannot convert '{graph.name}': {why}", file=graph.source or None, hint=hint
        ) from None


def check_source(src: Source, name: str | None = None) -> str:
    """The file name (without suffix) `src` converts to; an error for an `.onnx` file (LiteRT
    starts from the Keras target) or a name that cannot name a file."""
    if src.graph is None:
        raise DeployError(
            "--litert converts the Keras target, so it needs the spec, not an .onnx file",
            file=str(src.path),
            hint="give SPEC.yaml (with --weights FILE)",
        )
    return check_name(name or src.name, src.graph.source or None)


def write(
    src: Source,
    outdir: str | os.PathLike,
    name: str | None = None,
    batch: int | None = None,
    data: bytes | None = None,
) -> list[Path]:
    """Write `<name>.tflite` into `outdir` (for any batch size, or exactly `batch`), all or
    nothing; `data`: the flatbuffer when `convert` already made it."""
    name = check_source(src, name)
    if data is None:
        data = convert(src.graph, src.weights, batch)
    root = Path(outdir)
    if root.exists() and not root.is_dir():
        raise DeployError(f"{str(root)!r} is not a folder", hint="give a folder for --litert")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    try:
        with staging(root, "deploy") as tmp:
            (tmp / f"{name}{SUFFIX}").write_bytes(data)
            return commit(tmp, root)
    except BaseException:
        if created:  # only what this call made: another writer's files stay
            remove_if_empty(root)
        raise


class Session:
    """A `.tflite` model (a file or its bytes) on the LiteRT interpreter: `run(inputs)` takes
    and gives arrays in the logical (channels-first) layout, outputs by name."""

    def __init__(self, model: Any, threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise RunError(
                "running a .tflite model needs ai-edge-litert", hint="pip install 'netspec[deploy]'"
            ) from None
        if isinstance(model, bytes):
            kw: dict[str, Any] = {"model_content": model}
        else:
            if not Path(model).is_file():
                raise RunError(f"model file {str(model)!r} does not exist")
            kw = {"model_path": os.fspath(model)}
        try:
            self.interpreter = Interpreter(num_threads=threads, **kw)
            self.runner = self.interpreter.get_signature_runner()
        except Exception as e:
            raise RunError(
                f"LiteRT cannot load the model: {' '.join(str(e).split())[:300]}"
            ) from None
        self.input_names = list(self.runner.get_input_details())
        self.output_names = list(self.runner.get_output_details())

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        extra = [n for n in inputs if n not in self.input_names]
        if missing or extra:
            raise RunError(
                f"the model's inputs are {', '.join(self.input_names)}; "
                f"got {', '.join(inputs) or 'none'}"
            )
        feeds = {n: _to_keras(np.asarray(inputs[n])) for n in self.input_names}
        try:
            out = self.runner(**feeds)
        except Exception as e:
            raise RunError(
                f"LiteRT failed on these inputs: {' '.join(str(e).split())[:300]}"
            ) from None
        return {n: _from_keras(np.asarray(v)) for n, v in out.items()}
