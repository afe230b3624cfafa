"""Where training data comes from: CSV with a header (by column name), NumPy `.npz` (by array
name), `.npy` (one array, named by the file's stem, memory-mapped) and scikit-learn's bundled
data sets (`sklearn:iris`). Each source is a table of named columns with one row per example;
`netspec.train.data` maps those columns onto a model's inputs and targets.

Reads are bounded: a CSV file or an `.npz` array is read into memory only up to a size limit,
and a `.npy` header is checked against the file's size before the file is mapped, so a header
that declares an absurd shape is refused before anything is allocated.
"""

from __future__ import annotations

import csv
import os
import stat
import zipfile
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import SpecError, did_you_mean

MAX_TEXT_BYTES = 1 << 30  # a CSV file is parsed into memory; larger data belongs in .npy
MAX_ARRAY_BYTES = 4 << 30  # one .npz array, decompressed into memory
MAX_COLUMNS = 100_000
MAX_MEMBERS = 10_000  # arrays in one .npz
MAX_NPY_HEADER = 10_000  # bytes, NumPy's own default
SKLEARN_SETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats


def size_text(n: int) -> str:
    """`1.5 GiB`: a byte count for messages."""
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        size /= 1024
        if size < 1024 or unit == "PiB":
            break
    return f"{size:.1f} {unit}"


