"""Experiment (evidence for RESULTS.md, not part of the run): why the generated PyTorch modules
are slower than the hand-written ones, by timing variants of the generated source.

    python benchmarks/experiment_torch_locals.py SPEC BATCH [ROUNDS]

Variants of `netspec.generate(graph, "torch")`, each exec'd as a module, with the same weights:
- generated:            as netspec writes it;
- relu in place:        `F.relu(x)` -> `F.relu(x, inplace=True)` (what torchvision does);
- del after last use:   in every `forward`, `del` each local right after its last use, which is
                        what the hand-written style `out = f(out)` does by rebinding one name:
                        each intermediate is freed as soon as it is dead instead of living until
                        `forward` returns;
- both;
- hand-written:         the reference twin.
Interleaved rounds, the order reversed every other round, one call per contender per round,
medians; outputs checked equal first; minor page faults per call (getrusage ru_minflt) show
the cost of fresh allocations. Nothing in netspec is changed.
"""

from __future__ import annotations

import ast
import re
import statistics
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def with_dels(src: str) -> str:
    """Insert `del name` after the statement that uses `name` for the last time (forward only;
    the returned names are kept)."""
    tree = ast.parse(src)
    for fn in ast.walk(tree):
        if not (isinstance(fn, ast.FunctionDef) and fn.name == "forward"):
            continue
        stmts = fn.body
        last: dict[str, int] = {}
        for i, st in enumerate(stmts):
            for n in ast.walk(st):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                    last[n.id] = i
        returned = {n.id for st in stmts if isinstance(st, ast.Return)
                    for n in ast.walk(st) if isinstance(n, ast.Name)}
        body = []
        for i, st in enumerate(stmts):
            body.append(st)
            if isinstance(st, ast.Return):
                continue
            dead = sorted(n for n, j in last.items() if j == i and n not in returned
                          and n not in {"self", "F", "torch", "nn"})
            if dead:
                body.append(ast.Delete(targets=[ast.Name(d, ast.Del()) for d in dead]))
        fn.body = body
    return ast.unparse(ast.fix_missing_locations(tree))


def main() -> int:
    import torch

    import netspec
    from netspec.testing import random_inputs, random_weights

    import models

    torch.set_num_threads(2)
    torch.set_num_interop_threads(1)
    spec, batch = sys.argv[1], int(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 9
    g = netspec.load(spec)
    w = random_weights(g, 0)
    src = netspec.generate(g, "torch")
    relu = re.sub(r"F\.relu\((\w+)\)", r"F.relu(\1, inplace=True)", src)
    variants = {"generated": src, "relu in place": relu, "del after last use": with_dels(src),
                "both": with_dels(relu)}
    mods = {}
    for k, s in variants.items():
        m = types.ModuleType("v_" + re.sub(r"\W", "_", k))
        exec(compile(s, k, "exec"), m.__dict__)  # noqa: S102 - netspec's own generated text
        cls = [c for c in vars(m).values() if isinstance(c, type)
               and issubclass(c, torch.nn.Module) and c.__module__ == m.__name__][-1]
        mod = cls().eval()
        state = mod.state_dict()
        state.update({kk: torch.from_numpy(vv) for kk, vv in w.items()})
        mod.load_state_dict(state)
        mods[k] = mod
    if g.name in models.NETS:
        ref = models.load_canonical(models.NETS[g.name].build(), w)
    else:
        from tests.reference.torch_models import REFERENCES, load_canonical
        ref = load_canonical(REFERENCES[g.name].build(), w)
    mods["hand-written"] = ref
    x = [torch.from_numpy(a) for a in random_inputs(g, batch=batch, dynamic=64).values()]
    import resource

    times: dict[str, list[float]] = {k: [] for k in mods}
    faults: dict[str, list[int]] = {k: [] for k in mods}
    with torch.inference_mode():
        want = ref(*x)
        for m in mods.values():
            torch.testing.assert_close(m(*x), want, atol=1e-4, rtol=1e-3)
            m(*x)
        items = list(mods.items())
        for r in range(rounds):
            for k, m in items if r % 2 == 0 else items[::-1]:
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t = time.perf_counter()
                m(*x)
                times[k].append(time.perf_counter() - t)
                faults[k].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    base = statistics.median(times["hand-written"])
    print(f"{g.name}, batch {batch}, {rounds} rounds")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"  {k:20s} median {med * 1e3:8.2f} ms  min {min(ts) * 1e3:8.2f} ms  "
              f"/ hand-written {med / base:.3f}  "
              f"page faults/call {statistics.median(faults[k]):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
