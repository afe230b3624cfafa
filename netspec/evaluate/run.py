"""`netspec evaluate` and `netspec.evaluate()`: a model's metrics on data.

    report = evaluate(graph, weights="build/digits_cnn/digits_cnn.safetensors")
    report["outputs"]["digit"]["accuracy"]

The data is read exactly as `netspec train` reads it (netspec.train.run.load_parts: the
`training:` section's mapping, the same checks, the same split from the same seed), then fed
batch by batch to the model: on ONNX Runtime by default (the artifact that is deployed: a given
`.onnx` file, or the ONNX model of the spec with the weights), or on the PyTorch / Keras model
`netspec.compile` builds. The metrics of each trained output come from `metrics` (scikit-learn).
See docs/evaluate.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError
from ..ir import Graph, shape_str
from . import metrics

TARGETS = ("onnx", "torch", "keras")
SPLITS = ("all", "train", "validation", "test")
BATCH_SIZE = 256

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class Evaluation:
    """The JSON-ready `report`, and per trained output the (true, predicted) arrays the
    metrics compared (for the pictures)."""

    report: dict
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def evaluate(
    graph: Graph,
    data: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    weights: str | os.PathLike | Mapping | None = None,
    target: str = "onnx",
    model: str | os.PathLike | bytes | Any | None = None,
    split: str | None = None,
    batch_size: int = BATCH_SIZE,
    provider: str = "auto",
) -> dict:
    """The metrics of `graph`'s model on `data` (default: the `training:` section's data) as a
    JSON-ready dict; see `run`."""
    return run(
        graph,
        data,
        weights=weights,
        target=target,
        model=model,
        split=split,
        batch_size=batch_size,
        provider=provider,
    ).report


def run(
    graph: Graph,
    data=None,
    *,
    weights=None,
    target: str = "onnx",
    model=None,
    split: str | None = None,
    batch_size: int = BATCH_SIZE,
    provider: str = "auto",
) -> Evaluation:
    """Evaluate `graph`'s model with `weights` (a safetensors path or canonical arrays), or the
    ONNX `model` (a `.onnx` path, bytes or ModelProto; its own weights), on `target`: onnx
    (ONNX Runtime on `provider`), torch or keras. `split`: all, train, validation or test rows
    of the data as `netspec train` splits them (default: test when the spec has a test part and
    `data` is the spec's own, else all). Every mistake raises SpecError before the model runs,
    located in the spec, the data or the weights file."""
    try:
        return _run(graph, data, weights, target, model, split, batch_size, provider)
    except SpecError as e:
        raise _located(e, graph, weights, model) from None


def _located(e: SpecError, graph: Graph, weights, model) -> SpecError:
    """An error about the spec's `training:` section at its line in the spec file; an error
    about the weights at the weights file; ONNX Runtime's (`netspec run`'s errors) at the
    model."""
    from ..targets.onnx.run import RunError

    if isinstance(e, RunError):
        e = SpecError(e.message, hint=e.hint, file=_file_name(model) or graph.source)
    if e.file is not None:
        return e
    if e.path:
        from ..yamlload import locate_in_source

        return locate_in_source(e, graph.source)
    from ..weights import WeightsError

    if isinstance(e, WeightsError):
        e.file = _file_name(weights)
    return e


def _run(graph, data, weights, target, model, split, batch_size, provider) -> Evaluation:
    import importlib.util

    from ..train.run import load_parts

    if importlib.util.find_spec("sklearn") is None:
        raise SpecError(
            "netspec evaluate computes its metrics with scikit-learn, which is not installed",
            hint="pip install 'netspec[train]'",
        )

    if target not in TARGETS:
        raise SpecError(
            f"cannot evaluate on the {target!r} target", hint=f"use one of: {', '.join(TARGETS)}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError(f"the batch size must be a whole number >= 1, not {batch_size!r}")
    plan = graph.training
    if plan is None:
        raise SpecError(
            f"the spec {graph.name!r} has no `training:` section",
            file=graph.source,
            hint="evaluate maps the data onto the model with the section's `inputs:` and "
            "`targets:` (and its loss says what the targets are); add one, see docs/training.md",
        )
    if split is None:
        split = "test" if data is None and plan.test != 0.0 else "all"
    if split not in SPLITS:
        raise SpecError(f"unknown split {split!r}", hint=f"use one of: {', '.join(SPLITS)}")
    if model is not None and weights is not None:
        raise SpecError(
            "give either an ONNX model or weights, not both",
            hint="an .onnx file carries its own weights",
        )
    if model is None and weights is None:
        raise SpecError(
            f"no weights to evaluate the spec {graph.name!r} with",
            hint=f"pass the trained weights, e.g. --weights build/{graph.name}/"
            f"{graph.name}.safetensors (what `netspec train` writes), or the trained .onnx model",
        )

    w, proto, size = _model(graph, weights, model, target)
    dataset, rows = _part(graph, load_parts(graph, data), split, plan)
    predict, used = _predictor(graph, target, w, proto, provider, model)

    outputs = [o.output for o in plan.objectives]
    got: dict[str, list[np.ndarray]] = {k: [] for k in outputs}
    want: dict[str, list[np.ndarray]] = {k: [] for k in outputs}
    for start in range(0, len(rows), batch_size):
        x, t = dataset.take(rows[start : start + batch_size])
        y = predict(x)
        for k in outputs:
            if start == 0:
                _check_output(graph, k, y, model)
            got[k].append(y[k])
            want[k].append(t[k])

    evaluation = Evaluation(
        {
            "model": {
                "name": graph.name,
                "spec": graph.source,
                "target": target,
                "file": _file_name(model if model is not None else weights),
                **({"provider": used} if used else {}),
                "parameters": graph.param_count,
                "size_bytes": size,
            },
            "data": {"source": dataset.source, "split": split, "examples": len(rows)},
            "outputs": {},
        }
    )
    for o in plan.objectives:
        y, t = np.concatenate(got[o.output]), np.concatenate(want[o.output])
        true, pred = metrics.decide(o.kind, o.reads, y, t)
        if metrics.TASKS[o.kind] == "regression":
            result = metrics.regression(true, pred)
        else:
            shape = graph.value(graph.outputs[o.output]).shape
            result = metrics.classification(true, pred, shape[-1] if o.kind == "classes" else 2)
        result = {"loss": o.loss, **result}
        evaluation.report["outputs"][o.output] = result
        evaluation.pairs[o.output] = (true, pred)
    return evaluation


def _file_name(source) -> str | None:
    return os.fspath(source) if isinstance(source, str | os.PathLike) else None


def _model(graph: Graph, weights, model, target: str):
    """(canonical weights or None, ONNX source or None, size in bytes of what is evaluated).

    The size is the ONNX model's (its file and the `<file>.data` beside it, or the serialized
    model) on the onnx target, the canonical weights' (float32) on torch and keras."""
    from ..weights import load_weights

    if model is None:
        w = load_weights(weights, graph)
        if target != "onnx":
            return w, None, sum(int(np.asarray(a).nbytes) for a in w.values())
        from .. import targets

        proto = targets.get("onnx").compile(graph, w).SerializeToString()
        return w, proto, len(proto)
    if isinstance(model, str | os.PathLike):
        path = Path(model)
        if not path.is_file():
            raise SpecError(
                f"the model file {str(path)!r} does not exist",
                hint="netspec build --target onnx (or netspec train) writes <name>.onnx",
            )
        size = path.stat().st_size
        data = path.with_name(path.name + ".data")
        size += data.stat().st_size if data.is_file() else 0
    else:
        raw = model if isinstance(model, bytes) else model.SerializeToString()
        size = len(raw)
    if target == "onnx":
        return None, model, size
    from .. import targets

    try:
        w = targets.get("onnx").export_weights(model, graph)
    except SpecError as e:
        raise SpecError(
            f"cannot take the spec's weights from the ONNX model: {e.message}",
            file=_file_name(model),
            hint="evaluate an ONNX model on --target onnx; for torch or keras pass the "
            "canonical weights (--weights FILE.safetensors) with the spec",
        ) from None
    return w, None, sum(int(np.asarray(a).nbytes) for a in w.values())


