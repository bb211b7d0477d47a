"""Data-movement ONNX ops: shape changes, concat/split/slice/pad, gather, expand, identity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr, f64, i64

from visc.dialects import vision
from visc.frontend.context import (
    ImportContext,
    Node,
    ShapeFault,
    Tensor,
    Unsupported,
    broadcast_shapes,
)
from visc.frontend.registry import attr_of, converter
from visc.frontend.scalars import emit_map


def norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ShapeFault(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def axes_input(node: Node, attr_before: int, index: int = 1) -> list[int] | None:
    """`axes` from the attribute (opset < attr_before) or from input `index`."""
    if node.opset < attr_before:
        axes = node.attr("axes")
        return None if axes is None else [int(a) for a in axes]
    arr = node.const_input(index)
    return None if arr is None else [int(a) for a in arr.reshape(-1)]


def transpose(ctx: ImportContext, t: Tensor, perm: Sequence[int]) -> Tensor:
    perm = [int(p) for p in perm]
    if perm == list(range(t.rank)):
        return t
    if t.const is not None:
        return Tensor.constant(np.transpose(t.const, perm), t.hint)
    shape = [t.shape[p] for p in perm]
    return ctx.emit1(vision.TransposeOp, [t], shape, t.dtype, {"perm": vision.ints(perm)})


def expand(ctx: ImportContext, t: Tensor, shape: Sequence[int]) -> Tensor:
    if tuple(shape) == t.shape:
        return t
    return emit_map(ctx, [t], t.dtype, lambda s, v: v[0], out_shape=shape)


@converter("Identity")
def _identity(ctx: ImportContext, node: Node) -> list[Tensor]:
    return [node.x(0)]


def _check_dropout(node, opset: int) -> list[str]:
    if opset < 7 and not attr_of(node, "is_test", 0):
        return ["Dropout in training mode (is_test=0) is not supported"]
    return []


@converter("Dropout", const_inputs=(2,), const_outputs=(1,), check=_check_dropout)
def _dropout(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    training = node.const_input(2)
    if training is not None and bool(training.reshape(-1)[0]):
        raise Unsupported("training_mode=true is not supported (inference only)")
    mask = Tensor.constant(np.ones(x.shape, dtype=np.bool_), "dropout_mask")
    return [x, mask]


# -- reshapes ---------------------------------------------------------------------------


def reshape_target(x_shape: tuple[int, ...], target: Sequence[int], allowzero: bool) -> tuple[int, ...]:
    out: list[int] = []
    infer = -1
    for i, d in enumerate(int(v) for v in target):
        if d == 0 and not allowzero:
            if i >= len(x_shape):
                raise ShapeFault(f"target shape {list(target)} copies dim {i} of a rank-{len(x_shape)} input")
            out.append(x_shape[i])
        elif d == -1:
            if infer >= 0:
                raise ShapeFault(f"target shape {list(target)} has more than one -1")
            infer = i
            out.append(1)
        elif d < 0:
            raise ShapeFault(f"target shape {list(target)} has a negative size")
        else:
            out.append(d)
    size = int(np.prod(x_shape, dtype=np.int64))
    known = int(np.prod(out, dtype=np.int64))
    if infer >= 0:
        if known == 0 or size % known:
            raise ShapeFault(f"cannot reshape {x_shape} to {list(target)}")
        out[infer] = size // known
    elif known != size:
        raise ShapeFault(f"cannot reshape {x_shape} ({size} elements) to {list(target)}")
    return tuple(out)


@converter("Reshape", const_inputs=(1,))
def _reshape(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    if node.opset < 5:
        target = node.attr("shape", [])
    else:
        arr = node.required_const(1)
        target = [int(v) for v in arr.reshape(-1)]
    shape = reshape_target(x.shape, target, bool(node.attr("allowzero", 0)))
    return [ctx.reshape(x, shape)]


@converter("Flatten")
def _flatten(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    axis = int(node.attr("axis", 1))
    axis = axis + x.rank if axis < 0 else axis
    if not 0 <= axis <= x.rank:
        raise ShapeFault(f"axis {node.attr('axis')} is out of range for rank {x.rank}")
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [ctx.reshape(x, (outer, int(np.prod(x.shape[axis:], dtype=np.int64))))]


@converter("Squeeze", const_inputs=(1,))
def _squeeze(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    axes = axes_input(node, 13)
    if axes is None:
        drop = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        drop = {norm_axis(a, x.rank) for a in axes}
        bad = [a for a in sorted(drop) if x.shape[a] != 1]
        if bad:
            raise ShapeFault(f"cannot squeeze dim {bad[0]} of shape {x.shape}: its size is not 1")
    return [ctx.reshape(x, [d for i, d in enumerate(x.shape) if i not in drop])]


@converter("Unsqueeze", const_inputs=(1,))
def _unsqueeze(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    axes = axes_input(node, 13)
    if axes is None:
        raise ShapeFault("axes are required")
    rank = x.rank + len(axes)
    new = {norm_axis(a, rank) for a in axes}
    if len(new) != len(axes):
        raise ShapeFault(f"axes {axes} repeat a dimension")
    dims = iter(x.shape)
    return [ctx.reshape(x, [1 if i in new else next(dims) for i in range(rank)])]


@converter("Transpose")
def _transpose(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    perm = node.attr("perm") or list(range(x.rank))[::-1]
    if sorted(perm) != list(range(x.rank)):
        raise ShapeFault(f"perm {perm} is not a permutation of {x.rank} dims")
    return [transpose(ctx, x, perm)]


@converter("DepthToSpace", "SpaceToDepth")
def _depth_space(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    b = int(node.attr("blocksize"))
    if x.rank != 4:
        raise ShapeFault(f"input must be 4-D, got {x.shape}")
    n, c, h, w = x.shape
    if node.op_type == "SpaceToDepth":
        if h % b or w % b:
            raise ShapeFault(f"spatial dims {h}x{w} do not divide by blocksize {b}")
        t = ctx.reshape(x, (n, c, h // b, b, w // b, b))
        crd = node.attr("mode", "DCR") == "CRD"
        t = transpose(ctx, t, (0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4))
        return [ctx.reshape(t, (n, c * b * b, h // b, w // b))]
    if c % (b * b):
        raise ShapeFault(f"channels {c} do not divide by blocksize^2 = {b * b}")
    if node.attr("mode", "DCR") == "CRD":
        t = ctx.reshape(x, (n, c // (b * b), b, b, h, w))
        t = transpose(ctx, t, (0, 1, 4, 2, 5, 3))
    else:
        t = ctx.reshape(x, (n, b, b, c // (b * b), h, w))
        t = transpose(ctx, t, (0, 3, 4, 1, 5, 2))
    return [ctx.reshape(t, (n, c // (b * b), h * b, w * b))]


# -- concat / split / slice ---------------------------------------------------------------


@converter("Concat")
def _concat(ctx: ImportContext, node: Node) -> list[Tensor]:
    ts = [t for t in node.inputs if t is not None]
    rank = ts[0].rank
    axis = norm_axis(int(node.attr("axis", 1 if node.opset < 4 else 0)), rank)
    for t in ts:
        if t.rank != rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, ts[0].shape, strict=True)) if i != axis):
            raise ShapeFault(f"cannot concatenate shapes {[u.shape for u in ts]} along axis {axis}")
    parts = [t for t in ts if t.shape[axis] > 0] or ts[:1]
    if len(parts) == 1:
        return [parts[0]]
    shape = list(ts[0].shape)
    shape[axis] = sum(t.shape[axis] for t in parts)
    dtype = ts[0].dtype
    return [ctx.emit1(vision.ConcatOp, parts, shape, dtype, {"axis": IntegerAttr(axis, i64)})]


def split_sizes(node: Node, dim: int) -> list[int]:
    n = node.num_outputs
    if node.opset < 13:
        split = node.attr("split")
    else:
        arr = node.const_input(1)
        split = None if arr is None else [int(v) for v in arr.reshape(-1)]
    if split:
        if len(split) != n or sum(split) != dim:
            raise ShapeFault(f"split sizes {split} do not divide a dim of {dim} into {n} outputs")
        return [int(s) for s in split]
    num = node.attr("num_outputs")
    if num is not None:
        chunk = -(-dim // int(num))
        sizes = [min(chunk, max(dim - i * chunk, 0)) for i in range(int(num))]
        return sizes
    if dim % n:
        raise ShapeFault(f"a dim of {dim} does not split evenly into {n} outputs")
    return [dim // n] * n


@converter("Split", const_inputs=(1,))
def _split(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    axis = norm_axis(int(node.attr("axis", 0)), x.rank)
    sizes = split_sizes(node, x.shape[axis])
    if len(sizes) == 1:
        return [x]
    results = []
    for size in sizes:
        shape = list(x.shape)
        shape[axis] = size
        results.append((shape, x.dtype))
    return ctx.emit(vision.SplitOp, [x], results, {"axis": IntegerAttr(axis, i64)})


def slice_params(node: Node, shape: tuple[int, ...]) -> tuple[list[int], list[int], list[int]]:
    """Normalized (starts, steps, sizes) with one entry per dim of `shape`."""
    if node.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes"), None
    else:
        vals = [node.const_input(i) for i in range(1, 5)]
        starts, ends, axes, steps = [None if v is None else v.reshape(-1).tolist() for v in vals]
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else [norm_axis(int(a), rank) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ShapeFault("starts, ends, axes and steps have different lengths")
    out_start, out_step, out_size = [0] * rank, [1] * rank, list(shape)
    for a, b, e, st in zip(axes, starts, ends, steps, strict=True):
        if st == 0:
            raise ShapeFault("a slice step is 0")
        r = range(*slice(int(b), int(e), int(st)).indices(shape[a]))
        out_start[a] = r.start if len(r) else 0
        out_step[a] = int(st)
        out_size[a] = len(r)
    return out_start, out_step, out_size


@converter("Slice", const_inputs=(1, 2, 3, 4))
def _slice(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    starts, steps, sizes = slice_params(node, x.shape)
    if tuple(sizes) == x.shape and all(s == 0 for s in starts) and all(s == 1 for s in steps):
        return [x]
    attrs = {"starts": vision.ints(starts), "steps": vision.ints(steps)}
    return [ctx.emit1(vision.SliceOp, [x], sizes, x.dtype, attrs)]


# -- pad ----------------------------------------------------------------------------------

_PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _check_pad(node, opset: int) -> list[str]:
    mode = attr_of(node, "mode", "constant")
    return [] if mode in _PAD_MODES else [f"Pad mode {mode!r} is not supported"]


@converter("Pad", const_inputs=(1, 2, 3), check=_check_pad)
def _pad(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    mode = node.attr("mode", "constant")
    rank = x.rank
    if node.opset < 11:
        pads = node.attr("pads", node.attr("paddings")) or []
        value = float(node.attr("value", 0.0))
        axes = list(range(rank))
    else:
        arr, val, ax = node.required_const(1), node.const_input(2), node.const_input(3)
        pads = [int(v) for v in arr.reshape(-1)]
        value = float(val.reshape(-1)[0]) if val is not None and val.size else 0.0
        axes = list(range(rank)) if ax is None else [norm_axis(int(a), rank) for a in ax.reshape(-1)]
    if len(pads) != 2 * len(axes):
        raise ShapeFault(f"pads has {len(pads)} values, expected {2 * len(axes)}")
    full = [0] * (2 * rank)
    for i, a in enumerate(axes):
        full[a], full[a + rank] = int(pads[i]), int(pads[i + len(axes)])
    shape = [x.shape[i] + full[i] + full[i + rank] for i in range(rank)]
    if any(d < 0 for d in shape):
        raise ShapeFault(f"pads {full} remove more than the input {x.shape} holds")
    if all(p == 0 for p in full):
        return [x]
    if mode != "constant" and any(x.shape[i] == 0 for i in range(rank) if full[i] or full[i + rank]):
        raise ShapeFault(f"mode {mode!r} cannot pad an empty dim")
    attrs = {
        "pads": vision.ints(full),
        "mode": StringAttr(mode),
        "value": FloatAttr(value, f64),
    }
    return [ctx.emit1(vision.PadOp, [x], shape, x.dtype, attrs)]


# -- broadcasting and indexing -------------------------------------------------------------


@converter("Expand", const_inputs=(1,))
def _expand(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    arr = node.required_const(1)
    shape = broadcast_shapes(x.shape, [int(v) for v in arr.reshape(-1)])
    return [expand(ctx, x, shape)]


@converter("Tile", const_inputs=(1,))
def _tile(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    arr = node.required_const(1)
    reps = [int(v) for v in arr.reshape(-1)]
    if len(reps) != x.rank:
        raise ShapeFault(f"repeats {reps} need one value per dim of {x.shape}")
    # tile = interleave a new size-r axis before each dim, broadcast, merge
    lifted = ctx.reshape(x, [v for d in x.shape for v in (1, d)])
    wide = expand(ctx, lifted, [v for r, d in zip(reps, x.shape, strict=True) for v in (r, d)])
    return [ctx.reshape(wide, [r * d for r, d in zip(reps, x.shape, strict=True)])]


@converter("Gather")
def _gather(ctx: ImportContext, node: Node) -> list[Tensor]:
    data, idx = node.x(0), node.x(1)
    if idx.dtype.kind not in "iu":
        raise Unsupported(f"indices must be integers, not {idx.dtype}")
    axis = norm_axis(int(node.attr("axis", 0)), data.rank)
    n = data.shape[axis]
    if idx.const is not None and idx.size and (idx.const.min() < -n or idx.const.max() >= n):
        raise ShapeFault(f"indices out of range for a dim of size {n}")
    shape = data.shape[:axis] + idx.shape + data.shape[axis + 1:]
    attrs = {"axis": IntegerAttr(axis, i64)}
    return [ctx.emit1(vision.GatherOp, [data, idx], shape, data.dtype, attrs)]
