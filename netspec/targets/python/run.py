"""Running generated source: the PyTorch and Keras targets' `compile` executes exactly the text
their `generate` returns."""

from __future__ import annotations

import builtins
import itertools
import linecache
import types

_counter = itertools.count(1)


def run_source(text: str, target: str, graph_name: str) -> types.ModuleType:
    """Execute generated source `text` in a fresh module (`netspec_<target>_<graph>_<n>`). Its
    lines are registered with linecache, so tracebacks through the model show them."""
    n = next(_counter)
    mod = types.ModuleType(f"netspec_{target}_{graph_name}_{n}")
    mod.__file__ = f"<netspec {target}: {graph_name} #{n}>"
    linecache.cache[mod.__file__] = (len(text), None, text.splitlines(True), mod.__file__)
    code = builtins.compile(text, mod.__file__, "exec")
    exec(code, mod.__dict__)  # noqa: S102 - netspec's own generated text, never spec text
    return mod
