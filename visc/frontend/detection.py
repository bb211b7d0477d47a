"""Sorting, selection and detection ops: TopK, ArgMax, ArgMin, CumSum, NonMaxSuppression,
RoiAlign.

Unsigned inputs of ordering ops go through `signed_order` (a sign-bit flip) so the signed
comparisons of the vision ops order them right. NonMaxSuppression's output has a
data-dependent number of rows: its tensor is the static maximum plus a `count` tensor,
which the importer turns into a hidden graph output (docs/ir.md, `vision.output_counts`).
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr, f32, i64

from visc.dialects import vision
from visc.frontend.context import ImportContext, Node, ShapeFault, Tensor, Unsupported
from visc.frontend.dtypes import is_bool, is_float
from visc.frontend.nn import signed_order
from visc.frontend.registry import attr_of, converter
from visc.frontend.tensor_ops import norm_axis

I64 = np.dtype(np.int64)


def _i64(v: int) -> IntegerAttr:
    return IntegerAttr(int(v), i64)


def _scalar(node: Node, i: int, what: str) -> float | None:
    """An optional one-element constant input as a Python number."""
    arr = node.const_input(i)
    if arr is None or arr.size == 0:
        return None
    if arr.size != 1:
        raise ShapeFault(f"{what} (input {i + 1}) must hold one value, got shape {arr.shape}")
    return arr.reshape(-1)[0].item()


def _ordered_input(node: Node) -> Tensor:
    x = node.x(0)
    if is_bool(x.dtype):
        raise Unsupported(f"element type {x.dtype} is not supported (numbers only)")
    if x.rank == 0:
        raise ShapeFault("a scalar input has no axis")
    return x


@converter("TopK", const_inputs=(1,))
def _topk(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = _ordered_input(node)
    axis = norm_axis(int(node.attr("axis", -1)), x.rank)
    if node.opset < 10:
        k = int(node.attr("k"))
    else:
        k_arr = node.required_const(1)
        if k_arr.size != 1:
            raise ShapeFault(f"K must hold one value, got shape {k_arr.shape}")
        k = int(k_arr.reshape(-1)[0])
    if not 0 <= k <= x.shape[axis]:
        raise ShapeFault(f"K = {k} is not in 0..{x.shape[axis]} (the size of axis {axis})")
    shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
    if k == 0:
        return [Tensor.constant(np.zeros(shape, x.dtype)), Tensor.constant(np.zeros(shape, I64))]
    attrs = {"axis": _i64(axis), "k": _i64(k), "largest": _i64(int(node.attr("largest", 1)))}
    values, indices = ctx.emit(vision.TopKOp, [signed_order(ctx, x)], [(shape, x.dtype), (shape, I64)], attrs)
    return [signed_order(ctx, values), indices]


@converter("ArgMax", "ArgMin")
def _arg_extreme(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = _ordered_input(node)
    axis = norm_axis(int(node.attr("axis", 0)), x.rank)
    keep = bool(node.attr("keepdims", 1))
    shape = x.shape[:axis] + ((1,) if keep else ()) + x.shape[axis + 1:]
    op_cls = vision.ArgMaxOp if node.op_type == "ArgMax" else vision.ArgMinOp
    attrs = {"axis": _i64(axis), "select_last_index": _i64(int(node.attr("select_last_index", 0)))}
    return [ctx.emit1(op_cls, [signed_order(ctx, x)], shape, I64, attrs)]


@converter("CumSum", const_inputs=(1,))
def _cumsum(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = _ordered_input(node)
    axis_arr = node.required_const(1)
    if axis_arr.size != 1:
        raise ShapeFault(f"axis must hold one value, got shape {axis_arr.shape}")
    axis = norm_axis(int(axis_arr.reshape(-1)[0]), x.rank)
    attrs = {"axis": _i64(axis), "exclusive": _i64(int(node.attr("exclusive", 0))),
             "reverse": _i64(int(node.attr("reverse", 0)))}
    return [ctx.emit1(vision.ScanOp, [x], x.shape, x.dtype, attrs)]


def _check_nms(node: NodeProto, opset: int) -> list[str]:
    if attr_of(node, "center_point_box", 0) not in (0, 1):
        return [f"center_point_box={attr_of(node, 'center_point_box')} is not 0 or 1"]
    return []


@converter("NonMaxSuppression", const_inputs=(2, 3, 4), check=_check_nms)
def _nms(ctx: ImportContext, node: Node) -> list[Tensor]:
    boxes, scores = node.x(0), node.x(1)
    if not (is_float(boxes.dtype) and is_float(scores.dtype)):
        raise Unsupported(f"boxes and scores must be floating point, got {boxes.dtype} and {scores.dtype}")
    if boxes.rank != 3 or boxes.shape[2] != 4:
        raise ShapeFault(f"boxes must have shape [batch, boxes, 4], got {boxes.shape}")
    if scores.rank != 3 or scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
        raise ShapeFault(f"scores must have shape [{boxes.shape[0]}, classes, {boxes.shape[1]}], got {scores.shape}")
    max_out = _scalar(node, 2, "max_output_boxes_per_class")
    per_class = min(max(int(max_out or 0), 0), boxes.shape[1])
    rows = boxes.shape[0] * scores.shape[1] * per_class
    if rows == 0:
        return [Tensor.constant(np.zeros((0, 3), I64))]
    iou = _scalar(node, 3, "iou_threshold")
    score = _scalar(node, 4, "score_threshold")
    if iou is not None and not 0.0 <= iou <= 1.0:
        raise ShapeFault(f"iou_threshold {iou} is not in [0, 1]")
    attrs = {"center_point_box": _i64(int(node.attr("center_point_box", 0))),
             "max_output_boxes_per_class": _i64(per_class),
             "iou_threshold": FloatAttr(float(iou or 0.0), f32)}
    if score is not None:
        attrs["score_threshold"] = FloatAttr(float(score), f32)
    if scores.dtype != boxes.dtype:
        raise Unsupported(f"boxes ({boxes.dtype}) and scores ({scores.dtype}) must have one element type")
    selected, count = ctx.emit(vision.NmsOp, [boxes, scores], [((rows, 3), I64), ((1,), I64)], attrs)
    selected.count = count
    return [selected]


_ROI_MODES = ("avg", "max")
_ROI_COORDS = ("half_pixel", "output_half_pixel")


def _check_roi_align(node: NodeProto, opset: int) -> list[str]:
    problems = []
    if attr_of(node, "mode", "avg") not in _ROI_MODES:
        problems.append(f"mode={attr_of(node, 'mode')!r} is not avg or max")
    if attr_of(node, "coordinate_transformation_mode", "half_pixel") not in _ROI_COORDS:
        problems.append(f"coordinate_transformation_mode={attr_of(node, 'coordinate_transformation_mode')!r} "
                        "is not half_pixel or output_half_pixel")
    return problems


@converter("RoiAlign", check=_check_roi_align)
def _roi_align(ctx: ImportContext, node: Node) -> list[Tensor]:
    x, rois, batch_indices = node.x(0), node.x(1), node.x(2)
    if not is_float(x.dtype) or rois.dtype != x.dtype:
        raise Unsupported(f"X and rois must share a floating-point type, got {x.dtype} and {rois.dtype}")
    if x.rank != 4:
        raise ShapeFault(f"X must have shape [N, C, H, W], got {x.shape}")
    if rois.rank != 2 or rois.shape[1] != 4 or batch_indices.shape != (rois.shape[0],):
        raise ShapeFault(f"rois must be [R, 4] and batch_indices [R], got {rois.shape} and {batch_indices.shape}")
    consts = batch_indices.const
    if consts is not None and consts.size and (consts.min() < 0 or consts.max() >= x.shape[0]):
        raise ShapeFault(f"batch_indices out of range for an input of {x.shape[0]} images")
    # opset 10 had no coordinate_transformation_mode and behaved as output_half_pixel
    coord = node.attr("coordinate_transformation_mode", "half_pixel" if node.opset >= 16 else "output_half_pixel")
    shape = (rois.shape[0], x.shape[1], int(node.attr("output_height", 1)), int(node.attr("output_width", 1)))
    attrs = {"mode": StringAttr(node.attr("mode", "avg")), "coord_mode": StringAttr(coord),
             "sampling_ratio": _i64(max(int(node.attr("sampling_ratio", 0)), 0)),
             "spatial_scale": FloatAttr(float(node.attr("spatial_scale", 1.0)), f32)}
    return [ctx.emit1(vision.RoiAlignOp, [x, rois, batch_indices], shape, x.dtype, attrs)]
