"""Convolution, pooling, normalization and matrix products."""

from __future__ import annotations

from collections.abc import Sequence

from onnx import NodeProto
from xdsl.dialects import arith
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr, f32, i64

from visc.dialects import vision
from visc.dialects.vision import conv_out_size
from visc.frontend.context import (
    ImportContext,
    Node,
    ShapeFault,
    Tensor,
    Unsupported,
    broadcast_shapes,
)
from visc.frontend.dtypes import is_unsigned
from visc.frontend.registry import attr_of, converter
from visc.frontend.scalars import emit_map


def _f32(v: float) -> FloatAttr:
    return FloatAttr(float(v), f32)


def _i64(v: int) -> IntegerAttr:
    return IntegerAttr(int(v), i64)


def _check_auto_pad(node: NodeProto, opset: int) -> list[str]:
    auto = attr_of(node, "auto_pad", "NOTSET")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        return [f"{node.op_type} auto_pad={auto!r} is not supported"]
    return []


def window_pads(node: Node, spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                dilations: Sequence[int]) -> list[int]:
    """Explicit pads (all begins, then all ends), resolving auto_pad like onnxruntime."""
    nd = len(spatial)
    auto = node.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            begins.append(small if auto == "SAME_UPPER" else big)
            ends.append(big if auto == "SAME_UPPER" else small)
        return begins + ends
    if auto == "VALID":
        return [0] * (2 * nd)
    pads = node.attr("pads") or [0] * (2 * nd)
    if len(pads) != 2 * nd:
        raise ShapeFault(f"pads {pads} need {2 * nd} values")
    return [int(p) for p in pads]


def _spatial_attrs(node: Node, nd: int, kernel: Sequence[int]) -> tuple[list[int], list[int]]:
    strides = node.attr("strides") or [1] * nd
    dilations = node.attr("dilations") or [1] * nd
    if len(strides) != nd or len(dilations) != nd:
        raise ShapeFault(f"strides {strides} / dilations {dilations} need {nd} values")
    return [int(s) for s in strides], [int(d) for d in dilations]


def _lift_1d(ctx: ImportContext, t: Tensor) -> Tensor:
    """(N, C, L) -> (N, C, 1, L): 1-D windows run as 2-D ones of height 1."""
    return ctx.reshape(t, (*t.shape[:2], 1, t.shape[2]))


# -- convolution -------------------------------------------------------------------------


@converter("Conv", check=_check_auto_pad)
def _conv(ctx: ImportContext, node: Node) -> list[Tensor]:
    x, w, b = node.x(0), node.x(1), node.input(2)
    if x.rank < 3 or w.rank != x.rank:
        raise ShapeFault(f"input {x.shape} and weight {w.shape} must have the same rank >= 3")
    nd = x.rank - 2
    if nd > 2:
        raise Unsupported(f"{nd}-D convolution is not supported (1-D and 2-D only)")
    kernel = list(w.shape[2:])
    if node.attr("kernel_shape") and list(node.attr("kernel_shape")) != kernel:
        raise ShapeFault(f"kernel_shape {node.attr('kernel_shape')} differs from the weight's {kernel}")
    g = int(node.attr("group", 1))
    c, o = x.shape[1], w.shape[0]
    if c != w.shape[1] * g or o % g:
        raise ShapeFault(f"input has {c} channels but the weight {w.shape} with group={g} expects {w.shape[1] * g}")
    if b is not None and b.shape != (o,):
        raise ShapeFault(f"bias shape {b.shape} is not ({o},)")
    strides, dilations = _spatial_attrs(node, nd, kernel)
    pads = window_pads(node, x.shape[2:], kernel, strides, dilations)
    out = []
    for i in range(nd):
        size = conv_out_size(x.shape[2 + i], kernel[i], strides[i], pads[i], pads[i + nd], dilations[i])
        if size < 1:
            raise ShapeFault(f"the {kernel} kernel does not fit the padded input {x.shape}")
        out.append(size)
    if nd == 1:
        x, w = _lift_1d(ctx, x), _lift_1d(ctx, w)
        strides, dilations = [1, *strides], [1, *dilations]
        pads = [0, pads[0], 0, pads[1]]
    attrs = {
        "strides": vision.ints(strides),
        "pads": vision.ints(pads),
        "dilations": vision.ints(dilations),
        "groups": _i64(g),
    }
    ins = [x, w] if b is None else [x, w, b]
    shape = (x.shape[0], o, *([1] if nd == 1 else []), *out)
    y = ctx.emit1(vision.Conv2dOp, ins, shape, x.dtype, attrs)
    return [ctx.reshape(y, (x.shape[0], o, *out))]


