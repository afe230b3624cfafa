"""`netspec inspect`: the per-layer table, plain text (stable for scripts and tests)."""

from __future__ import annotations

from .errors import printable, titled
from .ir import Graph, shape_str


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def rows(graph: Graph) -> list[tuple[str, str, str, str]]:
    out = [(name, "input", shape_str(v.shape), "0") for name, v in graph.inputs.items()]
    for n in graph.nodes:
        own = 0 if n.shares else n.param_count  # a sharer's are its owner's: the column sums up
        out.append((n.name, n.op, shape_str(n.shape), f"{own:,}"))
    return out


def dynamic_axes(graph: Graph) -> list[str]:
    """The inputs' axes without a size (MACs count them as 1)."""
    axes = [d for v in graph.inputs.values() for d in v.shape if isinstance(d, str)]
    return list(dict.fromkeys(axes))


def macs_note(graph: Graph) -> str:
    """What a MACs count assumed: `` (seq counted as 1: --dims seq=N sizes it)``, or ``."""
    axes = dynamic_axes(graph)
    if not axes:
        return ""
    return f" (dynamic axes {', '.join(axes)} counted as 1; size them with --dims {axes[0]}=N)"


def totals(graph: Graph) -> dict[str, int]:
    params = graph.param_count
    buffers = graph.buffer_count
    return {
        "parameters": params,
        "buffers": buffers,
        "macs": graph.macs,
        "weight_bytes": 4 * (params + buffers),
    }


def _record(name: str, attrs: dict, shown: tuple[str, ...]) -> str:
    given = [f"{k} {attrs[k]:g}" for k in shown if attrs.get(k) or k == "lr"]
    return name + (f" ({', '.join(given)})" if given else "")


def training(graph: Graph) -> dict[str, str] | None:
    """The training plan in a few lines (None without a `training:` section)."""
    p = graph.training
    if p is None:
        return None
    losses = ", ".join(f"{o.loss} on {o.output}" for o in p.objectives)
    split = [
        f"{name} {v:g}" if isinstance(v, float) else f"{name} {v}"
        for name, v in (("validation", p.validation), ("test", p.test))
        if v
    ]
    out = {
        "loss": losses,
        "optimizer": _record(p.optimizer, p.optimizer_attrs, ("lr", "momentum", "weight_decay")),
        "run": f"{p.epochs} epochs of batches of {p.batch_size}, seed {p.seed}",
        "data": (p.source or "given by --data") + (f" ({', '.join(split)})" if split else ""),
    }
    if p.schedule:
        out["schedule"] = p.schedule
    if p.metrics:
        out["metrics"] = ", ".join(dict.fromkeys(m.name for m in p.metrics))
    if p.early_stopping:
        e = p.early_stopping
        out["early stopping"] = f"on {e.monitor}, patience {e.patience}"
    return out


def plain_inspect(graph: Graph) -> str:
    head = ("name", "op", "output shape", "params")
    body = rows(graph)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(4)]
    lines = [titled(graph.name, graph.description)]

    def fmt(r):
        return "  ".join(
            (c.rjust(widths[i]) if i == 3 else c.ljust(widths[i])) for i, c in enumerate(r)
        ).rstrip()

    lines.append(fmt(head))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt(r) for r in body)
    t = totals(graph)
    lines.append("")
    lines.append(f"parameters: {t['parameters']:,}")
    lines.append(f"buffers: {t['buffers']:,}")
    lines.append(f"MACs: {t['macs']:,} per example{macs_note(graph)}")
    lines.append(f"weight bytes: {t['weight_bytes']:,} ({human_bytes(t['weight_bytes'])}, float32)")
    outs = ", ".join(f"{k} {shape_str(graph.value(v).shape)}" for k, v in graph.outputs.items())
    lines.append(f"outputs: {outs}")
    plan = training(graph)
    if plan:
        lines.append("training:")
        lines.extend(f"  {k}: {printable(v)}" for k, v in plan.items())
    return "\n".join(lines) + "\n"
