"""Training data: reading CSV / .npz / .npy / scikit-learn sets, mapping columns onto inputs and
targets, the checks and their messages, reproducible splits, batch order, and normalization
statistics (netspec/train/data.py, sources.py, split.py; docs/training-data.md)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from netspec.errors import SpecError
from netspec.train import data as data_mod
from netspec.train import sources
from netspec.train.data import (
    DataMap,
    InputSpec,
    TargetSpec,
    feature_stats,
    input_specs,
    load_data,
)
from netspec.train.split import batch_count, batches, epoch_order, permutation, split_rows

DATA = ROOT / "data"


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return str(path)


def regression(inputs: dict, target: str, n_in: int = 1, n_out: int = 1, **kw):
    """A mapping for one input `x` of `n_in` features and one regression output `y`."""
    return (
        DataMap(inputs={"x": inputs}, targets={"y": target}, **kw),
        {"x": InputSpec((n_in,))},
        {"y": TargetSpec("regression", (n_out,))},
    )


def error_of(source, mapping, inputs, targets) -> str:
    with pytest.raises(SpecError) as e:
        load_data(source, mapping, inputs, targets)
    return str(e.value)


# --- reading and mapping -----------------------------------------------------------------


def test_csv_columns_stack_into_one_input(tmp_path):
    mapping = regression(["study_hours", "sleep_hours"], "score", n_in=2)
    d = load_data(DATA / "student_score_sleep.csv", *mapping)
    assert d.rows == 10
    x, y = d.take(np.array([0, 3]))
    np.testing.assert_array_equal(x["x"], [[9, 5], [2, 3]])
    np.testing.assert_array_equal(y["y"], [[90], [20]])
    assert x["x"].dtype == np.float32 and y["y"].dtype == np.float32
    x64, _ = d.take(np.array([1]), np.float64)
    assert x64["x"].dtype == np.float64


def test_student_score_has_the_course_points_on_y_equals_10x():
    rows = list(csv.DictReader(open(DATA / "student_score.csv", encoding="utf-8")))
    points = {(float(r["study_hours"]), float(r["score"])) for r in rows}
    assert {(9, 90), (8, 80), (4, 40), (2, 20)} <= points
    assert all(s == 10 * h for h, s in points) and len(points) > 4


@pytest.mark.parametrize("path", sorted(DATA.glob("*.csv")), ids=lambda p: p.stem)
def test_every_shipped_csv_reads_as_numbers(path):
    table = sources.open_source(path)
    arrays = table.read(table.names)
    lengths = {len(a) for a in arrays.values()}
    assert len(lengths) == 1 and lengths.pop() >= 4
    assert all(np.isfinite(a).all() for a in arrays.values())
    assert path.name in (DATA / "README.md").read_text("utf-8")


def test_shipped_labels_are_classes():
    *inputs, label = ["interview", "practical", "written", "passed"]
    d = load_data(
        DATA / "pass_fail.csv",
        DataMap({"x": inputs}, {"p": label}),
        {"x": InputSpec((3,))},
        {"p": TargetSpec("binary", (1,))},
    )
    assert set(np.unique(d.targets["p"].take(np.arange(d.rows)))) == {0.0, 1.0}
    d = load_data(
        DATA / "xor.csv",
        DataMap({"bits": ["a", "b"]}, {"out": "xor"}),
        {"bits": InputSpec((2,))},
        {"out": TargetSpec("classes", (2,))},
    )
    assert d.targets["out"].form == "labels"
    np.testing.assert_array_equal(d.targets["out"].take(np.arange(4)), [0, 1, 1, 0])


def test_npz_by_array_names(tmp_path):
    path = tmp_path / "d.npz"
    x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    np.savez_compressed(path, images=x, labels=np.array([0, 2, 1, 2]))
    d = load_data(
        path,
        DataMap({"img": "images"}, {"cls": "labels"}),
        {"img": InputSpec((2, 3))},
        {"cls": TargetSpec("classes", (3,))},
    )
    imgs, labels = d.take(np.array([2, 0]))
    np.testing.assert_array_equal(imgs["img"], x[[2, 0]])
    assert labels["cls"].dtype == np.int64 and labels["cls"].tolist() == [1, 0]


def test_npy_is_memory_mapped_and_batches_gather_rows(tmp_path):
    x = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    np.save(tmp_path / "features.npy", x)
    np.save(tmp_path / "price.npy", x.sum(axis=1))
    d = load_data(
        [tmp_path / "features.npy", tmp_path / "price.npy"], *regression("features", "price", 3)
    )
    assert isinstance(d.inputs["x"].parts[0], np.memmap)
    rows = np.array([999, 5, 17])
    batch, target = d.take(rows)
    assert not isinstance(batch["x"], np.memmap)
    np.testing.assert_array_equal(batch["x"], x[rows])
    np.testing.assert_allclose(target["y"][:, 0], x[rows].sum(axis=1), rtol=1e-6)


def test_flat_rows_fill_an_image_and_size_one_axes_are_ignored(tmp_path):
    flat = np.arange(2 * 64, dtype=np.float32).reshape(2, 64)
    np.savez(tmp_path / "d.npz", flat=flat, square=flat.reshape(2, 8, 8), y=np.zeros((2, 1)))
    for name in ("flat", "square"):
        d = load_data(
            tmp_path / "d.npz",
            DataMap({"img": name}, {"out": "y"}),
            {"img": InputSpec((1, 8, 8))},
            {"out": TargetSpec("regression", (1,))},
        )
        np.testing.assert_array_equal(d.take(np.array([1]))[0]["img"][0, 0], flat[1].reshape(8, 8))


def test_a_named_dynamic_axis_must_agree_between_input_and_labels(tmp_path):
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    np.savez(tmp_path / "s.npz", ids=ids, next=np.roll(ids, -1, axis=1), short=ids[:, :2])
    ins = {"tokens": InputSpec(("time",), "int64", bound=10)}
    outs = {"scores": TargetSpec("classes", ("time", 10))}
    d = load_data(tmp_path / "s.npz", DataMap({"tokens": "ids"}, {"scores": "next"}), ins, outs)
    assert d.inputs["tokens"].take(np.array([0])).dtype == np.int64
    assert d.targets["scores"].form == "labels" and d.targets["scores"].shape == (3,)
    msg = error_of(tmp_path / "s.npz", DataMap({"tokens": "ids"}, {"scores": "short"}), ins, outs)
    assert "'short' gives examples of shape [2], but output 'scores'" in msg


def test_input_specs_of_a_spec_bound_ids_by_the_vocabulary():
    import netspec

    specs = input_specs(netspec.load(ROOT / "specs/char_lstm.yaml"))
    ((_, spec_),) = specs.items()
    assert spec_.dtype == "int64" and spec_.bound == 65 and len(spec_.shape) == 1
    assert input_specs(netspec.load(ROOT / "specs/student_score.yaml")) == {"x": InputSpec((2,))}


def test_one_hot_rows_are_accepted_for_classes(tmp_path):
    path = write(
        tmp_path / "oh.csv",
        """
        f,is_a,is_b,is_c
        1,0,1,0
        2,1,0,0
        """,
    )
    d = load_data(
        path,
        DataMap({"x": "f"}, {"y": ["is_a", "is_b", "is_c"]}),
        {"x": InputSpec((1,))},
        {"y": TargetSpec("classes", (3,))},
    )
    assert d.targets["y"].form == "onehot"
    np.testing.assert_array_equal(d.targets["y"].take(np.array([0])), [[0, 1, 0]])


def test_csv_tolerates_a_bom_spaces_and_blank_lines(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes("\ufeffa, b\r\n1, 2\r\n\r\n3, 4\r\n\r\n".encode())
    d = load_data(path, *regression("a", "b"))
    np.testing.assert_array_equal(d.take(np.arange(2))[1]["y"], [[2], [4]])


def test_tab_separated_values(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\t2\n3\tx y\n", "utf-8")
    msg = error_of(path, *regression("a", "b"))
    assert msg.startswith(f"{path}:3:3: error: column 'b': 'x y' is not a number")


def test_sklearn_sets_open_by_name():
    pytest.importorskip("sklearn")
    d = load_data(
        "sklearn:iris",
        DataMap({"x": "data"}, {"species": "target"}),
        {"x": InputSpec((4,))},
        {"species": TargetSpec("classes", (3,))},
    )
    assert d.rows == 150 and d.targets["species"].form == "labels"
    digits = load_data(
        "sklearn:digits",
        DataMap({"img": "images"}, {"digit": "target"}),
        {"img": InputSpec((1, 8, 8))},
        {"digit": TargetSpec("classes", (10,))},
    )
    assert digits.rows == 1797
    for name in sources.SKLEARN_SETS:
        assert {"data", "target"} <= set(sources.open_source(f"sklearn:{name}").names)
    wine = sources.open_source("sklearn:wine")
    assert "alcohol" in wine.names


def test_importing_the_data_module_loads_no_framework():
    code = (
        "import sys, netspec.train.data, netspec.train.split\n"
        "bad = {'sklearn', 'torch', 'tensorflow', 'keras'} & set(sys.modules)\n"
        "assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# --- errors for people ---------------------------------------------------------------------


def test_missing_column_names_the_file_columns_and_a_guess():
    msg = error_of(
        DATA / "student_score_sleep.csv", *regression(["study_hours", "sleep"], "score", 2)
    )
    assert "no column 'sleep' in" in msg and "inputs.x[1]" in msg
    assert "did you mean 'sleep_hours'?" in msg
    assert "has columns: study_hours, sleep_hours, score" in msg


def test_mapping_errors_point_into_the_spec():
    from netspec import yamlload

    text = textwrap.dedent(
        """
        training:
          data:
            inputs:
              x: [study_hours, sleep_hour]
            targets: {y: score}
        """
    ).lstrip()
    doc = yamlload.parse(text, "spec.yaml")
    m = doc.data["training"]["data"]
    mapping = DataMap(m["inputs"], m["targets"], path=("training", "data"))
    with pytest.raises(SpecError) as e:
        load_data(
            DATA / "student_score_sleep.csv",
            mapping,
            {"x": InputSpec((2,))},
            {"y": TargetSpec("regression", (1,))},
        )
    msg = str(doc.locate(e.value))
    assert msg.startswith("spec.yaml:4:24: error: training.data.inputs.x[1]: no column")


def test_unknown_and_unmapped_inputs():
    mapping = DataMap({"xx": "study_hours"}, {"y": "score"})
    ins, outs = {"x": InputSpec((1,))}, {"y": TargetSpec("regression", (1,))}
    msg = error_of(DATA / "student_score.csv", mapping, ins, outs)
    assert "the model has no input 'xx'" in msg and "did you mean 'x'?" in msg
    msg = error_of(DATA / "student_score.csv", DataMap({"x": "study_hours"}), ins, outs)
    assert "no data for trained output 'y'" in msg


def test_non_numeric_cell_is_located_by_line_and_column(tmp_path):
    path = write(
        tmp_path / "s.csv",
        """
        hours,score
        1,10
        2,"twenty"
        """,
    )
    msg = error_of(path, *regression("hours", "score"))
    assert msg.startswith(f"{path}:3:3: error: column 'score': 'twenty' is not a number")
    assert '2,"twenty"\n      ^' in msg


@pytest.mark.parametrize(
    "body, expected",
    [
        ("a,b\n1,\n", ":2:3: error: column 'b': empty cell"),
        ("a,b\n1,2\nnan,3\n", ":3:1: error: column 'a': nan is not a finite number"),
        ("a,b\n1,2\n3,inf\n", ":3:3: error: column 'b': inf is not a finite number"),
        ("a,b\n1,2\n3,4,5\n", ":3:5: error: this row has 3 cells; the header has 2"),
        ("a,b\n1\n", ":2:1: error: this row has 1 cells; the header has 2"),
        ("", ": error: the file is empty"),
        ("a,b\n", ":1:1: error: the file has a header but no data rows"),
        ("a,a\n1,2\n", ":1:3: error: column 'a' appears twice in the header"),
    ],
)
def test_csv_content_errors(tmp_path, body, expected):
    path = tmp_path / "d.csv"
    path.write_text(body, "utf-8")
    msg = error_of(path, *regression("a", "b"))
    assert msg.startswith(str(path) + expected), msg


def test_malformed_csv_is_reported_with_its_line(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('a,b\n1,2\n3,"4"x\n', "utf-8")
    assert error_of(path, *regression("a", "b")).startswith(f"{path}:3:1: error: not valid CSV")
    path.write_text("a,b\n1," + "9" * 200_000 + "\n", "utf-8")
    msg = error_of(path, *regression("a", "b"))
    assert msg.startswith(f"{path}:2:1: error: not valid CSV: field larger than field limit")


def test_non_utf8_csv(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,b\n1,2\n3,caf\xe9\n".encode("latin-1"))
    assert "is not UTF-8 text (byte 0xe9" in error_of(path, *regression("a", "b"))


def test_target_values_must_fit_the_loss(tmp_path):
    path = write(
        tmp_path / "t.csv",
        """
        x,label,prob
        1,0,0.5
        2,3,1.5
        3,0.5,1
        """,
    )
    ins = {"x": InputSpec((1,))}
    classes = {"y": TargetSpec("classes", (3,))}
    msg = error_of(path, DataMap({"x": "x"}, {"y": "label"}), ins, classes)
    assert msg.startswith(f"{path}:3:3: error: column 'label': 3 is outside the 3 classes")
    assert "labels are whole numbers 0..2" in msg
    msg = error_of(
        path, DataMap({"x": "x"}, {"y": "label"}), ins, {"y": TargetSpec("classes", (4,))}
    )
    assert "column 'label': 0.5 is not a whole number (a class label)" in msg
    msg = error_of(path, DataMap({"x": "x"}, {"y": "prob"}), ins, {"y": TargetSpec("binary", (1,))})
    assert f"{path}:3:5: error: column 'prob': 1.5 is outside [0, 1]" in msg
    assert "binary cross-entropy" in msg


def test_one_hot_rows_must_sum_to_one(tmp_path):
    path = write(tmp_path / "oh.csv", "f,a,b\n1,1,0\n2,1,1\n")
    msg = error_of(
        path,
        DataMap({"x": "f"}, {"y": ["a", "b"]}),
        {"x": InputSpec((1,))},
        {"y": TargetSpec("classes", (2,))},
    )
    assert f"{path}:3:3: error: column 'a': this row's classes sum to 2, not 1" in msg


def test_shape_that_does_not_fit_the_input(tmp_path):
    np.savez(tmp_path / "d.npz", nhwc=np.zeros((2, 8, 8, 3)), y=np.zeros(2))
    msg = error_of(
        tmp_path / "d.npz",
        DataMap({"img": "nhwc"}, {"y": "y"}),
        {"img": InputSpec((3, 8, 8))},
        {"y": TargetSpec("regression", (1,))},
    )
    assert "'nhwc' gives examples of shape [8, 8, 3], but input 'img' takes [3, 8, 8]" in msg
    assert "transposed" in msg
    msg = error_of(DATA / "student_score_sleep.csv", *regression(["study_hours"], "score", 2))
    assert "'study_hours' gives examples of shape [1], but input 'x' takes [2]" in msg


def test_ids_must_be_whole_and_within_the_vocabulary(tmp_path):
    np.savez(tmp_path / "d.npz", ids=np.array([[1.0, 2.5]]), big=np.array([[1, 12]]), y=[0.0])
    ins = {"t": InputSpec((2,), "int64", bound=10)}
    outs = {"y": TargetSpec("regression", (1,))}
    msg = error_of(tmp_path / "d.npz", DataMap({"t": "ids"}, {"y": "y"}), ins, outs)
    assert "array 'ids', example 0 at [1]: 2.5 is not a whole number" in msg
    msg = error_of(tmp_path / "d.npz", DataMap({"t": "big"}, {"y": "y"}), ins, outs)
    assert "array 'big', example 0 at [1]: 12 is outside [0, 10)" in msg


def test_nan_in_a_memory_mapped_array_is_found_by_index(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "CHUNK_BYTES", 64)  # many chunks: the check streams
    x = np.ones((100, 4), np.float32)
    x[73, 2] = np.inf
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.ones(100))
    msg = error_of([tmp_path / "x.npy", tmp_path / "y.npy"], *regression("x", "y", 4))
    assert msg.startswith(f"{tmp_path / 'x.npy'}: error: array 'x', example 73 at [2]: inf is not")


def test_npy_header_with_absurd_shape_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npy"
    with open(path, "wb") as f:
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**15, 10**6)}
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    msg = error_of(path, *regression("huge", "huge"))
    assert "declares shape [1000000000000000, 1000000] of float64" in msg
    assert "holds 64 bytes of data" in msg and "truncated" in msg


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.array([{"a": 1}], dtype=object), "holds object values; netspec reads numbers only"),
        (np.array(["a", "b"]), "holds <U1 values"),
        (np.float32(1.0), "is a single value"),
    ],
)
def test_npy_that_is_not_numeric_rows(tmp_path, array, expected):
    np.save(tmp_path / "x.npy", array, allow_pickle=True)
    assert expected in error_of(tmp_path / "x.npy", *regression("x", "x"))


def test_files_of_different_lengths_and_clashing_names(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 1)))
    np.save(tmp_path / "y.npy", np.zeros(4))
    msg = error_of([tmp_path / "x.npy", tmp_path / "y.npy"], *regression("x", "y"))
    assert "'x' has 5 rows but 'y' has 4" in msg
    np.savez(tmp_path / "d.npz", x=np.zeros(5))
    msg = error_of([tmp_path / "x.npy", tmp_path / "d.npz"], *regression("x", "x"))
    assert "'x' is in both" in msg


def test_bad_paths(tmp_path):
    mapping = regression("a", "b")
    assert "this is a directory, not a data file" in error_of(tmp_path, *mapping)
    (tmp_path / "sub.csv").mkdir()
    assert "this is a directory" in error_of(tmp_path / "sub.csv", *mapping)
    msg = error_of(tmp_path / "nope.csv", *mapping)
    assert msg.startswith(f"{tmp_path / 'nope.csv'}: error: cannot read the data: No such file")
    assert "unknown data format '.txt'" in error_of(write(tmp_path / "d.txt", "a"), *mapping)
    assert "did you mean 'iris'?" in error_of("sklearn:irsi", *mapping)
    assert "not a NumPy .npz archive" in error_of(write(tmp_path / "z.npz", "hi"), *mapping)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = write(tmp_path / "locked.csv", "a,b\n1,2\n")
    os.chmod(path, 0)
    try:
        assert "permission denied" in error_of(path, *regression("a", "b"))
    finally:
        os.chmod(path, 0o600)


def test_csv_too_large_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_TEXT_BYTES", 100)
    path = write(tmp_path / "big.csv", "a,b\n" + "1,2\n" * 50)
    msg = error_of(path, *regression("a", "b"))
    assert "the file is 204 bytes; netspec reads CSV files up to 100 bytes" in msg
    assert "convert it to .npy" in msg


def test_npz_array_too_large_for_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_ARRAY_BYTES", 100)
    np.savez(tmp_path / "d.npz", x=np.zeros(100))
    msg = error_of(tmp_path / "d.npz", *regression("x", "x"))
    assert "array 'x' is 800 bytes; netspec reads .npz arrays up to 100 bytes" in msg


# --- splits and batch order ----------------------------------------------------------------


def test_split_golden_values():
    s = split_rows(10, seed=0, validation=0.2, test=0.2)
    assert s.train.tolist() == [0, 2, 3, 6, 8, 9]
    assert s.validation.tolist() == [4, 7]
    assert s.test.tolist() == [1, 5]


def test_epoch_order_golden_values():
    assert epoch_order(10, seed=0, epoch=0).tolist() == [0, 4, 6, 3, 9, 5, 7, 1, 8, 2]
    assert epoch_order(10, seed=0, epoch=1).tolist() == [9, 3, 4, 0, 8, 6, 1, 2, 7, 5]
    assert epoch_order(10, seed=7, epoch=0).tolist() == [8, 6, 4, 0, 5, 7, 1, 3, 9, 2]
    assert permutation(12, 42, 2, 3).tolist() == [0, 5, 3, 2, 8, 10, 4, 7, 6, 11, 1, 9]
    assert epoch_order(4, seed=0, epoch=0, shuffle=False).tolist() == [0, 1, 2, 3]


def test_epoch_order_is_the_documented_one_liner():
    seed, epoch, n = 1234, 5, 1000
    raw = np.random.PCG64(np.random.SeedSequence([seed, 2, epoch])).random_raw(n)
    np.testing.assert_array_equal(epoch_order(n, seed, epoch), np.argsort(raw, kind="stable"))
    assert (
        "np.random.SeedSequence([seed, 2, epoch])" in (ROOT / "docs/training-data.md").read_text()
    )


@pytest.mark.parametrize("n, val, test", [(150, 0.2, 0.2), (7, 0.1, 0.0), (3, 0.0, 0.5), (1, 0, 0)])
def test_split_is_a_partition_sized_by_rounding(n, val, test):
    s = split_rows(n, 3, val, test)
    parts = np.concatenate([s.train, s.validation, s.test])
    assert sorted(parts.tolist()) == list(range(n))
    expect = [max(1, int(n * f + 0.5)) if f else 0 for f in (val, test)]
    assert [len(s.validation), len(s.test)] == expect
    assert all((np.diff(p) > 0).all() for p in (s.train, s.validation, s.test))
    again = split_rows(n, 3, val, test)
    for part in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(s, part), getattr(again, part))


def test_split_rounds_the_fraction_as_written():
    assert 45 * 0.7 < 31.5  # the float product; the fraction as written gives 31.5: 32
    assert len(split_rows(45, 0, validation=0.7).validation) == 32
    assert len(split_rows(30, 0, test=0.1).test) == 3  # 0.1 * 30 = 3.0000000000000004


def test_split_errors():
    with pytest.raises(SpecError, match="leave none for training"):
        split_rows(3, 0, 0.5, 0.5)
    with pytest.raises(SpecError, match=r"validation fraction must be in \[0, 1\)"):
        split_rows(10, 0, 1.0)
    with pytest.raises(SpecError, match="seed must be a whole number"):
        epoch_order(10, -1, 0)


def test_batches_keep_the_last_partial_batch():
    order = epoch_order(10, 0, 0)
    got = list(batches(order, 4))
    assert [len(b) for b in got] == [4, 4, 2] == [4, 4, 10 - 8]
    assert batch_count(10, 4) == 3 and batch_count(8, 4) == 2
    np.testing.assert_array_equal(np.concatenate(got), order)
    with pytest.raises(SpecError):
        list(batches(order, 0))


def test_epochs_differ_and_do_not_depend_on_the_split_stream():
    orders = [epoch_order(50, 0, e).tolist() for e in range(5)]
    assert len({tuple(o) for o in orders}) == 5
    assert permutation(50, 0, 1).tolist() not in orders


# --- normalization statistics --------------------------------------------------------------


def test_feature_stats_match_numpy_population_variance(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(5000, 3)) * [1, 10, 1000] + [5, -3, 1e6]).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.zeros(len(x)))
    d = load_data([tmp_path / "x.npy", tmp_path / "y.npy"], *regression("x", "y", 3))
    rows = np.sort(rng.choice(len(x), 3000, replace=False))
    monkeypatch.setattr(data_mod, "CHUNK_BYTES", 4096)  # ~170 chunks
    mean, var = feature_stats(d.inputs["x"], rows)
    ref = x[rows].astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, ref.var(axis=0), rtol=1e-10)
    mean, var = feature_stats(d.inputs["x"], axis=None, chunk_rows=7)
    np.testing.assert_allclose(
        [mean, var], [x.astype(np.float64).mean(), x.astype(np.float64).var()]
    )


def test_feature_stats_per_channel_of_channels_first_images(tmp_path):
    x = np.random.default_rng(2).normal(size=(20, 3, 4, 4)) + np.array([0, 10, 20])[:, None, None]
    np.savez(tmp_path / "d.npz", img=x, y=np.zeros(20))
    d = load_data(
        tmp_path / "d.npz",
        DataMap({"i": "img"}, {"o": "y"}),
        {"i": InputSpec((3, 4, 4))},
        {"o": TargetSpec("regression", (1,))},
    )
    mean, var = feature_stats(d.inputs["i"], axis=0, chunk_rows=3)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3)), rtol=1e-12)


def test_the_pieces_make_a_training_loop_that_finds_the_course_slope():
    """Split, batch order, batches and take, with plain numpy gradient descent on y = w x + b:
    the student-score data gives w = 10 (the course's answer)."""
    d = load_data(DATA / "student_score.csv", *regression("study_hours", "score"))
    parts = split_rows(d.rows, seed=0, validation=0.2)
    w, b, lr = 0.0, 0.0, 0.01
    for epoch in range(2000):
        order = parts.train[epoch_order(len(parts.train), 0, epoch)]
        for rows in batches(order, 4):
            x, y = d.take(rows, np.float64)
            err = w * x["x"] + b - y["y"]
            w, b = w - lr * 2 * float((err * x["x"]).mean()), b - lr * 2 * float(err.mean())
    assert abs(w - 10) < 0.1 and abs(b) < 0.5
    xv, yv = d.take(parts.validation, np.float64)
    np.testing.assert_allclose(w * xv["x"] + b, yv["y"], atol=1.0)
