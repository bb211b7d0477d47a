"""Resize (opsets 10-19) and Upsample (7-9) -> `vision.resize` with explicit scales."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import NodeProto
from xdsl.dialects import math
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr, f64, i64
from xdsl.ir import SSAValue

from visc.dialects import vision
from visc.frontend.context import ImportContext, Node, ShapeFault, Tensor
from visc.frontend.registry import attr_of, converter
from visc.frontend.scalars import Scalars, emit_map
from visc.frontend.tensor_ops import norm_axis

_MODES = ("nearest", "linear", "cubic")
_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _check_resize(node: NodeProto, opset: int) -> list[str]:
    problems = []
    mode = attr_of(node, "mode", "nearest")
    if mode == "bilinear" and node.op_type == "Upsample":
        mode = "linear"
    if mode not in _MODES:
        problems.append(f"{node.op_type} mode {mode!r} is not supported")
    coord = attr_of(node, "coordinate_transformation_mode", "half_pixel")
    if coord not in _COORD_MODES:
        problems.append(f"Resize coordinate_transformation_mode {coord!r} is not supported")
    if attr_of(node, "nearest_mode", "round_prefer_floor") not in _NEAREST_MODES:
        problems.append(f"Resize nearest_mode {attr_of(node, 'nearest_mode')!r} is not supported")
    if attr_of(node, "antialias", 0):
        problems.append("Resize with antialias=1 is not supported")
    if attr_of(node, "keep_aspect_ratio_policy", "stretch") not in ("stretch", "not_larger", "not_smaller"):
        problems.append(f"Resize keep_aspect_ratio_policy {attr_of(node, 'keep_aspect_ratio_policy')!r} is not supported")
    return problems


def _emit(ctx: ImportContext, x: Tensor, out: Sequence[int], scales: Sequence[float], mode: str,
          coord: str, nearest: str, roi: Sequence[float], node: Node) -> Tensor:
    if any(d < 1 for d in out):
        raise ShapeFault(f"the output shape {tuple(out)} is empty")
    attrs = {
        "mode": StringAttr(mode),
        "coord_mode": StringAttr(coord),
        "nearest_mode": StringAttr(nearest),
        "scales": vision.floats(scales),
        "roi": vision.floats(roi),
        "cubic_coeff_a": FloatAttr(float(node.attr("cubic_coeff_a", -0.75)), f64),
        "exclude_outside": IntegerAttr(int(node.attr("exclude_outside", 0)), i64),
        "extrapolation_value": FloatAttr(float(node.attr("extrapolation_value", 0.0)), f64),
    }
    if mode == "nearest" or x.dtype.kind == "f":
        return ctx.emit1(vision.ResizeOp, [x], out, x.dtype, attrs)
    # Interpolating integers: resize in floating point, then round half to even and saturate.
    work = np.dtype(np.float64)  # what the ONNX reference uses: exact for every integer type
    xf = emit_map(ctx, [x], work, lambda s, v: s.cast(v[0], x.dtype, work))
    yf = ctx.emit1(vision.ResizeOp, [xf], out, work, attrs)
    info = np.iinfo(x.dtype)

    def back(s: Scalars, v: list[SSAValue]) -> SSAValue:
        r = s.emit(math.RoundEvenOp(v[0]))
        r = s.min(s.max(r, s.const(float(info.min), work), work), s.const(float(info.max), work), work)
        return s.cast(r, work, x.dtype)

    return emit_map(ctx, [yf], x.dtype, back)


def _legacy(ctx: ImportContext, node: Node, x: Tensor, scales: Sequence[float]) -> Tensor:
    """Upsample and Resize-10: asymmetric coordinates; nearest rounds down when enlarging
    and up when shrinking (as onnxruntime does)."""
    if len(scales) != x.rank:
        raise ShapeFault(f"scales {list(scales)} need one value per dim of {x.shape}")
    mode = node.attr("mode", "nearest")
    mode = "linear" if mode == "bilinear" else mode
    out = [int(np.floor(d * s)) for d, s in zip(x.shape, scales, strict=True)]
    nearest = "ceil" if all(s <= 1 for s in scales) and any(s < 1 for s in scales) else "floor"
    roi = [0.0] * x.rank + [1.0] * x.rank
    return _emit(ctx, x, out, scales, mode, "asymmetric", nearest, roi, node)


@converter("Upsample", const_inputs=(1,), check=_check_resize)
def _upsample(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    if node.opset < 9:
        scales = [float(s) for s in node.attr("scales", [])]
    else:
        arr = node.required_const(1)
        scales = [float(s) for s in arr.reshape(-1)]
    return [_legacy(ctx, node, x, scales)]


@converter("Resize", const_inputs=(1, 2, 3), check=_check_resize)
def _resize(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    r = x.rank
    if node.opset < 11:
        arr = node.required_const(1)
        return [_legacy(ctx, node, x, [float(s) for s in arr.reshape(-1)])]
    roi_in, scales_in, sizes_in = node.const_input(1), node.const_input(2), node.const_input(3)
    axes = node.attr("axes")
    axes = list(range(r)) if axes is None else [norm_axis(int(a), r) for a in axes]
    roi = [0.0] * r + [1.0] * r
    if roi_in is not None and roi_in.size:
        vals = [float(v) for v in roi_in.reshape(-1)]
        if len(vals) != 2 * len(axes):
            raise ShapeFault(f"roi {vals} needs {2 * len(axes)} values")
        for i, a in enumerate(axes):
            roi[a], roi[a + r] = vals[i], vals[i + len(axes)]
    if scales_in is not None and scales_in.size:
        given = [float(s) for s in scales_in.reshape(-1)]
        if len(given) != len(axes):
            raise ShapeFault(f"scales {given} need {len(axes)} values for input {x.shape}")
        scales = [1.0] * r
        for a, s in zip(axes, given, strict=True):
            scales[a] = s
        out = [int(np.floor(d * s)) for d, s in zip(x.shape, scales, strict=True)]
    elif sizes_in is not None and sizes_in.size:
        given_sizes = [int(v) for v in sizes_in.reshape(-1)]
        if len(given_sizes) != len(axes):
            raise ShapeFault(f"sizes {given_sizes} need {len(axes)} values for input {x.shape}")
        out = list(x.shape)
        for a, s in zip(axes, given_sizes, strict=True):
            out[a] = s
        scales = [o / d for o, d in zip(out, x.shape, strict=True)]
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            scale = pick(scales[a] for a in axes)
            scales = [scale if i in axes else 1.0 for i in range(r)]
            out = [int(scale * d + 0.5) if i in axes else d for i, d in enumerate(x.shape)]
    else:
        raise ShapeFault("neither scales nor sizes is given")
    mode = node.attr("mode", "nearest")
    coord = node.attr("coordinate_transformation_mode", "half_pixel")
    nearest = node.attr("nearest_mode", "round_prefer_floor")
    return [_emit(ctx, x, out, scales, mode, coord, nearest, roi, node)]