class Table:
    """Named columns of equal length; `read` returns each as an array of shape (rows, ...)."""

    name: str  # as the user wrote it, for messages
    names: list[str]
    kind = "column"  # what a name is called in messages: column or array

    def read(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def error_at(self, name: str, index: tuple[int, ...], message: str, hint: str | None):
        """An error about one value: `index` is (row, position within the example...)."""
        where = f"example {index[0]}"
        if len(index) > 1:
            where += f" at [{', '.join(map(str, index[1:]))}]"
        return SpecError(f"{self.kind} {name!r}, {where}: {message}", hint=hint, file=self.name)


def open_source(source: str | os.PathLike | Sequence[str | os.PathLike]) -> Table:
    """The table behind `source`: a file path, `sklearn:NAME`, or several of these whose names
    are put side by side (e.g. `images.npy` and `labels.npy`)."""
    if isinstance(source, str | os.PathLike):
        return _open_one(source)
    tables = [_open_one(s) for s in source]
    if not tables:
        raise SpecError("no data source given", hint="name a .csv, .npz or .npy file")
    return tables[0] if len(tables) == 1 else Joined(tables)


def _open_one(source: str | os.PathLike) -> Table:
    text = os.fspath(source)
    if isinstance(text, str) and text.startswith("sklearn:"):
        return SklearnTable(text.removeprefix("sklearn:"))
    _check_file(str(text))
    suffix = Path(text).suffix.lower()
    readers = {".csv": CsvTable, ".tsv": CsvTable, ".npz": NpzTable, ".npy": NpyTable}
    if suffix not in readers:
        raise SpecError(
            f"unknown data format {suffix or Path(text).name!r}",
            file=str(text),
            hint="expected a .csv or .tsv file with a header, a .npz or .npy file, "
            f"or sklearn:NAME ({', '.join(SKLEARN_SETS)})",
        )
    return readers[suffix](str(text))


def _check_file(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as e:
        raise SpecError(f"cannot read the data: {e.strerror or e}", file=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise SpecError(
            "this is a directory, not a data file",
            file=path,
            hint="name the file itself (.csv, .tsv, .npz or .npy)",
        )
    if not stat.S_ISREG(st.st_mode):
        raise SpecError("not a regular file", file=path, hint="copy the data to a file first")
    if not os.access(path, os.R_OK):
        raise SpecError("cannot read the data: permission denied", file=path)
    return st


class CsvTable(Table):
    """A CSV (or tab-separated .tsv) file whose first row names the columns. Only the columns
    asked for are parsed; every row must have as many cells as the header."""

    def __init__(self, path: str):
        self.name = path
        self.delimiter = "\t" if path.lower().endswith(".tsv") else ","
        size = os.stat(path).st_size
        if size > MAX_TEXT_BYTES:
            raise SpecError(
                f"the file is {size_text(size)}; netspec reads CSV files up to "
                f"{size_text(MAX_TEXT_BYTES)}",
                file=path,
                hint="convert it to .npy: a .npy file is memory-mapped and read batch by batch",
            )
        self.lines = array("q")  # the line each data row starts on
        with self._open() as f:
            self.header_line, header = next(self._records(f), (1, None))
        if header is None:
            raise SpecError("the file is empty", file=path, hint="the first line names the columns")
        self.names = [h.strip() for h in header]
        if len(self.names) > MAX_COLUMNS:
            raise SpecError(f"more than {MAX_COLUMNS:,} columns", file=path, line=self.header_line)
        seen: set[str] = set()
        for i, n in enumerate(self.names):
            if n and n in seen:
                raise self._cell_error(
                    self.header_line, i, f"column {n!r} appears twice in the header", None
                )
            seen.add(n)

    def _open(self):
        return open(self.name, encoding="utf-8-sig", newline="")

    def _records(self, f) -> Iterator[tuple[int, list[str]]]:
        """(line the record starts on, cells) for each non-blank record; errors carry the line."""
        reader = csv.reader(f, delimiter=self.delimiter, skipinitialspace=True, strict=True)
        end = 0  # the last physical line read so far
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise SpecError(
                    f"the file is not UTF-8 text (byte 0x{e.object[e.start]:02x} near line "
                    f"{reader.line_num + 1})",
                    file=self.name,
                    hint="save it as UTF-8 (CSV UTF-8 in a spreadsheet's 'save as')",
                ) from None
            except csv.Error as e:
                raise SpecError(
                    f"not valid CSV: {e}", file=self.name, line=reader.line_num or 1
                ) from None
            start, end = end + 1, reader.line_num
            if any(c.strip() for c in row):
                yield start, row

    def read(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        cols = [self.names.index(n) for n in names]
        values = [array("d") for _ in cols]
        lines = array("q")
        width = len(self.names)
        with self._open() as f:
            records = self._records(f)
            next(records)  # the header
            for line, row in records:
                if len(row) != width:
                    raise self._cell_error(
                        line,
                        width,  # the first cell too many, if any
                        f"this row has {len(row)} cells; the header has {width}",
                        "every row needs one cell per column; quote cells that hold "
                        f"a {'tab' if self.delimiter == chr(9) else 'comma'}",
                    )
                for out, c in zip(values, cols, strict=True):
                    try:
                        out.append(float(row[c]))
                    except ValueError:
                        raise self._not_a_number(line, c, row[c]) from None
                lines.append(line)
        if not lines:
            raise SpecError(
                "the file has a header but no data rows",
                file=self.name,
                line=self.header_line,
                hint="add one row per example below the header",
            )
        self.lines = lines
        return {n: np.frombuffer(v, dtype=np.float64) for n, v in zip(names, values, strict=True)}

    def _not_a_number(self, line: int, c: int, cell: str) -> SpecError:
        name = self.names[c]
        if not cell.strip():
            return self._cell_error(
                line, c, f"column {name!r}: empty cell", "fill in the value or delete the row"
            )
        return self._cell_error(
            line,
            c,
            f"column {name!r}: {cell.strip()!r} is not a number",
            "the columns a model reads hold numbers only; class labels are written as "
            "their index 0, 1, 2, ...",
        )

    def error_at(self, name: str, index: tuple[int, ...], message: str, hint: str | None):
        c = self.names.index(name)
        return self._cell_error(self.lines[index[0]], c, f"column {name!r}: {message}", hint)

    def _cell_error(self, line: int, c: int, message: str, hint: str | None) -> SpecError:
        err = SpecError(message, hint=hint, file=self.name, line=line)
        text = _physical_line(self.name, line)
        if text is not None:
            err.source_line = text
            err.col = _cell_column(text, c, self.delimiter)
        return err


def _physical_line(path: str, line: int) -> str | None:
    """Line `line` (1-based) of a text file, for showing a cell under its error."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            for i, text in enumerate(f, 1):
                if i == line:
                    return text.rstrip("\r\n")
    except OSError:
        pass
    return None


def _cell_column(text: str, c: int, delimiter: str) -> int | None:
    """The 1-based character column where cell `c` of a one-line record starts."""
    try:
        cells = next(csv.reader([text], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return None
    if c >= len(cells):
        return None
    if delimiter.join(cells) == text:  # no quotes: the cells are the text itself
        return sum(len(x) + 1 for x in cells[:c]) + 1
    start = sum(len(x) + 1 for x in cells[:c])  # quoting only ever lengthens the text before
    found = text.find(cells[c], min(start, len(text)))
    if found > 0 and text[found - 1] == '"':  # point at the opening quote
        found -= 1
    return found + 1 if found >= 0 else None


def _npy_header(f, path: str, size: int, member: str | None = None):
    """(shape, dtype, fortran_order, data offset) of an .npy stream, refusing odd ones."""
    what = f"array {member!r}" if member else "the file"
    try:
        version = np.lib.format.read_magic(f)
        read = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, fortran, dtype = read(f, max_header_size=MAX_NPY_HEADER)
    except (ValueError, OSError, EOFError) as e:
        raise SpecError(
            f"{what} is not a NumPy .npy array ({e})",
            file=path,
            hint="write arrays with numpy.save or numpy.savez",
        ) from None
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.names:
        raise SpecError(
            f"{what} holds {dtype} values; netspec reads numbers only",
            file=path,
            hint="save a numeric array (bool, integers or floats); Python objects are never "
            "unpickled",
        )
    if len(shape) == 0:
        raise SpecError(
            f"{what} is a single value; data needs one row per example",
            file=path,
            hint="save an array whose first axis runs over the examples",
        )
    offset = f.tell()
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared != size - offset:
        raise SpecError(
            f"{what} declares shape {list(shape)} of {dtype} ({size_text(declared)}) but holds "
            f"{size_text(max(size - offset, 0))} of data",
            file=path,
            hint="the file is truncated or damaged; write it again with numpy.save",
        )
    return shape, dtype, fortran, offset


class NpyTable(Table):
    """One `.npy` array, named by the file's stem, memory-mapped read-only: rows are read when a
    batch gathers them, so an array larger than memory streams."""

    kind = "array"

    def __init__(self, path: str):
        self.name = path
        size = os.stat(path).st_size
        with open(path, "rb") as f:
            self.shape, self.dtype, _, _ = _npy_header(f, path, size)
        self.names = [Path(path).stem]

    def read(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        try:
            arr = np.load(self.name, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise SpecError(f"cannot map the array: {e}", file=self.name) from None
        return dict.fromkeys(names, arr)


class NpzTable(Table):
    """A `.npz` archive (numpy.savez or savez_compressed); each array asked for is checked by
    its header, then read into memory."""

    kind = "array"

    def __init__(self, path: str):
        self.name = path
        try:
            with zipfile.ZipFile(path) as z:
                infos = [i for i in z.infolist() if i.filename.endswith(".npy")]
        except (zipfile.BadZipFile, OSError) as e:
            raise SpecError(
                f"not a NumPy .npz archive ({e})",
                file=path,
                hint="write it with numpy.savez or numpy.savez_compressed",
            ) from None
        if len(infos) > MAX_MEMBERS:
            raise SpecError(f"more than {MAX_MEMBERS:,} arrays in one archive", file=path)
        if not infos:
            raise SpecError("the archive holds no arrays", file=path)
        self.members = {i.filename.removesuffix(".npy"): i for i in infos}
        self.names = list(self.members)

    def read(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        out = {}
        with zipfile.ZipFile(self.name) as z:
            for n in names:
                info = self.members[n]
                with z.open(info) as f:
                    shape, dtype, fortran, _ = _npy_header(f, self.name, info.file_size, n)
                    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if nbytes > MAX_ARRAY_BYTES:
                        raise SpecError(
                            f"array {n!r} is {size_text(nbytes)}; netspec reads .npz arrays "
                            f"up to {size_text(MAX_ARRAY_BYTES)} into memory",
                            file=self.name,
                            hint=f"save it as its own .npy file ({n}.npy), which is "
                            "memory-mapped and read batch by batch",
                        )
                    data = f.read(nbytes)
                if len(data) != nbytes:
                    raise SpecError(f"array {n!r} is truncated", file=self.name)
                arr = np.frombuffer(data, dtype=dtype)
                out[n] = arr.reshape(shape, order="F" if fortran else "C")
        return out


class SklearnTable(Table):
    """One of scikit-learn's bundled data sets (no download): arrays `data` (examples x
    features), `target`, `images` for digits, and each feature by its scikit-learn name."""

    kind = "array"

    def __init__(self, dataset: str):
        self.name = f"sklearn:{dataset}"
        if dataset not in SKLEARN_SETS:
            guess = did_you_mean(dataset, SKLEARN_SETS)
            raise SpecError(
                f"unknown scikit-learn data set {dataset!r}",
                file=self.name,
                hint=f"did you mean '{guess}'?"
                if guess
                else "expected one of: " + ", ".join(SKLEARN_SETS),
            )
        try:
            from sklearn import datasets
        except ImportError:
            raise SpecError(
                "scikit-learn is not installed",
                file=self.name,
                hint="pip install 'netspec[train]'",
            ) from None
        bunch = getattr(datasets, f"load_{dataset}")()
        self.arrays = {"data": np.asarray(bunch.data), "target": np.asarray(bunch.target)}
        if "images" in bunch:
            self.arrays["images"] = np.asarray(bunch.images)
        for i, feature in enumerate(bunch.feature_names):
            self.arrays.setdefault(str(feature), self.arrays["data"][:, i])
        self.names = list(self.arrays)

    def read(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        return {n: self.arrays[n] for n in names}


class Joined(Table):
    """Several sources side by side (`x.npy` + `y.npy`): names must not repeat."""

    def __init__(self, tables: list[Table]):
        self.tables = tables
        self.name = " + ".join(t.name for t in tables)
        self.owner: dict[str, Table] = {}
        for t in tables:
            for n in t.names:
                if n in self.owner:
                    raise SpecError(
                        f"{n!r} is in both {self.owner[n].name} and {t.name}",
                        file=t.name,
                        hint="rename one of them; names must be unique across the data files",
                    )
                self.owner[n] = t
        self.names = list(self.owner)
        kinds = {t.kind for t in tables}
        self.kind = kinds.pop() if len(kinds) == 1 else "column or array"

    def read(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for t in self.tables:
            mine = [n for n in names if self.owner[n] is t]
            if mine:
                out.update(t.read(mine))
        return out

    def error_at(self, name: str, index: tuple[int, ...], message: str, hint: str | None):
        return self.owner[name].error_at(name, index, message, hint)

    def source_of(self, name: str) -> str:
        return self.owner[name].name
