"""GatherElements, GatherND and ScatterND: reads and writes at indices given as data.

Constant indices are checked here; indices computed at run time are checked by the kernels,
which report an out-of-range index through a status word (docs/ir.md, "Run-time checks")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

from visc.dialects import vision
from visc.frontend.context import ImportContext, Node, ShapeFault, Tensor, Unsupported
from visc.frontend.registry import converter
from visc.frontend.tensor_ops import norm_axis

_REDUCTIONS = ("none", "add", "mul", "max", "min")


def _int_indices(idx: Tensor) -> None:
    if idx.dtype.kind not in "iu":
        raise Unsupported(f"indices must be integers, not {idx.dtype}")


def _check_const(idx: Tensor, sizes: Sequence[int]) -> None:
    """Constant indices in range now (run-time indices are checked by the kernels)."""
    if idx.const is None or not idx.size:
        return
    n = np.asarray(sizes, dtype=np.int64)
    values = idx.const.astype(np.int64)
    if np.any(values < -n) or np.any(values >= n):
        raise ShapeFault(f"indices out of range for dims of size {n.tolist()}")


@converter("GatherElements")
def _gather_elements(ctx: ImportContext, node: Node) -> list[Tensor]:
    data, idx = node.x(0), node.x(1)
    _int_indices(idx)
    if idx.rank != data.rank:
        raise ShapeFault(f"indices {list(idx.shape)} must have the rank of data {list(data.shape)}")
    axis = norm_axis(int(node.attr("axis", 0)), data.rank)
    _check_const(idx, [data.shape[axis]])
    return [ctx.emit1(vision.GatherElementsOp, [data, idx], idx.shape, data.dtype, {"axis": IntegerAttr(axis, i64)})]


@converter("GatherND")
def _gather_nd(ctx: ImportContext, node: Node) -> list[Tensor]:
    data, idx = node.x(0), node.x(1)
    _int_indices(idx)
    b = int(node.attr("batch_dims", 0))
    if idx.rank < 1 or not 0 <= b < min(idx.rank, data.rank + 1) or b + idx.shape[-1] > data.rank \
            or idx.shape[:b] != data.shape[:b]:
        raise ShapeFault(f"indices {list(idx.shape)} do not address data {list(data.shape)} with batch_dims {b}")
    k = idx.shape[-1]
    _check_const(idx, data.shape[b:b + k])
    shape = idx.shape[:-1] + data.shape[b + k:]
    return [ctx.emit1(vision.GatherNDOp, [data, idx], shape, data.dtype, {"batch_dims": IntegerAttr(b, i64)})]


@converter("ScatterND")
def _scatter_nd(ctx: ImportContext, node: Node) -> list[Tensor]:
    data, idx, updates = node.x(0), node.x(1), node.x(2)
    _int_indices(idx)
    reduction = str(node.attr("reduction", "none"))
    if reduction not in _REDUCTIONS:
        raise Unsupported(f"reduction '{reduction}' is not one of {list(_REDUCTIONS)}")
    if idx.rank < 1 or idx.shape[-1] > data.rank:
        raise ShapeFault(f"indices {list(idx.shape)} address more dims than data {list(data.shape)} has")
    k = idx.shape[-1]
    want = idx.shape[:-1] + data.shape[k:]
    if updates.shape != want:
        raise ShapeFault(f"updates have shape {list(updates.shape)}, expected {list(want)}")
    if updates.dtype != data.dtype:
        raise Unsupported(f"updates ({updates.dtype}) and data ({data.dtype}) must share a type")
    _check_const(idx, data.shape[:k])
    return [ctx.emit1(vision.ScatterNDOp, [data, idx, updates], data.shape, data.dtype,
                      {"reduction": StringAttr(reduction)})]
