"""Reliability II, class 6: the errors a new user met, each with the hint that would have
helped: another framework's names (`linear`, `he`, `xavier`), no misleading did-you-mean, a
channels-last input, weights errors located at the file (a folder given as weights, a file built
with other params), a spec or a CSV given to `netspec run`, and `inspect` saying what it assumed
for dynamic axes (or sizing them with `--dims`)."""

from __future__ import annotations

import pytest
from conftest import ROOT, run_cli

LSTM = ROOT / "specs" / "char_lstm.yaml"
MLP = ROOT / "specs" / "mlp.yaml"


def one_layer(tmp_path, layer: str, shape: str = "[3]", more: str = ""):
    p = tmp_path / "s.yaml"
    p.write_text(
        f"netspec: 1\nname: s\ninputs:\n  x: {{shape: {shape}}}\nlayers:\n  - {layer}\n{more}"
    )
    return p


@pytest.mark.parametrize(
    "layer, hint",
    [
        ("{op: dense, units: 2, activation: linear}", "did you mean 'identity'?"),
        ("{op: dense, units: 2, init: he}", "did you mean 'he_uniform'?"),
        ("{op: dense, units: 2, init: xavier}", "did you mean 'glorot_uniform'?"),
        ("{op: dense, units: 2, init: kaiming_normal}", "did you mean 'he_normal'?"),
        ("{op: Dense, units: 2}", "did you mean 'dense'?"),
        ("{op: dens, units: 2}", "did you mean 'dense'?"),
    ],
)
def test_other_frameworks_names_get_the_real_name(tmp_path, layer, hint):
    rc, _, err = run_cli(["validate", one_layer(tmp_path, layer)])
    assert rc == 2 and hint in err, err


def test_no_misleading_did_you_mean(tmp_path):
    # difflib alone rates 'retention' close to 'attention' (and, before attention existed,
    # 'attention' close to 'flatten'): a different word, not a typo
    rc, _, err = run_cli(["validate", one_layer(tmp_path, "{op: retention}")])
    assert rc == 2 and "unknown op 'retention'" in err
    assert "did you mean" not in err


def test_channels_last_input_says_shapes_are_channels_first(tmp_path):
    spec = one_layer(tmp_path, "{op: conv2d, filters: 4, kernel: 3}", "[8, 8, 1]")
    rc, _, err = run_cli(["validate", spec])
    assert rc == 2
    assert "channels-first" in err and "write [1, 8, 8]" in err


def test_weights_folder_names_the_file_inside(tmp_path):
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", tmp_path, "-q"])
    assert rc == 0, err
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", tmp_path / "b", "--weights", tmp_path])
    assert rc == 2, err
    assert err.startswith(f"{tmp_path}:") and "is a folder" in err
    assert "mlp.safetensors" in err and "<spec>" not in err


def test_weights_built_with_other_params_say_which(tmp_path):
    rc, _, err = run_cli(["build", LSTM, "-t", "onnx", "-o", tmp_path, "-q"])
    assert rc == 0, err
    w = tmp_path / "char_lstm.safetensors"
    rc, _, err = run_cli(
        ["build", LSTM, "-t", "onnx", "-o", tmp_path / "b", "--set", "hidden=64", "--weights", w]
    )
    assert rc == 2, err
    assert "built with hidden=128" in err and "--set" in err


def test_spec_given_to_run(tmp_path):
    pytest.importorskip("onnxruntime")
    rc, _, err = run_cli(["run", MLP])
    assert rc == 2, err
    assert "is a spec, not an ONNX model" in err and "netspec build" in err
    assert "Protobuf" not in err


def test_csv_given_to_run_input(tmp_path):
    pytest.importorskip("onnxruntime")
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", tmp_path, "-q"])
    assert rc == 0, err
    csv = tmp_path / "x.csv"
    csv.write_text("a,b,c\n1,2,3\n")
    rc, _, err = run_cli(["run", tmp_path / "mlp.onnx", "--input", f"x={csv}"])
    assert rc == 2, err
    assert "numpy.save" in err and "pickled" not in err


def test_inspect_says_what_it_assumed_and_takes_dims():
    rc, out, err = run_cli(["inspect", LSTM])
    assert rc == 0, err
    assert "tokens_1 counted as 1" in out
    rc, sized, err = run_cli(["inspect", LSTM, "--dims", "tokens_1=100"])
    assert rc == 0, err
    assert "counted as 1" not in sized and "[N, 100, 65]" in sized

    def macs(text):
        line = next(ln for ln in text.splitlines() if ln.startswith("MACs"))
        return int(line.split()[1].replace(",", ""))

    assert macs(sized) == 100 * macs(out)  # every layer here is per time step
    rc, _, err = run_cli(["inspect", LSTM, "--dims", "seq=100"])
    assert rc == 2 and "unknown dynamic axis 'seq'" in err and "tokens_1" in err


def test_batch_norm_after_a_recurrent_layer_suggests_layer_norm(tmp_path):
    spec = one_layer(
        tmp_path,
        "{op: lstm, units: 16, return_sequences: true}\n  - {op: batch_norm}",
        "[seq, 8]",
    )
    rc, _, err = run_cli(["validate", spec])
    assert rc == 2, err
    assert "layer_norm" in err and "time axis" in err
    assert "give that axis a size" not in err


def test_training_data_mapping_errors_are_located_in_the_spec(tmp_path):
    # found only when the data is read, after the spec loaded: still at its line, not `<spec>:`
    text = (ROOT / "specs" / "exam_score.yaml").read_text(encoding="utf-8")
    text = text.replace("hours: study_hours", "hours: study_hourz")
    text = text.replace("../data/", f"{ROOT.as_posix()}/data/")
    spec = tmp_path / "exam.yaml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    rc, _, err = run_cli(["train", spec, "-o", out, "-q"])
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "study_hourz" in t)
    assert rc == 2 and err.startswith(f"{spec}:{line}:"), err
    assert "did you mean 'study_hours'?" in err and not out.exists()
