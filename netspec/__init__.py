"""netspec: write a network once as a YAML spec; get PyTorch, Keras and ONNX that agree.

Typical use:

    graph = netspec.load("specs/mlp.yaml", params={"hidden": 8})
    source = netspec.generate(graph, target="torch")
    module = netspec.compile(graph, target="torch", weights=None)
    history = netspec.train(graph, "data.csv", target="torch", out="build/model")
"""

from __future__ import annotations

from . import evaluate as _evaluate_package  # noqa: F401 - `netspec.evaluate` is the function
from . import train as _train_package  # noqa: F401 - loaded first: `netspec.train` is the function
from .api import (
    compile,
    evaluate,
    export_weights,
    generate,
    init_weights,
    load,
    loads,
    save_weights,
    train,
)
from .errors import SpecError, SpecErrors
from .ir import Graph
from .version import __version__

__all__ = [
    "Graph",
    "SpecError",
    "SpecErrors",
    "__version__",
    "compile",
    "evaluate",
    "export_weights",
    "generate",
    "init_weights",
    "load",
    "loads",
    "save_weights",
    "train",
]
