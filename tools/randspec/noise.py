"""Comparing targets' outputs: the float32 noise of a spec and the disagreements beyond it."""

from __future__ import annotations

from netspec.ir import Graph


def float64_noise(graph: Graph, weights: dict, inputs: dict, outputs32: list) -> list[float]:
    """How far float32 rounding alone moves each output of this spec: the largest difference
    between the PyTorch target's float32 outputs (`outputs32`) and the same module run in
    float64. Near zero for a well-conditioned spec; large where the spec amplifies rounding
    (layer_norm of nearly constant features, differences of nearly equal values), where no
    float32 target can meet the parity bound and a disagreement says nothing about a target."""
    import numpy as np
    import torch

    from netspec import api

    module = api.compile(graph, "torch", weights).double()
    with torch.no_grad():
        ys = module(
            *(
                torch.from_numpy(np.ascontiguousarray(inputs[k])).double()
                if inputs[k].dtype == np.float32
                else torch.from_numpy(np.ascontiguousarray(inputs[k]))
                for k in graph.inputs
            )
        )
    ys = ys if isinstance(ys, (tuple, list)) else (ys,)
    return [
        float(np.max(np.abs(np.asarray(a, np.float64) - y.numpy()))) if y.numel() else 0.0
        for a, y in zip(outputs32, ys, strict=True)
    ]


# A disagreement within this many times the float32 noise is rounding: other kernels (ONNX
# Runtime's GRU, oneDNN's convolutions) legitimately round several times worse than PyTorch's
# on an ill-conditioned output (seed 8821: 5.7 times, a layer_norm over 2 nearly equal GRU
# features). For a well-conditioned output the noise is ~1e-7 and this changes nothing.
NOISE_FACTOR = 10.0


def disagreements(
    graph: Graph,
    results: dict[str, list],
    reference: str | None = None,
    noise: list[float] | None = None,
) -> list[str]:
    """Each target's outputs against the reference target's (the first by default), with
    the design page's parity bound, widened by `NOISE_FACTOR` times each output's float32
    noise when `noise` is given (see `float64_noise`); one line per output that differs."""
    from ..testing import ATOL, assert_close

    names = list(results)
    ref = reference or names[0]
    outs = list(graph.outputs)
    slack = noise or [0.0] * len(outs)
    problems = []
    for t in names:
        if t == ref:
            continue
        if len(results[t]) != len(outs):
            problems.append(f"{t}: {len(results[t])} outputs, {ref}: {len(results[ref])}")
            continue
        for o, a, b, n in zip(outs, results[t], results[ref], slack, strict=True):
            try:
                what = f"{t} vs {ref}, output {o!r}"
                if n:
                    what += f" (float32 noise {n:.2g})"
                assert_close(a, b, what, atol=ATOL + NOISE_FACTOR * n)
            except AssertionError as e:
                problems.append(str(e))
    return problems
