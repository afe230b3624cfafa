"""Every translation between netspec's logical (channels-first) axes and Keras' axes.

The IR speaks of logical, channels-first shapes. The Keras target keeps one layout per tensor: a
permutation `perm` of the per-example axes such that Keras axis `i` (0-based, batch not counted)
holds logical axis `perm[i]`. The identity is the logical order ("cf"); `channels_last` moves
logical axis 1 (the channels, per-example axis 0) last ("cl"), which is what Keras' convolution,
pooling and global pooling layers want.

Only this module knows how axes, shapes, transposes and flatten order map between the two; the
emitters ask it which layout an op needs, and what an axis or a shape becomes in a layout.
Transposes are inserted only where a consumer needs a layout its input does not have.
"""

from __future__ import annotations

from collections import Counter

from ...ir import Dim, Shape

Perm = tuple[int, ...]


def logical(rank: int) -> Perm:
    """The logical (channels-first) order: Keras axis i is logical axis i."""
    return tuple(range(rank))


def channels_last(rank: int) -> Perm:
    """Channels (logical per-example axis 0) moved last; spatial axes keep their order."""
    return (*range(1, rank), 0) if rank >= 2 else logical(rank)


def boundary(rank: int) -> Perm:
    """The layout of model inputs and outputs: channels-last from per-example rank 3 up."""
    return channels_last(rank) if rank >= 3 else logical(rank)


def spatial(rank: int) -> Perm:
    """What convolutions and pools (and global pools) need: channels-last."""
    return channels_last(rank)


def label(perm: Perm) -> str:
    """A short name for layer names: `cf`, `cl` or `p<digits>` (the permutation)."""
    if perm == logical(len(perm)):
        return "cf"
    if perm == channels_last(len(perm)):
        return "cl"
    return "p" + "".join(str(p) for p in perm)


def describe(perm: Perm) -> str:
    if perm == logical(len(perm)):
        return "logical order"
    if perm == channels_last(len(perm)):
        return "channels-last"
    return f"logical axes {perm} (0 = first per-example axis)"


def keras_shape(shape: Shape, perm: Perm) -> tuple[int | None, ...]:
    """The per-example shape Keras sees (dynamic axes become None)."""
    return tuple(_static(shape[p]) for p in perm)


def _static(d: Dim) -> int | None:
    return d if isinstance(d, int) else None


def transpose(src: Perm, dst: Perm) -> tuple[int, ...]:
    """`keras.layers.Permute` dims (1-based) that turn layout `src` into layout `dst`."""
    return tuple(src.index(d) + 1 for d in dst)


def order_equivalent(shape: Shape, a: Perm, b: Perm) -> bool:
    """Whether layouts `a` and `b` store the elements in the same row-major order: they differ
    only in where axes of size 1 sit (a flatten or reshape then needs no transpose)."""

    def real(perm: Perm) -> list[int]:
        return [p for p in perm if shape[p] != 1]

    return real(a) == real(b)


def axis(perm: Perm, logical_axis: int) -> int:
    """The Keras axis (batch = 0) of a positive logical axis (batch = 0); -1 when it is last."""
    k = perm.index(logical_axis - 1) + 1
    return -1 if k == len(perm) else k


def channel_axis(perm: Perm) -> int:
    """Where batch_norm's and prelu's axis 1 (channels / features) is in Keras."""
    return axis(perm, 1)


def last_axis(perm: Perm) -> int:
    """Where the last logical axis (layer_norm's) is in Keras."""
    return axis(perm, len(perm))


def shared_axes(perm: Perm) -> list[int]:
    """PReLU's shared axes: every Keras axis but the channels' (one slope per channel)."""
    c = perm.index(0) + 1
    return [k for k in range(1, len(perm) + 1) if k != c]


def last_axis_last(perm: Perm) -> Perm:
    """A layout in which the last logical axis is Keras' last (dense acts on Keras' last axis):
    `perm` itself if it already is, else `perm` with that axis moved to the end."""
    r = len(perm)
    if perm[-1] == r - 1:
        return perm
    return (*[p for p in perm if p != r - 1], r - 1)


def flatten_input(shape: Shape, perm: Perm) -> Perm:
    """The layout flatten needs: logical order (netspec flattens channels-first, as PyTorch
    does), or any layout with the same element order."""
    r = len(perm)
    return perm if order_equivalent(shape, perm, logical(r)) else logical(r)


def reshape_input(shape: Shape, perm: Perm) -> Perm:
    """reshape reads its input in logical row-major order, as flatten does."""
    return flatten_input(shape, perm)


def reshape_output(shape: Shape) -> Perm:
    """The layout a reshape writes: channels-last for images when that is the same element
    order (e.g. `[C, 1, 1]`), so a following convolution needs no transpose; else logical."""
    r = len(shape)
    cl = channels_last(r)
    return cl if r >= 3 and order_equivalent(shape, cl, logical(r)) else logical(r)


def permuted(perm: Perm, dims: tuple[int, ...]) -> Perm:
    """The layout of `permute(dims)`'s output when no data moves: the same Keras tensor,
    its axes relabeled (dims are 1-based logical per-example axes)."""
    inverse = {d - 1: j for j, d in enumerate(dims)}
    return tuple(inverse[p] for p in perm)


def appended(perm: Perm) -> Perm:
    """An op that adds a trailing logical axis (embedding) keeps it last in Keras too."""
    return (*perm, len(perm))


def recurrent(rank: int) -> Perm:
    """Recurrent layers read `[time, features]` in logical order."""
    return logical(rank)


def common(perms: list[Perm]) -> Perm:
    """The layout merge inputs are brought to: the most common one (the first on a tie)."""
    counts = Counter(perms)
    best = max(counts.values())
    return next(p for p in perms if counts[p] == best)
