"""The source text of netspec's Keras classes with PyTorch's arithmetic (optimizers.py,
losses.py, train_layers.py), read from their files without importing them: those import keras,
and generating a model or training script must not."""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).parent


def class_source(file: str, name: str) -> str:
    """A class's source text from one of this package's files, without importing it (the file
    imports keras; `netspec build` must not)."""
    text = (HERE / file).read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return ast.get_source_segment(text, node) + "\n"
    raise KeyError(name)  # pragma: no cover
