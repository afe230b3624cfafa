"""The float64 references of the pooling, resampling, padding, normalization and reduction ops
against PyTorch's own functions (an independent implementation), in float64, over many sizes:
the per-op tests compare every target with these references, so a reference that misread
PyTorch would pass them all."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import netspec
from tools.reference import reference

torch = pytest.importorskip("torch")
F = torch.nn.functional


def run(layer: dict, x: np.ndarray, weights: dict | None = None) -> np.ndarray:
    spec = {
        "netspec": 1,
        "name": "t",
        "inputs": {"x": {"shape": list(x.shape[1:])}},
        "layers": [{**layer, "name": "op"}],
    }
    g = netspec.loads(json.dumps(spec))
    return next(iter(reference(g, weights or {}, {"x": x}).values()))


def same(a: np.ndarray, b) -> None:
    b = b.detach().numpy() if hasattr(b, "detach") else b
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


RNG = np.random.default_rng(0)


def image(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape)


def test_pools_with_ceil_mode_and_count_include_pad():
    for size, k, s, p, ceil, include in itertools.product(
        range(4, 10), (2, 3), (1, 2, 3), (0, 1), (False, True), (False, True)
    ):
        if p > k // 2:
            continue
        x = image(2, 3, size, size + 1)
        t = torch.from_numpy(x)
        layer = {"size": k, "stride": s, "padding": p, "ceil_mode": ceil}
        same(run({"op": "max_pool2d", **layer}, x), F.max_pool2d(t, k, s, p, ceil_mode=ceil))
        got = run({"op": "avg_pool2d", **layer, "count_include_pad": include}, x)
        same(got, F.avg_pool2d(t, k, s, p, ceil_mode=ceil, count_include_pad=include))


def test_adaptive_pools():
    for n, size, out in itertools.product((1, 2, 3), (3, 5, 7, 13), (1, 2, 3, 4, 7)):
        x = image(2, 3, *([size] * n))
        t = torch.from_numpy(x)
        fn = [F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d][n - 1]
        same(run({"op": "adaptive_avg_pool", "output_size": out}, x), fn(t, out))
        fn = [F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d][n - 1]
        same(run({"op": "adaptive_max_pool", "output_size": out}, x), fn(t, out))


def test_upsample():
    modes = {1: "linear", 2: "bilinear", 3: "trilinear"}
    for n, size, scale, corners in itertools.product((1, 2, 3), (1, 2, 5), (1, 2, 3), (0, 1)):
        x = image(2, 2, *([size] * n))
        t = torch.from_numpy(x)
        layer = {"op": "upsample", "scale_factor": scale}
        same(run(layer, x), F.interpolate(t, scale_factor=scale, mode="nearest"))
        want = F.interpolate(t, scale_factor=scale, mode=modes[n], align_corners=bool(corners))
        same(run({**layer, "mode": "linear", "align_corners": bool(corners)}, x), want)


def test_pad():
    x = image(2, 3, 5, 6)
    t = torch.from_numpy(x)
    pairs = [[1, 3], [4, 0]]
    torch_pad = (4, 0, 1, 3)  # last axis first
    same(run({"op": "pad", "padding": pairs, "value": 2.5}, x), F.pad(t, torch_pad, value=2.5))
    for mode in ("reflect", "replicate"):
        same(run({"op": "pad", "padding": pairs, "mode": mode}, x), F.pad(t, torch_pad, mode=mode))


def test_norms():
    x = image(3, 6, 4, 5) * 3 + 2
    t = torch.from_numpy(x)
    w, b = RNG.uniform(0.5, 1.5, 6), RNG.normal(size=6)
    params = {"op.weight": w, "op.bias": b}
    tw, tb = torch.from_numpy(w), torch.from_numpy(b)
    for groups in (1, 2, 3, 6):
        got = run({"op": "group_norm", "groups": groups, "eps": 1e-3}, x, params)
        same(got, F.group_norm(t, groups, tw, tb, eps=1e-3))
    same(run({"op": "instance_norm"}, x), F.instance_norm(t))
    got = run({"op": "instance_norm", "affine": True}, x, params)
    same(got, F.instance_norm(t, weight=tw, bias=tb))
    got = run({"op": "layer_norm", "axis": 1}, x, params)
    same(got, F.layer_norm(t.movedim(1, -1), (6,), tw, tb).movedim(-1, 1))
    seq = image(3, 7, 6)
    stats = {
        "op.weight": w,
        "op.bias": b,
        "op.running_mean": RNG.normal(size=6),
        "op.running_var": RNG.uniform(0.5, 2, 6),
    }
    got = run({"op": "batch_norm", "axis": -1}, seq, stats)
    ts = {k.split(".")[1]: torch.from_numpy(v) for k, v in stats.items()}
    want = F.batch_norm(
        torch.from_numpy(seq).transpose(1, 2),
        ts["running_mean"],
        ts["running_var"],
        ts["weight"],
        ts["bias"],
    ).transpose(1, 2)
    same(got, want)


def test_reductions():
    x = image(2, 3, 4, 5)
    t = torch.from_numpy(x)
    for axes, keep in itertools.product(([1], [2, 3], [1, 3], [1, 2, 3]), (False, True)):
        if len(axes) == 3 and not keep:
            continue
        layer = {"axes": axes, "keepdims": keep}
        same(run({"op": "reduce_mean", **layer}, x), t.mean(dim=axes, keepdim=keep))
        same(run({"op": "reduce_max", **layer}, x), t.amax(dim=axes, keepdim=keep))
        same(run({"op": "reduce_sum", **layer}, x), t.sum(dim=axes, keepdim=keep))
