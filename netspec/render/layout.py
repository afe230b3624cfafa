"""A layered (Sugiyama-style) top-to-bottom layout of a diagram, in pure Python.

1. Ranks: longest path from the inputs; an input sits just above its first consumer.
2. An edge spanning several ranks gets a dummy point per rank, so skip connections are routed
   around the boxes they pass, inside the block cluster they belong to.
3. Order within a rank: barycenter sweeps that keep every cluster contiguous.
4. x: separation constraints (boxes apart, clusters as nested intervals); each round moves every
   point towards its neighbours, then projects onto the constraints (the `satisfy` step of
   Dwyer, Marriott & Stuckey's VPSC). Chains come out straight, fan-outs centred.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Diagram, Edge

CHAR_EM = 0.61  # advance of a monospace glyph, in em (DejaVu Sans Mono: 0.602)
TITLE_PX, TEXT_PX, LABEL_PX = 12, 11, 11
LINE = 15
PAD_X = 10
NODE_H = 3 * LINE + 10
IO_H = 2 * LINE + 10
MIN_W, MAX_W = 120, 300
GAP, DUMMY_GAP = 26, 14
RANK_GAP = 30
CL_PAD, CL_LABEL = 10, 18
MARGIN = 16
ROUNDS = 60


def text_width(text: str, px: float) -> float:
    return len(text) * CHAR_EM * px


def fit(text: str, width: float, px: float) -> str:
    """`text` cut with an ellipsis to fit `width` pixels."""
    n = int(width / (CHAR_EM * px) + 1e-6)
    return text if len(text) <= n else text[: max(n - 1, 1)] + "…"


@dataclass
class Rect:
    x: float  # left
    y: float  # top
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass
class Route:
    edge: Edge
    points: list[tuple[float, float]]  # source bottom, (top, bottom) per dummy, target port
    vertical: list[bool]  # per segment: a straight run through a rank (else a curve)


@dataclass
class Layout:
    width: float
    height: float
    box_w: float
    boxes: dict[str, Rect] = field(default_factory=dict)
    clusters: dict[str, Rect] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)


def box_width(d: Diagram) -> float:
    """One width for every box, so that chains line up; long texts are cut to it."""
    widest = 0.0
    for b in d.boxes.values():
        widest = max(
            widest,
            text_width(b.heading, TITLE_PX),
            text_width(b.detail, TEXT_PX),
            text_width(b.shape, TEXT_PX),
        )
    return max(MIN_W, min(MAX_W, widest + 2 * PAD_X + 4))  # + slack for rounding


def label_width(text: str, box_w: float) -> float:
    return min(text_width(text, LABEL_PX) + 2 * PAD_X, 2 * box_w)


def _ranks(d: Diagram) -> tuple[dict[str, int], set[str]]:
    preds: dict[str, list[str]] = {b: [] for b in d.boxes}
    succs: dict[str, list[str]] = {b: [] for b in d.boxes}
    for e in d.edges:
        preds[e.dst].append(e.src)
        succs[e.src].append(e.dst)
    rank: dict[str, int] = {}
    pending = {b: len(set(p)) for b, p in preds.items()}
    ready = [b for b in d.boxes if not pending[b]]
    while ready:  # Kahn's order, keeping the diagram's order among ready boxes
        b = ready.pop(0)
        rank[b] = max((rank[p] + 1 for p in preds[b]), default=0)
        for s in dict.fromkeys(succs[b]):
            pending[s] -= 1
            if not pending[s]:
                ready.append(s)
    if len(rank) != len(d.boxes):
        raise ValueError("the diagram has a cycle")
    # Inputs that no longest path starts from, and what hangs only from them, sink to just
    # above their first consumer instead of stretching an edge from the top.
    height: dict[str, int] = {}
    for b in reversed(list(rank)):
        height[b] = max((height[s] + 1 for s in succs[b]), default=0)
    inputs = [b for b, box in d.boxes.items() if box.kind == "input"]
    tallest = max((height[b] for b in inputs), default=0)
    floating = {b for b in inputs if height[b] < tallest}
    for b in rank:
        if preds[b] and d.boxes[b].kind == "node" and all(p in floating for p in preds[b]):
            floating.add(b)
    for b in reversed(list(rank)):
        if (b in floating or d.boxes[b].kind == "input") and succs[b]:
            rank[b] = min(rank[s] for s in succs[b]) - 1
    low = min(rank.values(), default=0)
    return {b: r - low for b, r in rank.items()}, floating


class _Graph:
    """The layered graph: boxes and dummy points, their ranks, cluster paths and neighbours."""

    def __init__(self, d: Diagram, box_w: float):
        self.d = d
        rank, floating = _ranks(d)
        self.ids: list[str | None] = list(d.boxes)  # None for a dummy
        self.floating = {i for i, b in enumerate(self.ids) if b in floating}
        self.rank = [rank[b] for b in d.boxes]
        self.path = [tuple(d.path(box.cluster)) for box in d.boxes.values()]
        self.w = [box_w] * len(self.ids)
        self.h = [IO_H if box.kind in ("input", "output") else NODE_H for box in d.boxes.values()]
        self.span: dict[str, list[int]] = {}
        for i, p in enumerate(self.path):
            for c in p:
                s = self.span.setdefault(c, [self.rank[i], self.rank[i]])
                s[0], s[1] = min(s[0], self.rank[i]), max(s[1], self.rank[i])
        index = {b: i for i, b in enumerate(self.ids)}
        self.chains: list[list[int]] = []
        for e in d.edges:
            u, v = index[e.src], index[e.dst]
            chain = [u]
            for r in range(self.rank[u] + 1, self.rank[v]):
                chain.append(self._dummy(r, self.path[u], self.path[v]))
            chain.append(v)
            self.chains.append(chain)
        self.up: list[list[int]] = [[] for _ in self.ids]
        self.down: list[list[int]] = [[] for _ in self.ids]
        for chain in self.chains:
            for a, b in zip(chain, chain[1:], strict=False):
                self.down[a].append(b)
                self.up[b].append(a)

    def _dummy(self, r: int, src: tuple[str, ...], dst: tuple[str, ...]) -> int:
        """A dummy at rank r, in the deepest cluster that both contains r and holds an end."""
        k = 0
        while k < min(len(src), len(dst)) and src[k] == dst[k]:
            k += 1
        path = dst[:k]
        inside = [i for i in range(k, len(dst)) if self.span[dst[i]][0] <= r]
        if inside:
            path = dst[: inside[-1] + 1]
        else:
            inside = [i for i in range(k, len(src)) if self.span[src[i]][1] >= r]
            if inside:
                path = src[: inside[-1] + 1]
        self.ids.append(None)
        self.rank.append(r)
        self.path.append(path)
        self.w.append(0.0)
        self.h.append(0.0)
        return len(self.ids) - 1

    def dummy(self, i: int) -> bool:
        return self.ids[i] is None


def _hsort(
    items: list[int],
    key: dict[int, float],
    path: list[tuple[str, ...]],
    depth: int = 0,
    ckey: dict[str, float] | None = None,
) -> list[int]:
    """Sort by key, keeping the members of each cluster together (a cluster sorts by the mean
    key of its members, or by `ckey` where given)."""
    groups: dict[tuple[str, object], list[int]] = {}
    for i in items:
        p = path[i]
        groups.setdefault(("c", p[depth]) if len(p) > depth else ("e", i), []).append(i)

    def gkey(g: tuple[str, object]) -> float:
        if g[0] == "e":
            return key[g[1]]  # type: ignore[index]
        if ckey is not None:
            return ckey[g[1]]  # type: ignore[index]
        members = groups[g]
        return sum(key[i] for i in members) / len(members)

    out: list[int] = []
    for g in sorted(groups, key=gkey):
        out += [g[1]] if g[0] == "e" else _hsort(groups[g], key, path, depth + 1, ckey)  # type: ignore[list-item]
    return out


def _crossings(layers: list[list[int]], down: list[list[int]]) -> int:
    total = 0
    for upper, lower in zip(layers, layers[1:], strict=False):
        pos = {v: i for i, v in enumerate(lower)}
        pairs = [(i, pos[v]) for i, u in enumerate(upper) for v in down[u] if v in pos]
        total += sum(
            1
            for a in range(len(pairs))
            for b in range(a)
            if (pairs[a][0] - pairs[b][0]) * (pairs[a][1] - pairs[b][1]) < 0
        )
    return total


def _barycenters(layer: list[int], nbrs: list[list[int]], pos: dict[int, float]):
    """Mean position of each point's neighbours on the adjacent rank (its own if none)."""
    return {v: sum(pos[u] for u in nbrs[v]) / len(nbrs[v]) if nbrs[v] else pos[v] for v in layer}


