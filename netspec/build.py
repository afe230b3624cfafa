"""`netspec build`: every requested target into one directory, all or nothing.

Files are written into a staging folder inside the output directory, checked to be plain files
inside it, and only then moved into place, all or nothing (`outdir.commit`: old files set aside
first, put back if a rename fails; a symlink at a destination is replaced, never written
through). A failed or interrupted build (SIGINT, SIGTERM) leaves the directory as it was and
removes only its own staging folder (and the directory, if it created it and it is still empty);
a killed build's staging folder is swept by the next command writing there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import targets
from .ir import Graph
from .outdir import commit, output_error, prepare, remove_if_empty, staging
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
    root, created = prepare(outdir)
    try:
        with staging(root, "build") as tmp:
            with ThreadPoolExecutor(1, thread_name_prefix="netspec-build") as pool:
                saved = pool.submit(write_weights, w, graph, tmp / f"{graph.name}.safetensors")
                try:
                    for n, mod in mods.items():
                        if step:
                            step(n)
                        mod.write(graph, w, tmp, **(options or {}).get(n, {}))
                    if step:
                        step("weights")
                except OSError as e:
                    raise output_error(e, outdir) from None
                try:  # on an error above, leaving the block waits for the thread first
                    saved.result()
                except OSError as e:
                    raise output_error(e, outdir) from None
            return commit(tmp, root)
    except BaseException:
        if created:
            remove_if_empty(root)  # only if empty: never what another build wrote there
        raise