def _part(graph: Graph, parts, split: str, plan):
    """(dataset, rows) of the asked part of the data."""
    dataset, rows, own = parts[0], parts[1], {"validation": parts[2], "test": parts[3]}
    if split == "all":
        return dataset, np.arange(dataset.rows)
    if split == "train":
        return dataset, rows.train
    if own[split] is not None:
        return own[split], np.arange(own[split].rows)
    chosen = getattr(rows, split)
    if not len(chosen):
        raise SpecError(
            f"the spec {graph.name!r} sets aside no {split} data",
            (*plan.path,),
            hint=f"use --split all (every row), or give the section `{split}: FRACTION` and "
            "train again (the split must be the one the model was trained with)",
        )
    return dataset, chosen


def _predictor(graph: Graph, target: str, w, proto, provider: str, model) -> tuple[Predict, str]:
    """A function from input arrays (spec layout) to the model's outputs (spec layout), and
    the ONNX Runtime provider that runs it ('' on the frameworks)."""
    if target == "onnx":
        return _onnx(graph, proto, provider, model)
    from .. import targets

    try:
        compiled = targets.get(target).compile(graph, w)
    except ImportError as e:
        raise SpecError(
            f"evaluating on the {target} target needs {e.name}, which is not installed",
            hint=f"pip install 'netspec[{target}]'",
        ) from None
    return (_torch if target == "torch" else _keras)(graph, compiled), ""