@converter("ConvTranspose", check=_check_auto_pad)
def _conv_transpose(ctx: ImportContext, node: Node) -> list[Tensor]:
    x, w, b = node.x(0), node.x(1), node.input(2)
    if x.rank < 3 or w.rank != x.rank:
        raise ShapeFault(f"input {x.shape} and weight {w.shape} must have the same rank >= 3")
    nd = x.rank - 2
    if nd > 2:
        raise Unsupported(f"{nd}-D transposed convolution is not supported (1-D and 2-D only)")
    g = int(node.attr("group", 1))
    if x.shape[1] != w.shape[0] or x.shape[1] % g:
        raise ShapeFault(f"input has {x.shape[1]} channels, the weight {w.shape} expects {w.shape[0]}")
    o = w.shape[1] * g
    if b is not None and b.shape != (o,):
        raise ShapeFault(f"bias shape {b.shape} is not ({o},)")
    kernel = list(w.shape[2:])
    strides, dilations = _spatial_attrs(node, nd, kernel)
    out_pad = [int(v) for v in (node.attr("output_padding") or [0] * nd)][-nd:]
    full = [strides[i] * (x.shape[2 + i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1
            for i in range(nd)]
    auto = node.attr("auto_pad", "NOTSET")
    out_shape = node.attr("output_shape")
    if out_shape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        out_shape = [x.shape[2 + i] * strides[i] for i in range(nd)]
    if out_shape is not None:
        out = [int(v) for v in out_shape][-nd:]
        begins, ends = [], []
        for i in range(nd):
            total = full[i] - out[i]
            small, big = total // 2, total - total // 2
            begins.append(small if auto == "SAME_UPPER" else big)
            ends.append(big if auto == "SAME_UPPER" else small)
        pads = begins + ends
    else:
        pads = [int(p) for p in (node.attr("pads") or [0] * (2 * nd))]
        out = [full[i] - pads[i] - pads[i + nd] for i in range(nd)]
    if any(v < 1 for v in out):
        raise ShapeFault(f"output size {out} is empty")
    if nd == 1:
        x, w = _lift_1d(ctx, x), _lift_1d(ctx, w)
        strides, dilations, out_pad = [1, *strides], [1, *dilations], [0, *out_pad]
        pads = [0, pads[0], 0, pads[1]]
    attrs = {
        "strides": vision.ints(strides),
        "pads": vision.ints(pads),
        "dilations": vision.ints(dilations),
        "groups": _i64(g),
        "output_padding": vision.ints(out_pad),
    }
    ins = [x, w] if b is None else [x, w, b]
    shape = (x.shape[0], o, *([1] if nd == 1 else []), *out)
    y = ctx.emit1(vision.Conv2dTransposeOp, ins, shape, x.dtype, attrs)
    return [ctx.reshape(y, (x.shape[0], o, *out))]


# -- normalization ------------------------------------------------------------------------


def _check_batch_norm(node: NodeProto, opset: int) -> list[str]:
    if attr_of(node, "training_mode", 0):
        return ["BatchNormalization with training_mode=1 is not supported (inference only)"]
    if opset < 9 and attr_of(node, "spatial", 1) == 0:
        return ["BatchNormalization with spatial=0 is not supported"]
    if opset < 7 and not attr_of(node, "is_test", 0):
        return ["BatchNormalization in training mode (is_test=0) is not supported"]
    return []


@converter("BatchNormalization", check=_check_batch_norm)
def _batch_norm(ctx: ImportContext, node: Node) -> list[Tensor]:
    if any(node.used_outputs[1:]):
        raise Unsupported("the training-mode outputs (running mean/var, saved statistics) are used")
    x = node.x(0)
    params = [node.x(i) for i in range(1, 5)]
    if x.rank < 2:
        raise ShapeFault(f"input {x.shape} needs a channel dim")
    for p in params:
        if p.shape != (x.shape[1],):
            raise ShapeFault(f"scale/bias/mean/var shape {p.shape} is not ({x.shape[1]},)")
    attrs = {"epsilon": _f32(node.attr("epsilon", 1e-5))}
    y = ctx.emit1(vision.BatchNormOp, [x, *params], x.shape, x.dtype, attrs)
    return [y] + [None] * (node.num_outputs - 1)


@converter("LRN")
def _lrn(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    if x.rank < 3:
        raise ShapeFault(f"input {x.shape} needs channels and spatial dims")
    attrs = {
        "size": _i64(node.attr("size")),
        "alpha": _f32(node.attr("alpha", 1e-4)),
        "beta": _f32(node.attr("beta", 0.75)),
        "bias": _f32(node.attr("bias", 1.0)),
    }
    return [ctx.emit1(vision.LrnOp, [x], x.shape, x.dtype, attrs)]


# -- pooling -------------------------------------------------------------------------------


def signed_order(ctx: ImportContext, t: Tensor) -> Tensor:
    """Flip the sign bit of unsigned data so signed max/min order it correctly (an involution)."""
    if not is_unsigned(t.dtype):
        return t
    bits = 8 * t.dtype.itemsize
    dt = t.dtype

    def build(s, v):
        return s.emit(arith.XOrIOp(v[0], s.const(1 << (bits - 1), dt)))

    return emit_map(ctx, [t], dt, build)


def _check_pool(node: NodeProto, opset: int) -> list[str]:
    problems = _check_auto_pad(node, opset)
    if len(node.output) > 1 and node.output[1]:
        problems.append("MaxPool's Indices output is not supported")
    return problems


@converter("MaxPool", "AveragePool", "LpPool", check=_check_pool)
def _pool(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    nd = x.rank - 2
    if nd < 1:
        raise ShapeFault(f"input {x.shape} needs spatial dims")
    kernel = [int(k) for k in node.attr("kernel_shape", [])]
    if len(kernel) != nd:
        raise ShapeFault(f"kernel_shape {kernel} needs {nd} values for input {x.shape}")
    strides, dilations = _spatial_attrs(node, nd, kernel)
    pads = window_pads(node, x.shape[2:], kernel, strides, dilations)
    ceil = bool(node.attr("ceil_mode", 0))
    out = []
    for i in range(nd):
        size = conv_out_size(x.shape[2 + i], kernel[i], strides[i], pads[i], pads[i + nd], dilations[i], ceil)
        if size < 1:
            raise ShapeFault(f"the {kernel} window does not fit the padded input {x.shape}")
        out.append(size)
    kind = {"MaxPool": "max", "AveragePool": "avg", "LpPool": "lp"}[node.op_type]
    attrs = {
        "kind": StringAttr(kind),
        "kernel": vision.ints(kernel),
        "strides": vision.ints(strides),
        "pads": vision.ints(pads),
        "dilations": vision.ints(dilations),
        "ceil_mode": _i64(ceil),
        "count_include_pad": _i64(node.attr("count_include_pad", 0)),
    }
    if kind == "lp":
        attrs["p"] = _i64(node.attr("p", 2))
    src = signed_order(ctx, x) if kind == "max" else x
    y = ctx.emit1(vision.Pool2dOp, [src], (*x.shape[:2], *out), x.dtype, attrs)
    return [signed_order(ctx, y) if kind == "max" else y, None][: node.num_outputs]


@converter("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def _global_pool(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    if x.rank < 3:
        raise ShapeFault(f"input {x.shape} needs spatial dims")
    shape = (*x.shape[:2], *([1] * (x.rank - 2)))
    if node.op_type == "GlobalLpPool":
        nd = x.rank - 2
        attrs = {
            "kind": StringAttr("lp"),
            "kernel": vision.ints(x.shape[2:]),
            "strides": vision.ints([1] * nd),
            "pads": vision.ints([0] * (2 * nd)),
            "dilations": vision.ints([1] * nd),
            "ceil_mode": _i64(0),
            "count_include_pad": _i64(0),
            "p": _i64(node.attr("p", 2)),
        }
        return [ctx.emit1(vision.Pool2dOp, [x], shape, x.dtype, attrs)]
    kind = "max" if node.op_type == "GlobalMaxPool" else "avg"
    src = signed_order(ctx, x) if kind == "max" else x
    y = ctx.emit1(vision.GlobalPoolOp, [src], shape, x.dtype, {"kind": StringAttr(kind)})
    return [signed_order(ctx, y) if kind == "max" else y]


# -- matrix products -----------------------------------------------------------------------


@converter("Gemm")
def _gemm(ctx: ImportContext, node: Node) -> list[Tensor]:
    a, b, c = node.x(0), node.x(1), node.input(2)
    if a.rank != 2 or b.rank != 2:
        raise ShapeFault(f"A {a.shape} and B {b.shape} must be 2-D")
    ta, tb = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    m, k = (a.shape[1], a.shape[0]) if ta else a.shape
    k2, n = (b.shape[1], b.shape[0]) if tb else b.shape
    if k != k2:
        raise ShapeFault(f"A {a.shape} (transA={ta}) and B {b.shape} (transB={tb}) do not multiply: {k} != {k2}")
    ins = [a, b]
    if c is not None and beta != 0.0:
        if broadcast_shapes(c.shape, (m, n)) != (m, n):
            raise ShapeFault(f"C {c.shape} does not broadcast to the output ({m}, {n})")
        ins.append(c)
    attrs = {
        "transpose_a": _i64(ta),
        "transpose_b": _i64(tb),
        "alpha": _f32(alpha),
        "beta": _f32(beta),
    }
    return [ctx.emit1(vision.MatmulOp, ins, (m, n), a.dtype, attrs)]


@converter("MatMul")
def _matmul(ctx: ImportContext, node: Node) -> list[Tensor]:
    a, b = node.x(0), node.x(1)
    if a.rank == 0 or b.rank == 0:
        raise ShapeFault("MatMul operands must have at least one dim")
    a2 = ctx.reshape(a, (1, a.shape[0])) if a.rank == 1 else a
    b2 = ctx.reshape(b, (b.shape[0], 1)) if b.rank == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ShapeFault(f"{a.shape} and {b.shape} do not multiply: {a2.shape[-1]} != {b2.shape[-2]}")
    batch = broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    y = ctx.emit1(vision.MatmulOp, [a2, b2], (*batch, a2.shape[-2], b2.shape[-1]), a.dtype)
    shape = list(batch)
    if a.rank > 1:
        shape.append(a.shape[-2])
    if b.rank > 1:
        shape.append(b.shape[-1])
    return [ctx.reshape(y, shape)]