def _order(g: _Graph) -> list[list[int]]:
    layers: list[list[int]] = [[] for _ in range(max(g.rank, default=-1) + 1)]
    for i in sorted(range(len(g.ids)), key=lambda i: (g.dummy(i), i in g.floating)):
        layers[g.rank[i]].append(i)
    pos: dict[int, float] = {}

    def place(k: int, key: dict[int, float], ckey=None) -> None:
        layers[k] = _hsort(layers[k], key, g.path, 0, ckey)
        for j, v in enumerate(layers[k]):
            pos[v] = j

    for k in range(len(layers)):
        place(k, {v: j for j, v in enumerate(layers[k])})
    best, best_x = [list(x) for x in layers], _crossings(layers, g.down)
    for _ in range(8):
        if not best_x:
            break
        for k in range(1, len(layers)):
            place(k, _barycenters(layers[k], g.up, pos))
        for k in range(len(layers) - 2, -1, -1):
            place(k, _barycenters(layers[k], g.down, pos))
        x = _crossings(layers, g.down)
        if x < best_x:
            best, best_x = [list(y) for y in layers], x
    layers = best
    # One order of sibling clusters on every rank, so that the x constraints have no cycle.
    centred = {v: j - (len(lay) - 1) / 2 for lay in layers for j, v in enumerate(lay)}
    sums: dict[str, list[float]] = {}
    for v, c in centred.items():
        for cl in g.path[v]:
            s = sums.setdefault(cl, [0.0, 0])
            s[0] += c
            s[1] += 1
    ckey = {cl: s[0] / s[1] for cl, s in sums.items()}
    return [_hsort(lay, centred, g.path, 0, ckey) for lay in layers]


