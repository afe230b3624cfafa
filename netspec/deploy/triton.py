"""A Triton Inference Server model repository for a netspec model (`netspec deploy --triton`).

The repository is what Triton (and KServe's Triton runtime) loads unchanged::

    DIR/<name>/config.pbtxt
    DIR/<name>/1/model.onnx          (+ its external data file, for a model over 2 GiB)

`config.pbtxt` is derived from the ONNX model's signature, which the ONNX target writes from the
IR: input and output names, data types, and dims with -1 for every dynamic axis. With
`max_batch_size > 0` the leading `batch` axis is Triton's implicit batch axis (not listed in
`dims`) and the dynamic batcher is on; a per-example scalar is `dims: [ 1 ]` reshaped to `[ ]`.
Nothing here imports Triton: the text is written directly, and the tests parse it with Triton's
own model-config protobuf (shipped in `tritonclient`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..outdir import commit, remove_if_empty, staging
from ..version import __version__
from .source import DeployError, Source, check_name, read_onnx

DEFAULT_MAX_BATCH_SIZE = 32
MAX_BATCH_SIZE_LIMIT = 1 << 20
QUEUE_DELAY_US = 100
INSTANCES = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}

# ONNX TensorProto element types -> Triton data types
DATA_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}


def _quote(s: str) -> str:
    from google.protobuf import text_encoding

    return '"' + text_encoding.CEscape(s, as_utf8=True) + '"'


def signature(model) -> tuple[list[tuple[str, int, list]], list[tuple[str, int, list]]]:
    """The model's real inputs and outputs (initializers listed as inputs left out): each
    (name, ONNX element type, dims), a dim an int or None (dynamic) or a str (its symbol)."""
    inits = {t.name for t in model.graph.initializer}

    def rows(values):
        out = []
        for v in values:
            if v.name in inits:
                continue
            t = v.type.tensor_type
            dims = []
            for d in t.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(int(d.dim_value))
                else:
                    dims.append(d.dim_param or None)
            out.append((v.name, t.elem_type, dims))
        return out

    return rows(model.graph.input), rows(model.graph.output)


def batchable(model) -> bool:
    """Whether every input and output has a leading dynamic axis, the same symbol throughout
    (netspec's `batch`): then Triton can batch requests along it."""
    ins, outs = signature(model)
    firsts = {dims[0] if dims and not isinstance(dims[0], int) else 0 for _, _, dims in ins + outs}
    return len(firsts) == 1 and 0 not in firsts and None not in firsts


def config_text(
    model,
    name: str,
    *,
    max_batch_size: int,
    instance: str = "cpu",
    source: str = "",
) -> str:
    """`config.pbtxt` for `model` served under `name`."""
    ins, outs = signature(model)
    where = f" from {' '.join(source.split())}" if source else ""
    lines = [
        f"# {name}: a Triton model configuration written by netspec {__version__}{where}",
        f"name: {_quote(name)}",
        'backend: "onnxruntime"',
        f"max_batch_size: {max_batch_size}",
    ]
    for key, rows in (("input", ins), ("output", outs)):
        lines.append(f"{key} [")
        for i, (tname, elem, dims) in enumerate(rows):
            dtype = DATA_TYPES.get(elem)
            if dtype is None:
                raise DeployError(
                    f"{key} {tname!r} has ONNX element type {elem}, which Triton has no type for"
                )
            if max_batch_size > 0:
                dims = dims[1:]
            shown = [d if isinstance(d, int) else -1 for d in dims]
            lines += ["  {", f"    name: {_quote(tname)}", f"    data_type: {dtype}"]
            if shown:
                lines.append(f"    dims: [ {', '.join(str(d) for d in shown)} ]")
            else:  # a scalar per example: Triton needs at least one dim
                lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
            lines.append("  }," if i < len(rows) - 1 else "  }")
        lines.append("]")
    if max_batch_size > 0:
        lines += ["dynamic_batching {", f"  max_queue_delay_microseconds: {QUEUE_DELAY_US}", "}"]
    lines += [
        "instance_group [",
        "  {",
        "    count: 1",
        f"    kind: {INSTANCES[instance]}",
        "  }",
        "]",
    ]
    return "\n".join(lines) + "\n"


def write_repository(
    src: Source,
    repo: str | os.PathLike,
    *,
    name: str | None = None,
    max_batch_size: int | None = None,
    instance: str = "cpu",
) -> tuple[list[Path], int]:
    """Write `<name>/config.pbtxt` and `<name>/1/model.onnx` into the repository folder `repo`
    (created if needed; other models in it are left alone), all or nothing; returns the files
    written and the max_batch_size used (the default: DEFAULT_MAX_BATCH_SIZE when the model has
    a batch axis, else 0)."""
    where = str(src.path) if src.path else (src.graph.source or None)
    name = check_name(name or src.name, where)
    if instance not in INSTANCES:
        raise DeployError(f"unknown instance kind {instance!r}", hint="use cpu or gpu")
    if max_batch_size is not None and not 0 <= max_batch_size <= MAX_BATCH_SIZE_LIMIT:
        raise DeployError(
            f"--max-batch-size must be between 0 and {MAX_BATCH_SIZE_LIMIT}, got {max_batch_size}"
        )
    root = Path(repo)
    if root.exists() and not root.is_dir():
        raise DeployError(f"{str(root)!r} is not a folder", hint="give a folder for --triton")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    try:
        with staging(root, "deploy") as tmp:
            version = tmp / name / "1"
            version.mkdir(parents=True)
            src.write_onnx(version / "model.onnx")
            model = read_onnx(version / "model.onnx")
            can_batch = batchable(model)
            if max_batch_size is None:
                max_batch_size = DEFAULT_MAX_BATCH_SIZE if can_batch else 0
            elif max_batch_size > 0 and not can_batch:
                raise DeployError(
                    "the model has no leading batch axis shared by every input and output, so "
                    "Triton cannot batch it",
                    file=where,
                    hint="use --max-batch-size 0",
                )
            text = config_text(
                model, name, max_batch_size=max_batch_size, instance=instance, source=where or ""
            )
            (tmp / name / "config.pbtxt").write_text(text, encoding="utf-8")
            return commit(tmp, root), max_batch_size
    except BaseException:
        if created:
            remove_if_empty(root)
        raise
