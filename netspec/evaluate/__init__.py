"""Evaluation of a trained model on data: `netspec evaluate` and `netspec.evaluate()`.

- `run`: the data as `netspec train` reads and splits it, fed to the model on ONNX Runtime, PyTorch
  or Keras; `evaluate` returns the JSON-ready report, `run` also the compared arrays, `write`
  the files of `-o`;
- `metrics`: accuracy, precision / recall / F1 and the confusion matrix, or MAE, MSE and R^2,
  all from scikit-learn;
- `report`: the terminal table (rich or plain) and the JSON;
- `plots`: the confusion-matrix and predicted-vs-true pictures (matplotlib).

Importing this package loads nothing else (numpy and the frameworks load when used).
See docs/evaluate.md.
"""