class _Constraints:
    """x[b] >= x[a] + gap over points and cluster bounds (`L`, `R` per cluster)."""

    def __init__(self, n: int):
        self.n = n
        self.gap: dict[tuple[int, int], float] = {}

    def var(self) -> int:
        self.n += 1
        return self.n - 1

    def add(self, a: int, b: int, gap: float) -> None:
        self.gap[(a, b)] = max(gap, self.gap.get((a, b), gap))

    def order(self) -> tuple[list[int], list[tuple[int, int, float]], list[list[int]]]:
        """A topological order of the variables, the constraints it respects, and each
        variable's incoming constraints. A cycle cannot arise from `_order`'s ranks; were one
        there, its closing constraints would be dropped rather than loop."""
        succ: list[list[int]] = [[] for _ in range(self.n)]
        indeg = [0] * self.n
        for a, b in self.gap:
            succ[a].append(b)
            indeg[b] += 1
        ready = [v for v in range(self.n) if not indeg[v]]
        order: list[int] = []
        while ready:
            v = ready.pop()
            order.append(v)
            for b in succ[v]:
                indeg[b] -= 1
                if not indeg[b]:
                    ready.append(b)
        seen = set(order)
        order += [v for v in range(self.n) if v not in seen]
        at = {v: i for i, v in enumerate(order)}
        cons = [(a, b, g) for (a, b), g in self.gap.items() if at[a] < at[b]]
        incoming: list[list[int]] = [[] for _ in range(self.n)]
        for ci, (_, b, _) in enumerate(cons):
            incoming[b].append(ci)
        return order, cons, incoming


