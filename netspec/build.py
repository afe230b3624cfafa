"""`netspec build`: every requested target into one directory, all or nothing.

Files are written into a fresh temporary directory inside the output directory, checked to be
plain files inside it, and only then moved into place (`os.replace` replaces a symlink at the
destination instead of writing through it). A failed build leaves the directory as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import targets
from .ir import Graph
from .outdir import commit
from .weights import load_weights, write_weights


def build(
    graph: Graph,
    target_names: list[str],
    outdir: str | os.PathLike,
    weights: str | os.PathLike | Mapping | None = None,
    *,
    options: dict[str, Any] | None = None,
    step: Callable[[str], None] | None = None,
) -> list[Path]:
    """Build `graph` for each target (a name of the registry, or "all") into `outdir`, plus the
    canonical weights file `<name>.safetensors`; returns the files written."""
    names = targets.names() if "all" in target_names else list(dict.fromkeys(target_names))
    if weights is not None and not isinstance(weights, Mapping):
        import safetensors.numpy  # noqa: F401 - imported here, not in the worker thread below
    # Two things overlap with others that wait on something else: the weights are drawn (numpy
    # releases the GIL) while the targets import, and the weights file is written while the
    # targets write theirs. Nothing else runs in the worker thread.
    with ThreadPoolExecutor(1, thread_name_prefix="netspec-build") as pool:
        drawn = pool.submit(load_weights, weights, graph)
        mods = {n: targets.get(n) for n in names}
        w = drawn.result()
    out = Path(outdir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    tmp = Path(tempfile.mkdtemp(prefix=".netspec-build-", dir=root))
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="netspec-build") as pool:
            saved = pool.submit(write_weights, w, graph, tmp / f"{graph.name}.safetensors")
            for n, mod in mods.items():
                if step:
                    step(n)
                mod.write(graph, w, tmp, **(options or {}).get(n, {}))
            if step:
                step("weights")
            saved.result()  # on an error above, leaving the block waits for the thread first
        return commit(tmp, root)
    except BaseException:
        if created:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
