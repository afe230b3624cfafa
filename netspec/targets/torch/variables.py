"""Which activations of a `forward` run in place; the variables themselves (rebinding, `del`)
are planned by the shared `python.liveness`.

In place: `F.relu(t, inplace=True)` (and relu6, leaky_relu with a slope >= 0) only when `t` is
the fresh result of a producer in `SAFE_PRODUCERS` with no fused activation, read by nothing but
the activation, and neither a forward argument nor returned.
"""

from __future__ import annotations

from typing import Any

from ...ir import BlockUse, Node
from ..python.liveness import NEVER, NamerLike, Plan, Uses
from ..python.liveness import plan as plan_variables

# Ops whose result an activation may overwrite in place, in training too. Each returns a fresh
# tensor (never a view of, or the same tensor as, its input: unlike dropout in eval, identity,
# flatten, reshape or permute), and its backward does not read its own output (unlike sigmoid,
# tanh, softmax, exp-like ops, or relu itself: overwriting their output breaks their gradient).
# A block use is not here: what its result is depends on the block.
SAFE_PRODUCERS = frozenset(
    {
        "conv1d",  # backward reads input and weight
        "conv2d",
        "conv_transpose2d",
        "dense",  # backward reads input and weight
        "batch_norm",  # backward reads input and the saved batch statistics
        "add",  # backward reads nothing
        "subtract",
        "multiply",  # backward reads both inputs, never the product
        "concat",  # backward reads sizes only
    }
)
# Activations that may run in place (their in-place backward reads their result, which is exact
# for these; leaky_relu refuses a negative slope in place).
INPLACE_ACTIVATIONS = frozenset({"relu", "relu6", "leaky_relu"})


def inplace_activation(act: dict[str, Any] | None) -> bool:
    """Whether the activation `act` ({"op": ..., **attrs}) has an in-place form we use."""
    if act is None or act["op"] not in INPLACE_ACTIVATIONS:
        return False
    return act["op"] != "leaky_relu" or act.get("alpha", 0.01) >= 0


def fused_activation(node: Node) -> str | None:
    act = node.attrs.get("activation")
    return None if act is None or act["op"] == "identity" else act["op"]


def inplace_nodes(
    items: list[Node | BlockUse], produced: list[list[str]], outputs: list[str]
) -> set[str]:
    """The activation nodes of one scope that may overwrite their input."""
    u = Uses.of(items, produced, outputs)
    out = set()
    for it in items:
        if isinstance(it, Node) and it.op in INPLACE_ACTIVATIONS:
            src = it.inputs[0]
            producer = items[u.made_at[src]] if src in u.made_at else None
            if (
                inplace_activation({"op": it.op, **it.attrs})
                and isinstance(producer, Node)
                and producer.op in SAFE_PRODUCERS
                and fused_activation(producer) is None
                and u.count.get(src) == 1
                and u.last[src] != NEVER
            ):
                out.add(it.name)
    return out


def plan(
    items: list[Node | BlockUse],
    produced: list[list[str]],
    args: dict[str, str],
    outputs: list[str],
    namer: NamerLike,
    want: dict[str, str],
) -> Plan:
    """The variables of one `forward` scope, with its in-place activations (see
    `python.liveness.plan` for the arguments)."""
    inplace = inplace_nodes(items, produced, outputs)
    return plan_variables(items, produced, args, outputs, namer, want, inplace)