def _project(
    t: list[float],
    wt: list[float],
    order: list[int],
    cons: list[tuple[int, int, float]],
    incoming: list[list[int]],
) -> list[float]:
    """Positions near the targets `t` (weighted least squares) that satisfy every constraint:
    VPSC's `satisfy`, blocks of variables merged along violated constraints, then one
    push-right pass for whatever merging left unsatisfied."""
    n = len(t)
    blk = list(range(n))
    off = [0.0] * n
    members = [[i] for i in range(n)]
    wsum = list(wt)
    wpos = [wt[i] * t[i] for i in range(n)]
    posn = list(t)
    inc = [list(incoming[i]) for i in range(n)]
    for v in order:
        b = blk[v]
        while True:
            worst, pick, keep = 1e-9, -1, []
            for ci in inc[b]:
                a, r, gap = cons[ci]
                if blk[a] == b:
                    continue
                keep.append(ci)
                viol = posn[blk[a]] + off[a] + gap - posn[b] - off[r]
                if viol > worst:
                    worst, pick = viol, ci
            inc[b] = keep
            if pick < 0:
                break
            a, r, gap = cons[pick]
            bl = blk[a]
            shift = off[r] - gap - off[a]  # bl's offsets in b's frame: off + shift
            # The smaller block's members move into the larger's frame (union by size: each
            # variable moves O(log n) times; moving bl always was quadratic on long chains).
            # wpos[x] is the sum of wt * (t - off) over x's members.
            if len(members[bl]) <= len(members[b]):
                keep, gone = b, bl
                for j in members[bl]:
                    off[j] += shift
                    blk[j] = b
                wpos[b] += wpos[bl] - shift * wsum[bl]
            else:
                keep, gone = bl, b
                for j in members[b]:
                    off[j] -= shift
                    blk[j] = bl
                wpos[bl] += wpos[b] + shift * wsum[b]
            wsum[keep] += wsum[gone]
            members[keep] += members[gone]
            inc[keep] += inc[gone]
            members[gone], inc[gone] = [], []
            posn[keep] = wpos[keep] / wsum[keep]
            b = keep
    x = [posn[blk[i]] + off[i] for i in range(n)]
    for v in order:
        for ci in incoming[v]:
            a, _, gap = cons[ci]
            x[v] = max(x[v], x[a] + gap)
    return x


