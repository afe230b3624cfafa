"""netspec: write a network once as a YAML spec; get PyTorch, Keras and ONNX that agree.

Typical use:

    graph = netspec.load("specs/mlp.yaml", params={"hidden": 8})
    source = netspec.generate(graph, target="torch")
    module = netspec.compile(graph, target="torch", weights=None)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import compile, generate, init_weights, load, loads, save_weights  # noqa: E402
from .errors import SpecError, SpecErrors  # noqa: E402
from .ir import Graph  # noqa: E402

__all__ = [
    "Graph",
    "SpecError",
    "SpecErrors",
    "__version__",
    "compile",
    "generate",
    "init_weights",
    "load",
    "loads",
    "save_weights",
]
