"""Training data mapped onto a model: which columns or arrays feed which input, which feed which
trained output, checked against what the model takes and what each loss needs.

    data = load_data("data/student_score_sleep.csv",
                     DataMap(inputs={"x": ["study_hours", "sleep_hours"]},
                             targets={"dense_2": "score"}),
                     inputs={"x": InputSpec((2,))},
                     targets={"dense_2": TargetSpec("regression", (1,))})
    x, y = data.take(batch_indices)      # {"x": (b, 2) float32}, {"dense_2": (b, 1) float32}

Every value is checked once, when the data is loaded, streaming over rows (a memory-mapped .npy
is never read whole): NaN and Inf are refused everywhere, token ids must be whole numbers within
the vocabulary, class labels whole numbers in [0, classes), binary targets in [0, 1]. Errors
point at the cell (`file:line:col` for CSV) or at the mapping's entry in the spec.
The mapping's meaning is written down in docs/training-data.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError, did_you_mean
from .sources import Table, open_source

CHUNK_BYTES = 32 << 20  # values checked, and statistics gathered, this many bytes at a time
KINDS = ("regression", "binary", "classes")
Dim = int | str | None


@dataclass(frozen=True)
class InputSpec:
    """What one model input takes per example, as the IR says: its shape (the batch axis left
    out; a str or None dimension is dynamic) and dtype. `bound`: int64 ids must lie in
    [0, bound), e.g. an embedding's vocabulary size."""

    shape: tuple[Dim, ...]
    dtype: str = "float32"
    bound: int | None = None


def input_specs(graph) -> dict[str, InputSpec]:
    """The InputSpec of each input of a lowered graph (netspec.ir.Graph); int64 ids read by
    embeddings must lie below the smallest of their vocabularies."""
    out = {}
    for name, value in graph.inputs.items():
        vocabs = [n.attrs["vocab"] for n in graph.consumers(name) if n.op == "embedding"]
        out[name] = InputSpec(tuple(value.shape), value.dtype, min(vocabs) if vocabs else None)
    return out


@dataclass(frozen=True)
class TargetSpec:
    """What one trained output's loss needs: `kind` is regression (real values shaped like the
    output), binary (values in [0, 1] shaped like the output) or classes (integer labels with
    the class axis left out, or one-hot / probability rows shaped like the output)."""

    kind: str
    shape: tuple[Dim, ...]
    class_axis: int = -1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"TargetSpec kind must be one of {KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class DataMap:
    """Model input name -> column (or list of columns, stacked side by side), and trained output
    name -> column(s). `path` is where this mapping sits in the spec (e.g. ('training', 'data')):
    an error about an entry points at that entry."""

    inputs: Mapping[str, str | Sequence[str]]
    targets: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    path: tuple[str | int, ...] = ()


@dataclass
class Field:
    """The data of one model input or target: its columns' arrays (rows first, possibly
    memory-mapped), the per-example shape the model takes, and the dtype handed to it.
    `form` is values, labels (integer class indices) or onehot (one-hot or probability rows)."""

    name: str
    columns: tuple[str, ...]
    parts: list[np.ndarray]
    shape: tuple[int, ...]
    dtype: np.dtype
    form: str = "values"

    @property
    def rows(self) -> int:
        return len(self.parts[0])

    def gather(self, rows: np.ndarray | slice) -> np.ndarray:
        """The examples at `rows`, shaped (n, *shape), in the source's own dtype."""
        got = [np.asarray(p[rows]) for p in self.parts]
        n = len(got[0])
        if len(got) == 1:
            return got[0].reshape((n, *self.shape))
        return np.concatenate([g.reshape(n, -1) for g in got], axis=1).reshape((n, *self.shape))

    def take(self, rows: np.ndarray, float_dtype: np.dtype | type | None = None) -> np.ndarray:
        """The examples at `rows` as the model takes them; `float_dtype` overrides the dtype of
        float data (float64 for a float64 run)."""
        dtype = self.dtype
        if float_dtype is not None and dtype.kind == "f":
            dtype = np.dtype(float_dtype)
        return self.gather(np.asarray(rows, dtype=np.intp)).astype(dtype, copy=False)

    def locate(self, row: int, flat: int) -> tuple[str, tuple[int, ...]]:
        """Column name and index in that column's array of value `flat` of example `row`."""
        for name, part in zip(self.columns, self.parts, strict=True):
            size = math.prod(part.shape[1:])
            if flat < size:
                return name, (row, *(int(i) for i in np.unravel_index(flat, part.shape[1:])))
            flat -= size
        raise IndexError(flat)


