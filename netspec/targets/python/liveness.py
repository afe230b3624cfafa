"""The local variables of one straight-line function (a `forward`, a model-building function):
which variable holds each value, and where a dead value is deleted.

Items are the IR's nodes and block uses of one scope, in execution order; each reads `inputs`
and binds the values it produces (a block use: the outputs it owns).

Liveness: a value dies at the statement that reads it last (a returned value never dies). A
statement with one result *rebinds* the variable of an input that dies there, the way a person
writes `out = self.bn1(out)` or `x = layers.ReLU()(x)`, so the tensor the variable held is freed
at once. Only values read by one statement (or only returned) and bound alone share a variable:
values that hand their variable on form a *chain*. When several inputs die at one statement, the
result takes the variable of the longest chain (the first input on a tie). Values with several
readers keep their own variable, and so do the results of a block use with several outputs
(`o1_main, o1_side = self.o1(x)`). Arguments are never rebound: `image = self.conv1(image)`
would read as if `image` still held the image (and the caller holds the tensor anyway). A
variable whose value dies without being rebound is deleted after the statement that reads it
last (`del relu`); a generator that does not free memory ignores `Plan.dels`.

Names: a value alone in its chain keeps its layer's name. A chain of two or more values gets a
generic name, longest chains first: `x`, or `out` when `x` is taken (by an argument, say); a
chain alive at the same time as the holder of that name gets the common prefix of its layers'
names when they share one (`downsample` for `downsample_conv`, `downsample_bn`), else `x2`,
`x3`, ... (`out2`, ...). A generic variable is used again by any chain that starts once its
values are dead. Names go through the scope's `Namer`, so reserved names, keywords and layer
names are never shadowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from ...ir import BlockUse, Node

NEVER = math.inf  # the last use of a returned value


class NamerLike(Protocol):
    def taken(self, name: str) -> bool: ...

    def new(self, want: str) -> str: ...


@dataclass
class Uses:
    """Who reads what in one scope."""

    reads: list[list[str]]  # per item: the values it reads (each once, in order)
    made_at: dict[str, int]  # value -> the item that binds it
    last: dict[str, float]  # value -> the item that reads it last (NEVER: returned)
    count: dict[str, int]  # value -> how many items read it

    @classmethod
    def of(
        cls, items: list[Node | BlockUse], produced: list[list[str]], outputs: list[str]
    ) -> Uses:
        reads = [list(dict.fromkeys(it.inputs)) for it in items]
        made_at = {v: i for i, vs in enumerate(produced) for v in vs}
        last: dict[str, float] = {v: i for v, i in made_at.items()}
        count: dict[str, int] = {}
        for i, vs in enumerate(reads):
            for v in vs:
                last[v] = i
                count[v] = count.get(v, 0) + 1
        for v in outputs:
            last[v] = NEVER
        return cls(reads, made_at, last, count)


@dataclass
class Plan:
    names: dict[str, str]  # value -> its variable
    dels: dict[int, list[str]] = field(default_factory=dict)  # item -> variables that die there
    inplace: set[str] = field(default_factory=set)  # items whose result is their input's tensor


def plan(
    items: list[Node | BlockUse],
    produced: list[list[str]],
    args: dict[str, str],
    outputs: list[str],
    namer: NamerLike,
    want: dict[str, str],
    inplace: set[str] | None = None,
) -> Plan:
    """The variables of one scope. `produced[i]`: the values item i binds (a block use: the
    outputs it owns); `args`: value -> argument variable (already named); `want`: value -> the
    name a value alone in its chain gets (its layer's); `inplace`: names of items whose result
    is their first input's tensor (that tensor is not freed there)."""
    u = Uses.of(items, produced, outputs)
    reads, made_at, last, count = u.reads, u.made_at, u.last, u.count

    # chains: a statement with one result hands it the variable of an input that dies there;
    # only values read once (or only returned) share a variable, and only those bound alone
    # (`o1_main, o1_side = self.o1(x)` keeps its names)
    single_use = {v for v in made_at if count.get(v, 0) + (last[v] == NEVER) == 1}
    alone = {
        vs[0]
        for it, vs in zip(items, produced, strict=True)
        if len(vs) == 1 and (isinstance(it, Node) or len(it.outputs) == 1)
    }
    chain_of: dict[str, list[str]] = {}
    chains: list[list[str]] = []
    for i, vs in enumerate(produced):
        dying = [v for v in reads[i] if v in alone and v in single_use and last[v] == i]
        dying.sort(key=lambda v: -len(chain_of[v]))  # stable: the first input on a tie
        for v in vs:
            if dying and v in alone and v in single_use:
                chain = chain_of[dying.pop(0)]
                chain.append(v)
            else:
                chain = [v]
                chains.append(chain)
            chain_of[v] = chain

    # names: values alone in their chain first (their layers' names), then the generic ones
    names: dict[str, str] = dict(args)
    for chain in chains:
        if len(chain) == 1:
            names[chain[0]] = namer.new(want[chain[0]])
    primary = next((n for n in ("x", "out") if not namer.taken(n)), "")
    base = primary or "out"
    held: dict[str, list[tuple[float, float]]] = {}  # generic variable -> its chains' lifetimes

    def free(name: str, start: float, end: float) -> bool:
        if name not in held:
            return not namer.taken(name)
        # a chain may start at the statement that reads another's last value, not earlier
        return all(e <= start or end <= s for s, e in held[name])

    # longest chains first (the main path gets the main name), then in order
    for chain in sorted((c for c in chains if len(c) > 1), key=lambda c: (-len(c), made_at[c[0]])):
        start, end = made_at[chain[0]], last[chain[-1]]
        options = [primary] if primary else []
        prefix = common_prefix([want[v] for v in chain])
        if prefix:
            options.append(prefix)
        options += [f"{base}{k}" for k in range(2, len(chains) + 2)]
        name = next((n for n in options if free(n, start, end)), base)
        if name not in held or not free(name, start, end):  # new (`out_1` when all are taken)
            name = namer.new(name)
            held[name] = []
        held[name].append((start, end))
        for v in chain:
            names[v] = name

    out = Plan(names, inplace=set(inplace or ()))
    # deletions: a variable whose value dies without being rebound
    for i, it in enumerate(items):
        bound = {names[v] for v in produced[i]}
        if it.name in out.inplace:  # the result is the input's tensor: nothing to free
            bound.add(names[it.inputs[0]])
        dead = [
            names[v]
            for v in [*reads[i], *produced[i]]
            if last[v] == i and v not in args and names[v] not in bound
        ]
        if dead:
            out.dels[i] = list(dict.fromkeys(dead))
    return out


def common_prefix(names: list[str]) -> str:
    """The `_`-separated words all `names` start with, when that is not one of the names
    itself (`downsample_conv`, `downsample_bn` -> `downsample`); else ""."""
    words = [n.split("_") for n in names]
    common: list[str] = []
    for parts in zip(*words, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    prefix = "_".join(common)
    return "" if prefix in names or not prefix.strip("_") else prefix
