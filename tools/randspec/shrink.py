"""`shrink(spec, still_fails)`: reduce a failing spec to a small one that still fails (layers
removed, blocks inlined or dropped, sizes and attributes simplified), checking each candidate
with the loader first."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from netspec.errors import SpecError
from netspec.lower import lower


def _valid(spec: dict) -> bool:
    try:
        lower(copy.deepcopy(spec))
    except SpecError:
        return False
    return True


def _refs_of(layer: Any) -> list[str]:
    if isinstance(layer, dict) and "inputs" in layer:
        ins = layer["inputs"]
        return [ins] if isinstance(ins, str) else list(ins)
    return []


def _explicit(spec: dict) -> dict | None:
    """The same spec with every top-level layer named and given explicit inputs (so layers can
    be removed one by one); None if it cannot be written so."""
    s = copy.deepcopy(spec)
    counters: dict[str, int] = {}
    prev: str | None = next(iter(s["inputs"])) if len(s["inputs"]) == 1 else None
    new = []
    for layer in s["layers"]:
        if isinstance(layer, str):
            layer = {"op": layer}
        kind = layer.get("op", layer.get("block"))
        repeat = layer.get("repeat", 1)
        if not isinstance(repeat, int):
            return None
        start = counters.get(kind, 0)
        counters[kind] = start + repeat
        if "inputs" not in layer:
            if prev is None:
                return None
            layer["inputs"] = [prev]
        if "name" not in layer:
            if repeat == 1:
                layer["name"] = f"{kind}_{start + 1}"
            else:  # keep the default names (n_1 .. n_N are not the same as name: n)
                prev = f"{kind}_{start + repeat}"
                new.append(layer)
                continue
        prev = layer["name"]
        if "block" in layer:
            blk = s.get("blocks", {}).get(kind, {})
            if len(blk.get("outputs", [])) > 1:
                prev = None
        new.append(layer)
    s["layers"] = new
    if "outputs" not in s:
        if prev is None:
            return None
        s["outputs"] = [prev]
    return s


def _rename_refs(spec: dict, old: str, new: str) -> None:
    def fix(r: str) -> str:
        if r == old:
            return new
        if r.startswith(old + "."):
            return new
        return r

    for layer in spec["layers"]:
        if isinstance(layer, dict) and "inputs" in layer:
            ins = layer["inputs"]
            layer["inputs"] = fix(ins) if isinstance(ins, str) else [fix(r) for r in ins]
    outs = spec.get("outputs")
    if isinstance(outs, list):
        spec["outputs"] = list(dict.fromkeys(fix(r) for r in outs))
    elif isinstance(outs, dict):
        spec["outputs"] = {k: fix(r) for k, r in outs.items()}
    elif isinstance(outs, str):
        spec["outputs"] = fix(outs)


def _prune(spec: dict) -> None:
    """Drop unused blocks, params and inputs (when the result stays valid)."""
    for b in list(spec.get("blocks", {})):
        others = {k: v for k, v in spec["blocks"].items() if k != b}
        if f'"{b}"' not in json.dumps(spec["layers"]) + json.dumps(others):
            del spec["blocks"][b]
    if "blocks" in spec and not spec["blocks"]:
        del spec["blocks"]
    text = json.dumps(spec["layers"]) + json.dumps(spec.get("blocks", {}))
    for p in list(spec.get("params", {})):
        if re.search(r"\$\{?[^}\"]*\b" + re.escape(p) + r"\b", text) is None:
            del spec["params"][p]
    if "params" in spec and not spec["params"]:
        del spec["params"]


def _candidates(spec: dict):
    """Smaller variants of an explicit spec, roughly biggest cuts first."""
    layers = spec["layers"]
    outs = spec.get("outputs")
    if "description" in spec:
        s = copy.deepcopy(spec)
        del s["description"]
        yield s
    # fewer outputs
    if isinstance(outs, list) and len(outs) > 1:
        for j in range(len(outs)):
            s = copy.deepcopy(spec)
            del s["outputs"][j]
            yield s
    if isinstance(outs, dict) and len(outs) > 1:
        for k in list(outs):
            s = copy.deepcopy(spec)
            del s["outputs"][k]
            yield s
    # drop an input that only outputs name
    if len(spec["inputs"]) > 1:
        for name in spec["inputs"]:
            s = copy.deepcopy(spec)
            del s["inputs"][name]
            if isinstance(outs, list):
                s["outputs"] = [r for r in outs if r != name]
            elif isinstance(outs, dict):
                s["outputs"] = {k: r for k, r in outs.items() if r != name}
            yield s
    # drop a layer, rewiring its users to its first input
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if not isinstance(layer, dict) or "name" not in layer:
            continue
        ins = _refs_of(layer)
        if not ins:
            continue
        for src in dict.fromkeys(ins):
            s = copy.deepcopy(spec)
            del s["layers"][i]
            _rename_refs(s, layer["name"], src)
            yield s
    # drop layers nothing uses (after outputs went away)
    for i in range(len(layers) - 1, -1, -1):
        s = copy.deepcopy(spec)
        del s["layers"][i]
        yield s
    # fewer repeats, fewer inputs of a merge, fewer attributes
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            continue
        if layer.get("repeat", 1) != 1:
            s = copy.deepcopy(spec)
            del s["layers"][i]["repeat"]
            yield s
        ins = _refs_of(layer)
        if len(ins) > 2:
            for j in range(len(ins)):
                s = copy.deepcopy(spec)
                s["layers"][i]["inputs"] = ins[:j] + ins[j + 1 :]
                yield s
        for k in list(layer):
            if k not in ("op", "block", "name", "inputs") and "block" not in layer:
                s = copy.deepcopy(spec)
                del s["layers"][i][k]
                yield s
    # simpler block bodies
    for b, body in spec.get("blocks", {}).items():
        if "description" in body:
            s = copy.deepcopy(spec)
            del s["blocks"][b]["description"]
            yield s
        for j in range(len(body["layers"])):
            lay = body["layers"][j]
            if isinstance(lay, dict):
                for k in list(lay):
                    if k not in ("op", "block", "name", "inputs", "filters", "units"):
                        s = copy.deepcopy(spec)
                        del s["blocks"][b]["layers"][j][k]
                        yield s
            s = copy.deepcopy(spec)
            del s["blocks"][b]["layers"][j]
            yield s
    # smaller inputs
    for name, inp in spec["inputs"].items():
        for j, d in enumerate(inp["shape"]):
            if isinstance(d, int) and d > 1:
                for smaller in sorted({1, 2, d // 2, d - 1}):
                    if smaller < d:
                        s = copy.deepcopy(spec)
                        s["inputs"][name]["shape"][j] = smaller
                        yield s


def shrink(spec: dict, still_fails: Callable[[dict], bool], max_checks: int = 2000) -> dict:
    """A small spec for which `still_fails` holds, by greedy cuts of `spec` (which must fail).

    `still_fails` is only called on valid specs; exceptions it raises count as "no".
    """

    def fails(s: dict) -> bool:
        nonlocal checks
        checks += 1
        _prune(s)
        if not _valid(s):
            return False
        try:
            return bool(still_fails(s))
        except Exception:  # noqa: BLE001 - a candidate that breaks differently is not kept
            return False

    checks = 0
    best = copy.deepcopy(spec)
    ex = _explicit(best)
    if ex is not None and fails(ex):
        best = ex
    progress = True
    while progress and checks < max_checks:
        progress = False
        for cand in _candidates(best):
            if checks >= max_checks:
                break
            if fails(cand):
                best = cand
                progress = True
                break
    _prune(best)
    return best
