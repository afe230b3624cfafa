"""`netspec evaluate` and `netspec.evaluate()`: metrics of trained models on ONNX Runtime, PyTorch
and Keras (they must agree exactly on the trained digits CNN, and with the metrics the training
run itself computed), regression, the files of -o, and every user mistake -> a located message,
exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.errors import SpecError
from netspec.evaluate import metrics
from tests.conftest import run_cli

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def train(tmp_path_factory, spec: str, *extra: str) -> Path:
    out = tmp_path_factory.mktemp(spec)
    rc, _, err = run_cli(["train", SPECS / f"{spec}.yaml", "-q", "-o", out, *extra])
    assert rc == 0, err
    return out


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """The digits CNN trained by `netspec train` for 3 epochs (PyTorch)."""
    return train(tmp_path_factory, "digits_cnn", "--epochs", "3")


@pytest.fixture(scope="module")
def exam(tmp_path_factory) -> Path:
    return train(tmp_path_factory, "exam_score")


def evaluate_json(*args) -> dict:
    rc, out, err = run_cli(["evaluate", *args, "--json"])
    assert rc == 0, err
    return json.loads(out)


# -- the metrics themselves (scikit-learn's, on known cases) ------------------------------------
def test_classification_metrics_on_a_known_case():
    true, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    r = metrics.classification(true, pred, 4)  # class 3 never occurs: zeros, not NaN
    assert r["accuracy"] == pytest.approx(0.6) and r["correct"] == 3 and r["examples"] == 5
    assert r["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert r["per_class"]["precision"] == pytest.approx([0.5, 2 / 3, 0.0, 0.0])
    assert r["per_class"]["recall"] == pytest.approx([0.5, 1.0, 0.0, 0.0])
    assert r["per_class"]["support"] == [2, 2, 1, 0]
    assert r["macro"]["recall"] == pytest.approx(1.5 / 4)


def test_regression_metrics_on_a_known_case():
    r = metrics.regression(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [5.0]]))
    assert (r["mae"], r["mse"]) == pytest.approx((2 / 3, 4 / 3))
    assert r["r2"] == pytest.approx(1 - 4 / 2)
    assert metrics.regression(np.array([[1.0]]), np.array([[2.0]]))["r2"] is None


def test_decide_reads_labels_one_hot_and_binary_outputs():
    y = np.array([[0.1, 0.9], [0.8, 0.2]])
    assert [a.tolist() for a in metrics.decide("classes", "input_logits", y, np.array([1, 1]))] == [
        [1, 1],
        [1, 0],
    ]
    onehot = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert metrics.decide("classes", "input_logits", y, onehot)[0].tolist() == [1, 0]
    p = np.array([[0.7], [0.4]])
    assert metrics.decide("binary", "input_logits", p, np.array([[1.0], [0.0]]))[1].tolist() == [
        1,
        0,
    ]
    logits = np.array([[0.3], [-0.1]])  # an output that is a logit: class 1 above 0
    assert metrics.decide("binary", "logits", logits, np.array([[1.0], [0.0]]))[1].tolist() == [
        1,
        0,
    ]


# -- the trained digits CNN on three runtimes ---------------------------------------------------
@pytest.mark.slow  # imports TensorFlow
def test_digits_cnn_onnx_torch_and_keras_agree(digits, keras):
    spec = SPECS / "digits_cnn.yaml"
    weights = digits / "digits_cnn.safetensors"
    reports = {
        "onnx file": evaluate_json(digits / "digits_cnn.onnx", "--spec", spec),
        "onnx": evaluate_json(spec, "--weights", weights),
        "torch": evaluate_json(spec, "--weights", weights, "--target", "torch"),
        "keras": evaluate_json(spec, "--weights", weights, "--target", "keras"),
    }
    results = {k: r["outputs"]["digit"] for k, r in reports.items()}
    first = results["onnx file"]
    for name, r in results.items():
        assert r["accuracy"] == first["accuracy"], name
        assert r["confusion_matrix"] == first["confusion_matrix"], name
        assert r["per_class"] == first["per_class"], name
    # the default part is the test part netspec train held out (359 of 1797), and the
    # accuracy is the one the training script measured on it
    trained = json.loads((digits / "metrics.json").read_text())
    assert reports["onnx file"]["data"] == {
        "source": "sklearn:digits",
        "split": "test",
        "examples": 359,
    }
    assert first["accuracy"] == pytest.approx(trained["test"]["accuracy"], abs=1e-12)
    assert sum(map(sum, first["confusion_matrix"])) == 359
    assert first["accuracy"] > 0.5  # 3 epochs learn something
    # size: the .onnx file on ONNX Runtime, the float32 weights on the frameworks
    assert (
        reports["onnx file"]["model"]["size_bytes"] == (digits / "digits_cnn.onnx").stat().st_size
    )
    assert reports["torch"]["model"]["size_bytes"] == 4 * (6138 + 96)
    assert reports["keras"]["model"]["parameters"] == 6138


def test_the_library_call_and_the_splits(digits):
    graph = netspec.load(SPECS / "digits_cnn.yaml")
    w = digits / "digits_cnn.safetensors"
    parts = {
        s: netspec.evaluate(graph, weights=w, split=s, target="torch")["data"]["examples"]
        for s in ("all", "train", "validation", "test")
    }
    assert parts == {"all": 1797, "train": 1258, "validation": 180, "test": 359}
    on_torch = netspec.evaluate(graph, weights=w, split="all", target="torch")["outputs"]
    on_onnx = netspec.evaluate(graph, weights=w, split="all")["outputs"]
    assert on_torch["digit"]["confusion_matrix"] == on_onnx["digit"]["confusion_matrix"]
    trained = json.loads((digits / "metrics.json").read_text())
    val = netspec.evaluate(graph, weights=w, split="validation", target="torch")
    assert val["outputs"]["digit"]["accuracy"] == pytest.approx(
        trained["validation"]["accuracy"], abs=1e-12
    )
    # a data file named explicitly is evaluated whole by default
    assert netspec.evaluate(graph, "sklearn:digits", weights=w)["data"]["split"] == "all"


def test_terminal_table_and_the_files_of_o(digits, tmp_path):
    out = tmp_path / "eval"
    rc, text, err = run_cli(
        [
            "evaluate",
            SPECS / "digits_cnn.yaml",
            "--weights",
            digits / "digits_cnn.safetensors",
            "-o",
            out,
        ]
    )
    assert rc == 0, err
    assert "digit: accuracy" in text and "confusion matrix" in text and "weighted avg" in text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["confusion_matrix.png", "confusion_matrix.svg", "evaluation.json"]
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["outputs"]["digit"]["task"] == "classification"
    assert str(out / "evaluation.json") in err


# -- regression -----------------------------------------------------------------------------------
def test_exam_score_regression(exam, tmp_path):
    r = evaluate_json(SPECS / "exam_score.yaml", "--weights", exam / "exam_score.safetensors")
    score = r["outputs"]["score"]
    assert score["task"] == "regression" and r["data"]["split"] == "all"
    assert score["r2"] > 0.99 and score["mae"] < 1.0
    trained = json.loads((exam / "metrics.json").read_text())  # no split: train = all rows
    assert score["mse"] == pytest.approx(trained["train"]["loss"], rel=1e-5)
    assert score["mae"] == pytest.approx(trained["train"]["mae"], rel=1e-5)
    rc, _, err = run_cli(
        [
            "evaluate",
            exam / "exam_score.onnx",
            "--spec",
            SPECS / "exam_score.yaml",
            "-o",
            tmp_path,
        ]
    )
    assert rc == 0, err
    assert (tmp_path / "predicted_vs_true.png").is_file()
    assert (tmp_path / "predicted_vs_true.svg").is_file()


def test_apartment_price_validation_part(tmp_path_factory):
    run = train(tmp_path_factory, "apartment_price", "--epochs", "30")
    r = evaluate_json(
        SPECS / "apartment_price.yaml",
        "--weights",
        run / "apartment_price.safetensors",
        "--split",
        "validation",
        "--target",
        "torch",
    )
    price = r["outputs"]["price"]
    trained = json.loads((run / "metrics.json").read_text())
    assert r["data"]["examples"] == 8
    assert price["mae"] == pytest.approx(trained["validation"]["mae"], rel=1e-5)


# -- mistakes: located, exit 2, nothing written ----------------------------------------------------
def fails(*args, out: Path | None = None) -> str:
    extra = ["-o", out] if out is not None else []
    rc, stdout, err = run_cli(["evaluate", *args, *extra])
    assert rc == 2, (stdout, err)
    assert "Traceback" not in err and stdout == ""
    if out is not None:
        assert not out.exists()
    return err


def test_data_that_does_not_fit_the_model(exam, tmp_path):
    w = exam / "exam_score.safetensors"
    err = fails(SPECS / "exam_score.yaml", "--weights", w, "--data", ROOT / "data/salary.csv")
    assert "exam_score.yaml:17:" in err and "no column 'study_hours'" in err
    assert "has columns: years, salary" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("study_hours,score\n1,10\n2,ten\n")
    err = fails(SPECS / "exam_score.yaml", "--weights", w, "--data", bad, out=tmp_path / "o")
    assert f"{bad}:3:3: error: column 'score': 'ten' is not a number" in err


def test_weights_and_models_that_do_not_fit(exam, digits, tmp_path):
    spec = SPECS / "exam_score.yaml"
    err = fails(spec, out=tmp_path / "o")
    assert "no weights to evaluate" in err and "--weights build/exam_score/" in err
    err = fails(spec, "--weights", tmp_path / "missing.safetensors")
    assert "does not exist" in err
    err = fails(spec, "--weights", digits / "digits_cnn.safetensors")
    assert "do not match the spec" in err
    err = fails(digits / "digits_cnn.onnx", "--spec", spec, out=tmp_path / "o")
    assert "does not fit the spec 'exam_score'" in err and "made from the spec 'digits_cnn'" in err
    err = fails(digits / "digits_cnn.onnx")
    assert "add --spec SPEC" in err


def test_options_that_do_not_fit(exam, tmp_path):
    spec, w = SPECS / "exam_score.yaml", exam / "exam_score.safetensors"
    err = fails(spec, "--weights", w, "--split", "test")
    assert "exam_score.yaml" in err and "sets aside no test data" in err
    assert "--split all" in err
    err = fails(SPECS / "mlp.yaml", "--weights", w)
    assert "has no `training:` section" in err
    assert "--batch-size must be at least 1" in fails(spec, "--weights", w, "--batch-size", "0")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "is a file" in fails(spec, "--weights", w, "-o", blocker)
    assert blocker.read_text() == "x"
    with pytest.raises(SpecError, match="cannot evaluate on the 'tflite' target"):
        netspec.evaluate(netspec.load(spec), weights=w, target="tflite")


def test_binary_classifier_xor(tmp_path_factory):
    run = train(tmp_path_factory, "xor", "--epochs", "100")
    r = evaluate_json(SPECS / "xor.yaml", "--weights", run / "xor.safetensors")["outputs"]["out"]
    trained = json.loads((run / "metrics.json").read_text())
    assert r["classes"] == [0, 1] and r["examples"] == 4
    assert r["accuracy"] == trained["train"]["accuracy"]
    assert sum(map(sum, r["confusion_matrix"])) == 4


PROBE = """
import sys
from netspec.cli import main
rc = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "tensorflow", "keras"})
sys.stderr.write(f"\\nPROBE {rc} {heavy}\\n")
"""


def test_onnx_runtime_evaluation_loads_no_framework(exam):
    import subprocess
    import sys

    args = [exam / "exam_score.onnx", "--spec", SPECS / "exam_score.yaml", "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "evaluate", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stderr.splitlines()[-1] == "PROBE 0 []", proc.stderr[-2000:]
    assert json.loads(proc.stdout)["model"]["target"] == "onnx"


def test_an_onnx_model_whose_output_does_not_fit_the_spec(tmp_path):
    rc, _, err = run_cli(["build", SPECS / "iris.yaml", "--target", "onnx", "-o", tmp_path])
    assert rc == 0, err
    four = tmp_path / "iris4.yaml"  # the same spec with 4 classes instead of 3
    four.write_text((SPECS / "iris.yaml").read_text().replace("units: 3}", "units: 4}"))
    err = fails(tmp_path / "iris.onnx", "--spec", four, out=tmp_path / "o")
    assert f"{tmp_path / 'iris.onnx'}: error: the model's output 'species' has examples" in err
    assert "of shape [3], but the spec's output takes [4]" in err


def test_many_classes_leave_the_matrix_to_the_json():
    from netspec.evaluate import report

    true = np.arange(40)
    r = metrics.classification(true, true, 40)
    rep = {
        "model": {"name": "m", "target": "onnx", "parameters": 1, "size_bytes": 4},
        "data": {"source": "d.csv", "split": "all", "examples": 40},
        "outputs": {"y": r},
    }
    text = report.plain(rep)
    assert "y: accuracy 1.0000 (40/40)" in text
    assert "confusion matrix: 40 classes, too many to show here" in text
    assert len(text.splitlines()) < 60