def _onnx(graph: Graph, src, provider: str, model) -> tuple[Predict, str]:
    from ..targets.onnx.run import make_session, run_session

    sess, used, _ = make_session(src, provider)
    have = {i.name: i for i in sess.get_inputs()}
    outs = [o.name for o in sess.get_outputs()]
    wanted = [o.output for o in graph.training.objectives]
    if set(have) != set(graph.inputs) or not set(wanted) <= set(outs):
        name = sess.get_modelmeta().custom_metadata_map.get("spec_name")
        made = f" (it was made from the spec {name!r})" if name else ""
        raise SpecError(
            f"the ONNX model does not fit the spec {graph.name!r}{made}: it takes "
            f"{', '.join(have) or 'nothing'} and gives {', '.join(outs)}, but the spec's model "
            f"takes {', '.join(graph.inputs)} and gives {', '.join(wanted)}",
            file=_file_name(model),
            hint="pass the spec (--spec) the model was built from",
        )

    def predict(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_session(sess, x)

    return predict, used


def _torch(graph: Graph, module) -> Predict:
    import torch

    def predict(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            ys = module(*(torch.from_numpy(np.ascontiguousarray(x[k])) for k in graph.inputs))
        ys = ys if isinstance(ys, tuple | list) else (ys,)
        return {k: y.cpu().numpy() for k, y in zip(graph.outputs, ys, strict=True)}

    return predict


def _keras(graph: Graph, model) -> Predict:
    """Keras takes and gives images channels-last (`layout.boundary`): the inputs are moved
    there and the outputs back to the spec's channels-first layout. TensorFlow's TF32 is
    turned off (float32 means float32 on GPUs too, as on the other targets)."""
    import keras

    from ..targets.keras import layout

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)

    def axes(perm) -> tuple[int, ...]:
        return (0, *(p + 1 for p in perm))

    ins = {k: axes(layout.boundary(v.rank)) for k, v in graph.inputs.items()}
    outs = {k: axes(layout.boundary(graph.value(v).rank)) for k, v in graph.outputs.items()}

    def predict(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        xs = [np.transpose(x[k], ins[k]) for k in graph.inputs]
        ys = model(xs if len(xs) > 1 else xs[0], training=False)
        ys = ys if isinstance(ys, tuple | list) else (ys,)
        return {
            k: np.transpose(keras.ops.convert_to_numpy(y), np.argsort(outs[k]))
            for k, y in zip(graph.outputs, ys, strict=True)
        }

    return predict


def _check_output(graph: Graph, name: str, y: dict[str, np.ndarray], model) -> None:
    """The model's output `name` has the spec's per-example shape (a foreign .onnx may not)."""
    want = graph.value(graph.outputs[name]).shape
    have = y[name].shape[1:]
    fits = len(have) == len(want) and all(
        not isinstance(w, int) or w == h for h, w in zip(have, want, strict=True)
    )
    if not fits:
        raise SpecError(
            f"the model's output {name!r} has examples of shape {list(have)}, but the spec's "
            f"output takes {shape_str(want, batch=False)}",
            file=_file_name(model),
            hint="pass the spec (and --set values) the model was built from",
        )


def check_plotting() -> None:
    """A SpecError, before the model runs, when matplotlib (for the pictures) is missing."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise SpecError(
            "netspec evaluate draws its pictures with matplotlib, which is not installed",
            hint="pip install 'netspec[train]' (or leave out -o)",
        )


def write(evaluation: Evaluation, out: str | os.PathLike) -> list[Path]:
    """evaluation.json and the pictures of each trained output (`confusion_matrix` or
    `predicted_vs_true`, PNG and SVG; `<output>_...` with several outputs) into `out`: written
    into a temporary folder inside it, then moved into place (netspec.outdir.commit)."""

    from ..outdir import commit, staging
    from . import plots, report

    root = Path(out)
    if root.exists() and not root.is_dir():
        raise SpecError(f"the output folder {str(root)!r} is a file", hint="choose another -o")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpecError(f"cannot create the output folder {str(root)!r}: {e.strerror}") from None
    with staging(root.resolve(), "evaluate") as tmp:
        rep = evaluation.report
        report.write_json(rep, tmp)
        several = len(rep["outputs"]) > 1
        m, d = rep["model"], rep["data"]
        for name, r in rep["outputs"].items():
            title = (
                f"{m['name']}: output {name!r} on {m['target']}, {d['split']} data "
                f"({d['examples']} examples)\n{report.summary(name, r).split(': ', 1)[1]}"
            )
            if r["task"] == "classification":
                stem = "confusion_matrix"
                plots.confusion_matrix(r, title, tmp, f"{name}_{stem}" if several else stem)
            else:
                stem = "predicted_vs_true"
                true, pred = evaluation.pairs[name]
                plots.predicted_vs_true(
                    true, pred, title, tmp, f"{name}_{stem}" if several else stem
                )
        return commit(tmp, root.resolve())