def _align(g: _Graph, layers: list[list[int]]) -> list[int]:
    """Vertical alignment (as in Brandes & Köpf): each point joins at most one neighbour above,
    its median, without crossing an earlier alignment and without jumping into a cluster that
    is already open beside it. Long edges align first, so they run straight. Returns the root
    of each point's column."""
    pos = {v: j for lay in layers for j, v in enumerate(lay)}
    root = list(range(len(g.ids)))
    taken: set[int] = set()
    for k in range(1, len(layers)):
        made: list[tuple[int, int]] = []
        for dummies_only in (True, False):
            for v in layers[k]:
                if root[v] != v or (dummies_only and not g.dummy(v)):
                    continue
                ups = sorted(g.up[v], key=pos.__getitem__)
                m = len(ups)
                medians = ups[(m - 1) // 2 : m // 2 + 1] if m else []
                # Of two medians, continue the column that started higher: the main path.
                for u in sorted(medians, key=lambda u: g.rank[root[u]]):
                    if dummies_only and not g.dummy(u):
                        continue
                    if u in taken or any((pos[u] - a) * (pos[v] - b) < 0 for a, b in made):
                        continue
                    if not _may_join(g, u, v, k):
                        continue
                    taken.add(u)
                    made.append((pos[u], pos[v]))
                    root[v] = root[u]
                    break
    return root


def _may_join(g: _Graph, u: int, v: int, k: int) -> bool:
    """u (rank k-1) and v (rank k) may share a column only where the clusters they differ in
    start at v or end at u."""
    pu, pv = set(g.path[u]), set(g.path[v])
    return all(g.span[c][0] == k for c in pv - pu) and all(g.span[c][1] == k - 1 for c in pu - pv)


def _xs(g: _Graph, layers: list[list[int]], box_w: float) -> tuple[list[float], dict]:
    """x of every point (column by column), and the variables of each cluster's bounds."""
    n = len(g.ids)
    root = _align(g, layers)
    cols = sorted(set(root))
    col = {r: j for j, r in enumerate(cols)}
    of = [col[root[i]] for i in range(n)]
    c = _Constraints(len(cols))
    bounds: dict[str, tuple[int, int]] = {}
    for cl in g.span:
        lo, hi = c.var(), c.var()
        bounds[cl] = (lo, hi)
        c.add(lo, hi, label_width(g.d.clusters[cl].label, box_w))
    for cl in g.span:
        parent = g.d.clusters[cl].parent
        if parent in bounds:
            c.add(bounds[parent][0], bounds[cl][0], CL_PAD)
            c.add(bounds[cl][1], bounds[parent][1], CL_PAD)
    for i in range(n):
        if g.path[i]:
            lo, hi = bounds[g.path[i][-1]]
            c.add(lo, of[i], g.w[i] / 2 + CL_PAD)
            c.add(of[i], hi, g.w[i] / 2 + CL_PAD)
    for layer in layers:
        for a, b in zip(layer, layer[1:], strict=False):
            pa, pb = g.path[a], g.path[b]
            k = 0
            while k < min(len(pa), len(pb)) and pa[k] == pb[k]:
                k += 1
            va, ha = (bounds[pa[k]][1], 0.0) if len(pa) > k else (of[a], g.w[a] / 2)
            vb, hb = (bounds[pb[k]][0], 0.0) if len(pb) > k else (of[b], g.w[b] / 2)
            thin = (len(pa) == k and g.dummy(a)) or (len(pb) == k and g.dummy(b))
            c.add(va, vb, ha + (DUMMY_GAP if thin else GAP) + hb)
    order, cons, incoming = c.order()
    wt = [0.0] * len(cols) + [1e-6] * (c.n - len(cols))
    for i in range(n):
        wt[of[i]] += 0.2 if g.dummy(i) else 1.0
    # Columns pull on the columns they connect to; long edges pull hardest, as in dot.
    pulls: list[list[tuple[int, float]]] = [[] for _ in range(c.n)]
    for i in range(n):
        for u in g.down[i]:
            if of[u] != of[i]:
                w = 8.0 if g.dummy(u) and g.dummy(i) else 2.0 if g.dummy(u) or g.dummy(i) else 1.0
                pulls[of[i]].append((of[u], w))
                pulls[of[u]].append((of[i], w))
    x = _project([0.0] * c.n, wt, order, cons, incoming)
    for _ in range(ROUNDS):
        t = list(x)
        for j, ps in enumerate(pulls):
            if ps:
                t[j] = sum(x[u] * w for u, w in ps) / sum(w for _, w in ps)
        x = _project(t, wt, order, cons, incoming)
    xs = [x[of[i]] for i in range(n)]
    return xs, {cl: (x[lo], x[hi]) for cl, (lo, hi) in bounds.items()}


def layout(d: Diagram, top: float = 0.0) -> Layout:
    """Place every box, cluster and edge of `d`, below `top` pixels of header."""
    box_w = box_width(d)
    g = _Graph(d, box_w)
    layers = _order(g)
    x, bounds = _xs(g, layers, box_w)

    # Ranks: each band as tall as its tallest box, with room between for cluster frames.
    def count(k: int, end: int) -> int:
        return max(
            (sum(1 for cl in g.path[i] if g.span[cl][end] == k) for i in layers[k]), default=0
        )

    band = [max((g.h[i] for i in lay), default=IO_H) for lay in layers]
    ytop: list[float] = []
    y = top + MARGIN
    for k in range(len(layers)):
        if k:
            y += band[k - 1] + RANK_GAP + count(k - 1, 1) * CL_PAD
        y += count(k, 0) * (CL_PAD + CL_LABEL)
        ytop.append(y)

    out = Layout(0.0, 0.0, box_w)
    for i, b in enumerate(g.ids):
        if b is not None:
            r = g.rank[i]
            out.boxes[b] = Rect(x[i] - g.w[i] / 2, ytop[r] + (band[r] - g.h[i]) / 2, g.w[i], g.h[i])

    # Clusters, innermost first: around their points and nested clusters (each point and
    # cluster grouped under its innermost cluster once: scanning them all per cluster was
    # quadratic).
    points: dict[str, list[int]] = {}
    for i in range(len(g.ids)):
        if g.path[i]:
            points.setdefault(g.path[i][-1], []).append(i)
    children: dict[str, list[str]] = {}
    for sub in d.clusters:
        children.setdefault(d.clusters[sub].parent, []).append(sub)
    for cl in reversed(list(d.clusters)):
        if cl not in g.span:
            continue
        parts = []
        for i in points.get(cl, []):
            r = g.rank[i]
            top_i = ytop[r] + (band[r] - g.h[i]) / 2 if g.h[i] else ytop[r]
            bottom_i = top_i + g.h[i] if g.h[i] else ytop[r] + band[r]
            parts.append((x[i] - g.w[i] / 2, top_i, x[i] + g.w[i] / 2, bottom_i))
        for sub in children.get(cl, []):
            if sub in out.clusters:
                rect = out.clusters[sub]
                parts.append((rect.x, rect.y, rect.x + rect.w, rect.y + rect.h))
        left = min(p[0] for p in parts) - CL_PAD
        right = max(p[2] for p in parts) + CL_PAD
        lo, hi = bounds[cl]
        need = label_width(d.clusters[cl].label, box_w)
        if right - left < need:  # widen for the label, within the cluster's reserved bounds
            if left + need > hi:
                left = max(lo, hi - need)
            right = max(right, left + need)
        y0 = min(p[1] for p in parts) - CL_PAD - CL_LABEL
        y1 = max(p[3] for p in parts) + CL_PAD
        out.clusters[cl] = Rect(left, y0, right - left, y1 - y0)

    # Edges: from the source's bottom through its dummies to a port on the target's top;
    # ports spread in the order the edges arrive, so that they do not cross.
    arriving: dict[int, list[tuple[float, int]]] = {}
    for k, chain in enumerate(g.chains):
        arriving.setdefault(chain[-1], []).append((x[chain[-2]], k))
    port: dict[int, float] = {}
    for v, lst in arriving.items():
        lst.sort()
        step = min(18.0, (g.w[v] - 2 * PAD_X) / max(len(lst) - 1, 1))
        for j, (_, k) in enumerate(lst):
            port[k] = x[v] + (j - (len(lst) - 1) / 2) * step
    for k, (e, chain) in enumerate(zip(d.edges, g.chains, strict=True)):
        u, v = chain[0], chain[-1]
        src, dst = out.boxes[e.src], out.boxes[e.dst]
        pts = [(x[u], src.y + src.h)]
        vertical = []
        for i in chain[1:-1]:
            r = g.rank[i]
            pts += [(x[i], ytop[r]), (x[i], ytop[r] + band[r])]
            vertical += [False, True]
        pts.append((port[k], dst.y))
        vertical.append(False)
        out.routes.append(Route(e, pts, vertical))

    # Shift everything right of the margin; measure.
    rects = [*out.boxes.values(), *out.clusters.values()]
    dx = MARGIN - min((r.x for r in rects), default=0.0)
    for r in rects:
        r.x += dx
    for route in out.routes:
        route.points = [(px + dx, py) for px, py in route.points]
    out.width = max((r.x + r.w for r in rects), default=0.0) + MARGIN
    out.height = max((r.y + r.h for r in rects), default=top) + MARGIN
    return out
