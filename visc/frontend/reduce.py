"""Reductions and softmax."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

from visc.dialects import vision
from visc.frontend.context import ImportContext, Node, Tensor, Unsupported
from visc.frontend.dtypes import is_float
from visc.frontend.nn import signed_order
from visc.frontend.registry import converter
from visc.frontend.tensor_ops import axes_input, norm_axis

_SOFTMAX = {"Softmax": vision.SoftmaxOp, "LogSoftmax": vision.LogSoftmaxOp}


@converter(*_SOFTMAX)
def _softmax(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    op_cls = _SOFTMAX[node.op_type]
    if not is_float(x.dtype):
        raise Unsupported(f"element type {x.dtype} is not supported (floating point only)")
    if x.rank == 0:
        raise Unsupported("a scalar input has no axis to normalize")
    if node.opset >= 13:
        axis = norm_axis(int(node.attr("axis", -1)), x.rank)
        return [ctx.emit1(op_cls, [x], x.shape, x.dtype, {"axis": IntegerAttr(axis, i64)})]
    # Before opset 13 the input is coerced to 2-D at `axis` and normalized over the second dim.
    axis = int(node.attr("axis", 1))
    axis = axis + x.rank if axis < 0 else axis
    rows = int(np.prod(x.shape[:axis], dtype=np.int64))
    flat = ctx.reshape(x, (rows, x.size // rows if rows else 0))
    y = ctx.emit1(op_cls, [flat], flat.shape, x.dtype, {"axis": IntegerAttr(1, i64)})
    return [ctx.reshape(y, x.shape)]


_REDUCE = {
    "ReduceSum": "sum",
    "ReduceMean": "mean",
    "ReduceMax": "max",
    "ReduceMin": "min",
    "ReduceProd": "prod",
    "ReduceSumSquare": "sum_square",
    "ReduceL1": "l1",
    "ReduceL2": "l2",
    "ReduceLogSum": "log_sum",
    "ReduceLogSumExp": "log_sum_exp",
}


@converter(*_REDUCE, const_inputs=(1,))
def _reduce(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    kind = _REDUCE[node.op_type]
    axes = axes_input(node, 13 if node.op_type == "ReduceSum" else 18)
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.rank))
    axes = sorted({norm_axis(a, x.rank) for a in axes})
    if kind == "l1" and x.dtype.kind in "ub":
        kind = "sum"  # |x| = x, and the signless reference would read high values as negative
    keep = bool(node.attr("keepdims", 1))
    shape = [1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes]
    if kind not in ("sum", "max", "min", "prod", "sum_square", "l1") and not is_float(x.dtype):
        raise Unsupported(f"{node.op_type} of element type {x.dtype} is not supported")
    attrs = {"kind": StringAttr(kind), "axes": vision.ints(axes)}
    ordered = kind in ("max", "min")
    src = signed_order(ctx, x) if ordered else x
    y = ctx.emit1(vision.ReduceOp, [src], shape, x.dtype, attrs)
    return [signed_order(ctx, y) if ordered else y]