@dataclass
class Dataset:
    """Examples mapped to a model's inputs and targets, all with the same number of rows."""

    source: str
    rows: int
    inputs: dict[str, Field]
    targets: dict[str, Field]

    def take(
        self, rows: np.ndarray, float_dtype: np.dtype | type | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """One batch: ({input: array}, {output: array}) for the examples at `rows`."""
        return (
            {k: f.take(rows, float_dtype) for k, f in self.inputs.items()},
            {k: f.take(rows, float_dtype) for k, f in self.targets.items()},
        )


def load_data(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    mapping: DataMap,
    inputs: Mapping[str, InputSpec],
    targets: Mapping[str, TargetSpec],
) -> Dataset:
    """Read `source` (see `sources.open_source`), map it by `mapping` onto the model's `inputs`
    and trained outputs `targets`, and check every value. Raises SpecError."""
    table = open_source(source)
    loader = _Loader(table, mapping)
    wanted = {
        "inputs": loader.entries("inputs", mapping.inputs, inputs, "input"),
        "targets": loader.entries("targets", mapping.targets, targets, "trained output"),
    }
    names: list[str] = []
    for entries in wanted.values():
        for cols, _ in entries.values():
            names += [c for c in cols if c not in names]
    arrays = table.read(names)
    rows = loader.rows(arrays)
    ins = {
        k: loader.input(k, [arrays[c] for c in cols], cols, stacked, inputs[k])
        for k, (cols, stacked) in wanted["inputs"].items()
    }
    outs = {
        k: loader.target(k, [arrays[c] for c in cols], cols, stacked, targets[k])
        for k, (cols, stacked) in wanted["targets"].items()
    }
    return Dataset(table.name, rows, ins, outs)


class _Loader:
    """One load's state: the table, the mapping, and the sizes bound to named dynamic axes."""

    def __init__(self, table: Table, mapping: DataMap):
        self.table = table
        self.mapping = mapping
        self.dims: dict[str, int] = {}

    def error(self, tail: tuple, message: str, hint: str | None = None, key=False) -> SpecError:
        """An error about the mapping: at its entry in the spec, or at the data source when the
        mapping did not come from a spec."""
        if self.mapping.path:
            return SpecError(message, (*self.mapping.path, *tail), hint=hint, key=key)
        return SpecError(message, tail, hint=hint, file=self.table.name)

    def entries(self, section: str, given: Mapping, model: Mapping, what: str):
        """{model name: (column names, stacked)} for one section, each name checked; a list of
        names is stacked side by side even when it holds one name."""
        out: dict[str, tuple[tuple[str, ...], bool]] = {}
        for key, value in (given or {}).items():
            if key not in model:
                guess = did_you_mean(key, model)
                raise self.error(
                    (section, key),
                    f"the model has no {what} {key!r}",
                    f"did you mean '{guess}'?" if guess else _listing(what + "s", model),
                    key=True,
                )
            cols = (value,) if isinstance(value, str) else tuple(value)
            if not cols or not all(isinstance(c, str) for c in cols):
                raise self.error(
                    (section, key),
                    f"{what} {key!r} is mapped to {value!r}",
                    "map it to a column name or a list of column names",
                )
            for i, c in enumerate(cols):
                if c not in self.table.names:
                    tail = (section, key) if isinstance(value, str) else (section, key, i)
                    raise self.error(tail, *self.missing(c))
            out[key] = (cols, not isinstance(value, str))
        unmapped = [k for k in model if k not in out]
        if unmapped:
            example = f"{unmapped[0]}: {self.table.names[0]}" if self.table.names else ""
            raise self.error(
                (section,),
                f"no data for {what} {', '.join(map(repr, unmapped))}",
                f"map it to {self.table.kind}s of {self.table.name}, e.g. `{example}`; "
                + _listing(f"{self.table.kind}s", self.table.names, f"{self.table.name} has"),
            )
        return out

    def missing(self, name: str) -> tuple[str, str]:
        kind = self.table.kind
        guess = did_you_mean(name, self.table.names)
        listing = _listing(f"{kind}s", self.table.names, f"{self.table.name} has")
        hint = f"did you mean '{guess}'? {listing}" if guess else listing
        return f"no {kind} {name!r} in {self.table.name}", hint

    def rows(self, arrays: Mapping[str, np.ndarray]) -> int:
        counts = {n: len(a) for n, a in arrays.items()}
        first = next(iter(counts), None)
        for name, n in counts.items():
            if n != counts[first]:
                raise SpecError(
                    f"{first!r} has {counts[first]:,} rows but {name!r} has {n:,}",
                    file=self.table.name,
                    hint="each row is one example: the arrays must have as many rows",
                )
        n = counts[first] if counts else 0
        if n == 0:
            raise SpecError(
                "the data has no examples", file=self.table.name, hint="add at least one row"
            )
        return n

    def fit(self, parts: list[np.ndarray], stacked: bool, want: tuple[Dim, ...]):
        """The per-example shape the model gets from `parts`, or None if they do not fit."""
        have = (sum(_width(p) for p in parts),) if stacked else parts[0].shape[1:]
        return _fit_shape(have, want, self.dims), have

    def shape_error(self, tail, cols, have, wants: list[tuple], what: str) -> SpecError:
        got = " + ".join(map(repr, cols))
        want_text = " or ".join(_shape_text(w) for w in wants)
        return self.error(
            tail,
            f"{got} gives examples of shape {_shape_text(have)}, but {what} takes {want_text}",
            "a flat row of values fits any shape with as many values (filled in row-major "
            "order) and axes of size 1 are ignored; other layouts must be reshaped or "
            "transposed (e.g. channels-last images to channels-first) before training",
        )

    def input(self, name: str, parts, cols, stacked: bool, spec: InputSpec) -> Field:
        shape, have = self.fit(parts, stacked, spec.shape)
        if shape is None:
            raise self.shape_error(("inputs", name), cols, have, [spec.shape], f"input {name!r}")
        f = Field(name, cols, parts, shape, np.dtype(spec.dtype))
        rules = []
        if f.dtype.kind in "iu":
            top = spec.bound if spec.bound is not None else 2**63
            hint = f"input {name!r} takes {spec.dtype} ids in [0, {top})"
            rules = [
                (_is_whole, "is not a whole number", hint),
                (_in_range(0, top), f"is outside [0, {top})", hint),
            ]
        _check(self.table, f, rules)
        return f

    def target(self, name: str, parts, cols, stacked: bool, spec: TargetSpec) -> Field:
        tail = ("targets", name)
        if spec.kind != "classes":
            shape, have = self.fit(parts, stacked, spec.shape)
            if shape is None:
                raise self.shape_error(tail, cols, have, [spec.shape], f"output {name!r}")
            f = Field(name, cols, parts, shape, np.dtype("float32"))
            hint = (
                f"output {name!r} is trained with binary cross-entropy, whose targets are 0 or "
                "1 (or a probability between); for other values use a regression loss"
            )
            unit = [(_in_range(0, 1, closed=True), "is outside [0, 1]", hint)]
            _check(self.table, f, unit if spec.kind == "binary" else [])
            return f
        axis = spec.class_axis % len(spec.shape) if spec.shape else 0
        classes = spec.shape[axis] if spec.shape else None
        if not isinstance(classes, int):
            raise ValueError(f"output {name!r}: the class axis must have a fixed size")
        label_shape = spec.shape[:axis] + spec.shape[axis + 1 :]
        shape, have = self.fit(parts, stacked, label_shape)
        if shape is not None:
            f = Field(name, cols, parts, shape, np.dtype("int64"), "labels")
            hint = (
                f"output {name!r} is trained with cross-entropy over {classes} classes: its "
                f"labels are whole numbers 0..{classes - 1}; for real-valued targets use a "
                "regression loss"
            )
            rules = [
                (_is_whole, "is not a whole number (a class label)", hint),
                (_in_range(0, classes), f"is outside the {classes} classes", hint),
            ]
            _check(self.table, f, rules)
            return f
        shape, have = self.fit(parts, stacked, spec.shape)
        if shape is None:
            raise self.shape_error(
                tail, cols, have, [label_shape, spec.shape], f"output {name!r} (labels or one-hot)"
            )
        f = Field(name, cols, parts, shape, np.dtype("float32"), "onehot")
        hint = (
            f"output {name!r} is trained with cross-entropy; a one-hot row holds a 1 for the "
            "class and 0 elsewhere (or probabilities that sum to 1)"
        )
        _check(self.table, f, [(_in_range(0, 1, closed=True), "is outside [0, 1]", hint)])
        _check_sums(self.table, f, axis, hint)
        return f


_FINITE_HINT = "remove or fill in missing values before training; NaN and Inf are refused"


def _listing(what: str, names, lead: str = "the model has") -> str:
    names = list(names)
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    return f"{lead} {what}: {shown}" if names else f"{lead} no {what}"


def _width(a: np.ndarray) -> int:
    return math.prod(a.shape[1:])


def _shape_text(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _fit_shape(have: tuple[int, ...], want: tuple[Dim, ...], dims: dict[str, int]):
    """The shape examples of shape `have` take for an input of shape `want`, or None.

    Exact (dynamic dimensions take the data's size; a named one must agree wherever it
    appears); or, when `want` is fully fixed, a flat row or the same shape up to axes of size 1,
    reshaped in row-major order."""
    if len(have) == len(want):
        bound: dict[str, int] = {}
        for h, w in zip(have, want, strict=True):
            if isinstance(w, int) and h != w:
                break
            if isinstance(w, str) and dims.get(w, bound.get(w, h)) != h:
                break
            if isinstance(w, str):
                bound[w] = h
        else:
            dims.update(bound)
            return tuple(have)
    if all(isinstance(w, int) for w in want) and math.prod(have) == math.prod(want):
        if len(have) <= 1 or [d for d in have if d != 1] == [d for d in want if d != 1]:
            return tuple(want)
    return None


Rule = Callable[[np.ndarray], np.ndarray]


def _is_finite(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x) if x.dtype.kind == "f" else np.ones(x.shape, bool)


def _is_whole(x: np.ndarray) -> np.ndarray:
    return np.floor(x) == x if x.dtype.kind == "f" else np.ones(x.shape, bool)


def _in_range(lo: float, hi: float, closed: bool = False) -> Rule:
    """Values in [lo, hi) (or [lo, hi] when closed); compared exactly, whatever the dtype."""

    def rule(x: np.ndarray) -> np.ndarray:
        if x.dtype.kind == "b":
            x = x.astype(np.uint8)
        if x.dtype.kind in "iu":
            lo_, hi_ = int(lo), int(hi)
            info = np.iinfo(x.dtype)
            ok = x >= lo_ if lo_ > info.min else np.ones(x.shape, bool)
            if hi_ <= info.max:
                ok &= x <= hi_ if closed else x < hi_
            return ok
        return (x >= lo) & ((x <= hi) if closed else (x < hi))

    return rule


def _chunks(f: Field):
    """(first row, examples) over a field, a bounded number of bytes at a time."""
    per_row = max(1, sum(_width(p) * p.dtype.itemsize for p in f.parts))
    step = max(1, CHUNK_BYTES // per_row)
    for start in range(0, f.rows, step):
        yield start, f.gather(slice(start, start + step))


def _check(table: Table, f: Field, rules: list[tuple[Rule, str, str | None]]) -> None:
    """Raise at the first value of `f` (in row order) that a rule refuses; NaN and Inf are
    refused first of all."""
    rules = [(_is_finite, "is not a finite number", _FINITE_HINT), *rules]
    for start, x in _chunks(f):
        flat = x.reshape(len(x), -1)
        firsts = []
        for i, (rule, _, _) in enumerate(rules):
            bad = ~rule(flat).reshape(-1)
            if bad.any():
                firsts.append((int(np.argmax(bad)), i))
        if firsts:
            pos, i = min(firsts)
            row, at = divmod(pos, flat.shape[1])
            column, index = f.locate(start + row, at)
            _, problem, hint = rules[i]
            raise table.error_at(column, index, f"{_value_text(flat[row, at])} {problem}", hint)


def _check_sums(table: Table, f: Field, axis: int, hint: str) -> None:
    """One-hot or probability rows sum to 1 along the class axis."""
    for start, x in _chunks(f):
        sums = x.astype(np.float64).sum(axis=axis + 1)
        bad = np.abs(sums - 1) > 1e-6
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            flat = int(
                np.ravel_multi_index(where[1 : axis + 1] + (0,) + where[axis + 1 :], f.shape)
            )
            column, index = f.locate(start + where[0], flat)
            raise table.error_at(
                column, index, f"this row's classes sum to {float(sums[where]):g}, not 1", hint
            )


def _value_text(v) -> str:
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


def feature_stats(
    f: Field,
    rows: np.ndarray | None = None,
    axis: int | None = -1,
    chunk_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and population variance of `f` over `rows` (all rows by default), as
    Keras's `Normalization.adapt` defines them: `axis` is the per-example axis whose entries are
    separate features (None: one mean and variance for every value); every other axis, and the
    batch, is averaged over. Computed in float64, streaming over chunks of rows (Chan et al.'s
    pairwise update), so a memory-mapped .npy is never read whole."""
    rows = np.arange(f.rows) if rows is None else np.sort(np.asarray(rows, dtype=np.intp))
    if axis is None:
        keep: tuple[int, ...] = ()
    else:
        if not f.shape:
            raise ValueError("per-feature statistics need examples with at least one axis")
        keep = (axis % len(f.shape),)
    reduce = tuple(a + 1 for a in range(len(f.shape)) if a not in keep) + (0,)
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // max(1, 8 * math.prod(f.shape)))
    count = 0
    mean = m2 = np.zeros([f.shape[a] for a in keep], np.float64)
    for start in range(0, len(rows), chunk_rows):
        x = f.take(rows[start : start + chunk_rows], np.float64)
        n = x.size // max(1, mean.size)
        mu = x.mean(axis=reduce, keepdims=True)
        sq = ((x - mu) ** 2).sum(axis=reduce)
        delta = mu.reshape(mean.shape) - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + sq + delta**2 * (count * n / total)
        count = total
    if count == 0:
        raise ValueError("no rows to compute statistics over")
    return mean, m2 / count
