"""Attribute normalizers shared by the convolution and pooling rules."""

from __future__ import annotations

from .base import Ctx, same_pad


def spatial(ctx: Ctx, attr: str, n: int) -> tuple[int, ...]:
    """An int or one int per spatial axis -> a tuple of n ints."""
    v = ctx.attrs[attr]
    if isinstance(v, int):
        return (v,) * n
    if len(v) != n:
        ctx.fail(f"expected one value per spatial axis ({n}), got {len(v)}: {v}", attr)
    return tuple(v)


def padding(
    ctx: Ctx, n: int, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[tuple[int, int], ...]:
    """Resolve `padding` to one (before, after) pair per spatial axis; sets `padding_mode`."""
    v = ctx.attrs["padding"]
    sizes = ctx.x.shape[1:]
    if v == "valid":
        ctx.attrs["padding_mode"] = "valid"
        return ((0, 0),) * n
    if v == "same":
        ctx.attrs["padding_mode"] = "same"
        pads = []
        for i in range(n):
            if stride[i] == 1:  # independent of the input size
                total = (kernel[i] - 1) * dilation[i]
                pads.append((total // 2, total - total // 2))
            else:
                size = sizes[i]
                if not isinstance(size, int):
                    ctx.fail(
                        f"padding 'same' with stride {stride[i]} needs a fixed size on spatial "
                        f"axis {i + 1}, but it is dynamic ('{ctx.x.name}' has shape "
                        f"{ctx.shape()}): the padding depends on the size",
                        "padding",
                        hint="give the axis a size in the input's shape, use stride 1, or "
                        "give explicit padding",
                    )
                pads.append(same_pad(size, kernel[i], stride[i], dilation[i]))
        return tuple(pads)
    ctx.attrs["padding_mode"] = "explicit"
    if isinstance(v, int):
        return ((v, v),) * n
    if len(v) != n:
        ctx.fail(f"expected one entry per spatial axis ({n}), got {len(v)}: {v}", "padding")
    return tuple((p, p) if isinstance(p, int) else (p[0], p[1]) for p in v)


def channels(ctx: Ctx) -> int:
    return ctx.static(ctx.x.shape[0], f"the channel axis of '{ctx.x.name}'")
