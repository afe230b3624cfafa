"""The source text of netspec's own Keras classes (the layers in custom_layers.py; the classes
with PyTorch's arithmetic in optimizers.py, losses.py, train_layers.py), read from their files
without importing them: those import keras, and generating a model or training script must not.
Each file is read and parsed once."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent


@cache
def class_sources(file: str) -> dict[str, str]:
    """Class name -> source text of every top-level class in one of this package's files."""
    text = (HERE / file).read_text(encoding="utf-8")
    return {
        node.name: ast.get_source_segment(text, node) + "\n"
        for node in ast.parse(text).body
        if isinstance(node, ast.ClassDef)
    }


def class_source(file: str, name: str) -> str:
    """One class's source text (see `class_sources`)."""
    return class_sources(file)[name]
