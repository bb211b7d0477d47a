"""Elementwise ONNX ops -> one `vision.map` each (fusion is a later pass's job)."""

from __future__ import annotations

import math as pymath
from collections.abc import Callable, Sequence

import numpy as np
from onnx import NodeProto
from xdsl.dialects import math
from xdsl.ir import Operation, SSAValue

from visc.frontend.context import ImportContext, Node, Tensor, Unsupported
from visc.frontend.dtypes import is_bool, is_float, is_unsigned, numpy_dtype, onnx_type_name
from visc.frontend.registry import attr_of, converter
from visc.frontend.scalars import Scalars, emit_map

# -- unary float math ------------------------------------------------------------------

_UNARY_MATH: dict[str, Callable[[SSAValue], Operation]] = {
    "Exp": math.ExpOp,
    "Log": math.LogOp,
    "Sqrt": math.SqrtOp,
    "Tanh": math.TanhOp,
    "Erf": math.ErfOp,
    "Floor": math.FloorOp,
    "Ceil": math.CeilOp,
    "Round": math.RoundEvenOp,
    "Sin": math.SinOp,
    "Cos": math.CosOp,
    "Tan": math.TanOp,
    "Asin": math.AsinOp,
    "Acos": math.AcosOp,
    "Atan": math.AtanOp,
    "Sinh": math.SinhOp,
    "Cosh": math.CoshOp,
    "Asinh": math.AsinhOp,
    "Acosh": math.AcoshOp,
    "Atanh": math.AtanhOp,
}


def _float_only(x: Tensor) -> None:
    if not is_float(x.dtype):
        raise Unsupported(f"element type {x.dtype} is not supported (floating point only)")


@converter(*_UNARY_MATH)
def _unary_math(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    _float_only(x)
    op_cls = _UNARY_MATH[node.op_type]
    return [emit_map(ctx, [x], x.dtype, lambda s, a: s.unary(op_cls, a[0]))]


def _unary(ctx: ImportContext, node: Node, fn: Callable[[Scalars, SSAValue, np.dtype], SSAValue],
           float_only: bool = True) -> list[Tensor]:
    x = node.x(0)
    if float_only:
        _float_only(x)
    return [emit_map(ctx, [x], x.dtype, lambda s, a: fn(s, a[0], x.dtype))]


@converter("Relu")
def _relu(ctx: ImportContext, node: Node) -> list[Tensor]:
    return _unary(ctx, node, lambda s, x, dt: s.max(x, s.const(0, dt), dt), float_only=False)


@converter("Neg")
def _neg(ctx: ImportContext, node: Node) -> list[Tensor]:
    return _unary(ctx, node, lambda s, x, dt: s.neg(x, dt), float_only=False)


@converter("Abs")
def _abs(ctx: ImportContext, node: Node) -> list[Tensor]:
    return _unary(ctx, node, lambda s, x, dt: s.abs(x, dt), float_only=False)


@converter("Sign")
def _sign(ctx: ImportContext, node: Node) -> list[Tensor]:
    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        zero, one = s.const(0, dt), s.const(1, dt)
        pos = s.select(s.cmp("gt", x, zero, dt), one, zero)
        if is_unsigned(dt):
            return pos
        return s.select(s.cmp("lt", x, zero, dt), s.const(-1, dt), pos)

    return _unary(ctx, node, build, float_only=False)


@converter("Reciprocal")
def _reciprocal(ctx: ImportContext, node: Node) -> list[Tensor]:
    return _unary(ctx, node, lambda s, x, dt: s.div(s.const(1.0, dt), x, dt))


@converter("Sigmoid")
def _sigmoid(ctx: ImportContext, node: Node) -> list[Tensor]:
    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        e = s.unary(math.ExpOp, s.neg(x, dt))
        one = s.const(1.0, dt)
        return s.div(one, s.add(one, e, dt), dt)

    return _unary(ctx, node, build)


@converter("Swish")
def _swish(ctx: ImportContext, node: Node) -> list[Tensor]:
    alpha = node.attr("alpha", 1.0)

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        e = s.unary(math.ExpOp, s.neg(s.mul(x, s.const(alpha, dt), dt), dt))
        return s.div(x, s.add(s.const(1.0, dt), e, dt), dt)

    return _unary(ctx, node, build)


@converter("LeakyRelu")
def _leaky_relu(ctx: ImportContext, node: Node) -> list[Tensor]:
    alpha = node.attr("alpha", 0.01)

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        neg = s.cmp("lt", x, s.const(0.0, dt), dt)
        return s.select(neg, s.mul(x, s.const(alpha, dt), dt), x)

    return _unary(ctx, node, build)


@converter("ThresholdedRelu")
def _thresholded_relu(ctx: ImportContext, node: Node) -> list[Tensor]:
    alpha = node.attr("alpha", 1.0)

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        return s.select(s.cmp("gt", x, s.const(alpha, dt), dt), x, s.const(0.0, dt))

    return _unary(ctx, node, build)


@converter("Elu")
def _elu(ctx: ImportContext, node: Node) -> list[Tensor]:
    alpha = node.attr("alpha", 1.0)

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        em1 = s.sub(s.unary(math.ExpOp, x), s.const(1.0, dt), dt)
        neg = s.cmp("lt", x, s.const(0.0, dt), dt)
        return s.select(neg, s.mul(em1, s.const(alpha, dt), dt), x)

    return _unary(ctx, node, build)


@converter("Celu")
def _celu(ctx: ImportContext, node: Node) -> list[Tensor]:
    alpha = node.attr("alpha", 1.0)

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        # max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
        a = s.const(alpha, dt)
        em1 = s.sub(s.unary(math.ExpOp, s.div(x, a, dt)), s.const(1.0, dt), dt)
        zero = s.const(0.0, dt)
        return s.add(s.max(x, zero, dt), s.min(s.mul(a, em1, dt), zero, dt), dt)

    return _unary(ctx, node, build)


@converter("Selu")
def _selu(ctx: ImportContext, node: Node) -> list[Tensor]:
    alpha = node.attr("alpha", 1.67326319217681884765625)
    gamma = node.attr("gamma", 1.05070102214813232421875)

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        a = s.const(alpha, dt)
        neg = s.sub(s.mul(a, s.unary(math.ExpOp, x), dt), a, dt)
        pos = s.cmp("gt", x, s.const(0.0, dt), dt)
        return s.mul(s.const(gamma, dt), s.select(pos, x, neg), dt)

    return _unary(ctx, node, build)


def _softplus(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
    # log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))
    t = s.unary(math.Log1pOp, s.unary(math.ExpOp, s.neg(s.abs(x, dt), dt)))
    return s.add(s.max(x, s.const(0.0, dt), dt), t, dt)


@converter("Softplus")
def _softplus_op(ctx: ImportContext, node: Node) -> list[Tensor]:
    return _unary(ctx, node, _softplus)


@converter("Mish")
def _mish(ctx: ImportContext, node: Node) -> list[Tensor]:
    return _unary(ctx, node, lambda s, x, dt: s.mul(x, s.unary(math.TanhOp, _softplus(s, x, dt)), dt))


@converter("Softsign")
def _softsign(ctx: ImportContext, node: Node) -> list[Tensor]:
    return _unary(ctx, node, lambda s, x, dt: s.div(x, s.add(s.const(1.0, dt), s.abs(x, dt), dt), dt))


@converter("HardSigmoid")
def _hard_sigmoid(ctx: ImportContext, node: Node) -> list[Tensor]:
    alpha, beta = node.attr("alpha", 0.2), node.attr("beta", 0.5)

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        y = s.add(s.mul(x, s.const(alpha, dt), dt), s.const(beta, dt), dt)
        return s.clamp01(y, dt)

    return _unary(ctx, node, build)


@converter("HardSwish")
def _hard_swish(ctx: ImportContext, node: Node) -> list[Tensor]:
    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        y = s.add(s.mul(x, s.const(1.0 / 6.0, dt), dt), s.const(0.5, dt), dt)
        return s.mul(x, s.clamp01(y, dt), dt)

    return _unary(ctx, node, build)


@converter("Shrink")
def _shrink(ctx: ImportContext, node: Node) -> list[Tensor]:
    lambd, bias = node.attr("lambd", 0.5), node.attr("bias", 0.0)

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        zero = s.const(0, dt)
        lo = s.cmp("lt", x, s.const(-lambd, dt), dt)
        hi = s.cmp("gt", x, s.const(lambd, dt), dt)
        b = s.const(bias, dt)
        return s.select(lo, s.add(x, b, dt), s.select(hi, s.sub(x, b, dt), zero))

    return _unary(ctx, node, build, float_only=False)


@converter("Gelu", check=lambda n, o: [] if attr_of(n, "approximate", "none") in ("none", "tanh")
           else [f"Gelu approximate={attr_of(n, 'approximate')!r} is not supported"])
def _gelu(ctx: ImportContext, node: Node) -> list[Tensor]:
    tanh = node.attr("approximate", "none") == "tanh"

    def build(s: Scalars, x: SSAValue, dt: np.dtype) -> SSAValue:
        half = s.const(0.5, dt)
        if tanh:
            x3 = s.mul(s.mul(x, x, dt), x, dt)
            inner = s.add(x, s.mul(s.const(0.044715, dt), x3, dt), dt)
            t = s.unary(math.TanhOp, s.mul(s.const(pymath.sqrt(2.0 / pymath.pi), dt), inner, dt))
        else:
            t = s.unary(math.ErfOp, s.mul(x, s.const(1.0 / pymath.sqrt(2.0), dt), dt))
        return s.mul(s.mul(half, x, dt), s.add(s.const(1.0, dt), t, dt), dt)

    return _unary(ctx, node, build)


@converter("IsNaN")
def _isnan(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    _float_only(x)
    return [emit_map(ctx, [x], np.dtype(np.bool_), lambda s, a: s.cmp("ne", a[0], a[0], x.dtype))]


@converter("IsInf")
def _isinf(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    _float_only(x)
    pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)

    def build(s: Scalars, a: list[SSAValue]) -> SSAValue:
        p = s.cmp("eq", a[0], s.const(np.inf, x.dtype), x.dtype)
        n = s.cmp("eq", a[0], s.const(-np.inf, x.dtype), x.dtype)
        if pos and neg:
            return s.max(p, n, np.dtype(np.bool_))
        if pos:
            return p
        if neg:
            return n
        return s.const(False, np.dtype(np.bool_))

    return [emit_map(ctx, [x], np.dtype(np.bool_), build)]


# -- clip ------------------------------------------------------------------------------


@converter("Clip")
def _clip(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    if node.opset < 11:
        lo = node.attr("min")
        hi = node.attr("max")
        bounds = [None if v is None else Tensor.constant(np.array(v, x.dtype)) for v in (lo, hi)]
    else:
        bounds = [node.input(1), node.input(2)]
    operands = [x] + [b for b in bounds if b is not None]

    def build(s: Scalars, a: list[SSAValue]) -> SSAValue:
        y, k = a[0], 1
        if bounds[0] is not None:
            y, k = s.max(y, a[k], x.dtype), k + 1
        if bounds[1] is not None:
            y = s.min(y, a[k], x.dtype)
        return y

    return [emit_map(ctx, operands, x.dtype, build, out_shape=x.shape)]


# -- binary and variadic arithmetic ------------------------------------------------------


def _same_dtype(node: Node, ts: Sequence[Tensor]) -> np.dtype:
    dts = {t.dtype for t in ts}
    if len(dts) != 1:
        raise Unsupported(f"inputs have different element types {sorted(map(str, dts))}")
    return ts[0].dtype


_BINARY: dict[str, str] = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


@converter(*_BINARY)
def _binary(ctx: ImportContext, node: Node) -> list[Tensor]:
    a, b = node.x(0), node.x(1)
    dt = _same_dtype(node, [a, b])
    method = _BINARY[node.op_type]
    return [emit_map(ctx, [a, b], dt, lambda s, v: getattr(s, method)(v[0], v[1], dt))]


@converter("PRelu")
def _prelu(ctx: ImportContext, node: Node) -> list[Tensor]:
    x, slope = node.x(0), node.x(1)
    dt = _same_dtype(node, [x, slope])

    def build(s: Scalars, v: list[SSAValue]) -> SSAValue:
        neg = s.cmp("lt", v[0], s.const(0, dt), dt)
        return s.select(neg, s.mul(v[0], v[1], dt), v[0])

    return [emit_map(ctx, [x, slope], dt, build, out_shape=x.shape)]


@converter("Mod")
def _mod(ctx: ImportContext, node: Node) -> list[Tensor]:
    a, b = node.x(0), node.x(1)
    dt = _same_dtype(node, [a, b])
    fmod = node.attr("fmod", 0)

    def build(s: Scalars, v: list[SSAValue]) -> SSAValue:
        r = s.rem(v[0], v[1], dt)
        if fmod or is_unsigned(dt):
            return r
        # Python-style (numpy.mod): the result takes the divisor's sign
        zero = s.const(0, dt)
        nonzero = s.cmp("ne", r, zero, dt)
        differ = s.cmp("ne", s.cmp("lt", r, zero, dt), s.cmp("lt", v[1], zero, dt), np.dtype(np.bool_))
        fixed = s.select(s.min(nonzero, differ, np.dtype(np.bool_)), s.add(r, v[1], dt), r)
        if not is_float(dt):
            return fixed
        # a zero result is a zero of the divisor's sign (0 mod -2 = -0.0, -0 mod 2 = 0.0)
        signed_zero = s.select(s.cmp("lt", v[1], zero, dt), s.const(-0.0, dt), zero)
        return s.select(s.cmp("eq", r, zero, dt), signed_zero, fixed)

    return [emit_map(ctx, [a, b], dt, build)]


@converter("Pow")
def _pow(ctx: ImportContext, node: Node) -> list[Tensor]:
    base, expo = node.x(0), node.x(1)
    bt, et = base.dtype, expo.dtype
    # Integer results are computed in f64 (exact below 2**53) and truncated back.
    work = bt if is_float(bt) else np.dtype(np.float64)

    def build(s: Scalars, v: list[SSAValue]) -> SSAValue:
        b = s.cast(v[0], bt, work)
        e = s.cast(v[1], et, work)
        return s.cast(s.emit(math.PowFOp(b, e)), work, bt)

    return [emit_map(ctx, [base, expo], bt, build)]


def _variadic(ctx: ImportContext, node: Node, method: str) -> Tensor:
    ts = [t for t in node.inputs if t is not None]
    dt = _same_dtype(node, ts)

    def build(s: Scalars, v: list[SSAValue]) -> SSAValue:
        acc = v[0]
        for x in v[1:]:
            acc = getattr(s, method)(acc, x, dt)
        if node.op_type == "Mean":
            acc = s.div(acc, s.const(len(v), dt), dt)
        return acc

    return emit_map(ctx, ts, dt, build)


@converter("Sum", "Mean")
def _sum(ctx: ImportContext, node: Node) -> list[Tensor]:
    return [_variadic(ctx, node, "add")]


@converter("Max")
def _max(ctx: ImportContext, node: Node) -> list[Tensor]:
    return [_variadic(ctx, node, "max")]


@converter("Min")
def _min(ctx: ImportContext, node: Node) -> list[Tensor]:
    return [_variadic(ctx, node, "min")]


# -- comparisons and logic -------------------------------------------------------------

_COMPARE = {"Equal": "eq", "Less": "lt", "LessOrEqual": "le", "Greater": "gt", "GreaterOrEqual": "ge"}


@converter(*_COMPARE)
def _compare(ctx: ImportContext, node: Node) -> list[Tensor]:
    a, b = node.x(0), node.x(1)
    dt = _same_dtype(node, [a, b])
    pred = _COMPARE[node.op_type]
    return [emit_map(ctx, [a, b], np.dtype(np.bool_), lambda s, v: s.cmp(pred, v[0], v[1], dt))]


_LOGIC = {"And": "min", "Or": "max", "Xor": "add"}
_BOOL = np.dtype(np.bool_)


@converter(*_LOGIC)
def _logic(ctx: ImportContext, node: Node) -> list[Tensor]:
    a, b = node.x(0), node.x(1)
    method = _LOGIC[node.op_type]
    return [emit_map(ctx, [a, b], _BOOL, lambda s, v: getattr(s, method)(v[0], v[1], _BOOL))]


@converter("Not")
def _not(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    return [emit_map(ctx, [x], _BOOL, lambda s, v: s.add(v[0], s.const(True, _BOOL), _BOOL))]


@converter("Where")
def _where(ctx: ImportContext, node: Node) -> list[Tensor]:
    c, a, b = node.x(0), node.x(1), node.x(2)
    if not is_bool(c.dtype):
        raise Unsupported(f"the condition must be bool, not {c.dtype}")
    dt = _same_dtype(node, [a, b])
    return [emit_map(ctx, [c, a, b], dt, lambda s, v: s.select(v[0], v[1], v[2]))]


# -- casts ----------------------------------------------------------------------------


def _check_cast(node: NodeProto, opset: int) -> list[str]:
    to = attr_of(node, "to")
    if node.op_type == "Cast" and isinstance(to, int) and numpy_dtype(to) is None:
        return [f"Cast to {onnx_type_name(to)} is not supported"]
    return []


def _cast_tensor(ctx: ImportContext, x: Tensor, dst: np.dtype) -> Tensor:
    if x.dtype == dst:
        return x
    return emit_map(ctx, [x], dst, lambda s, v: s.cast(v[0], x.dtype, dst))


@converter("Cast", check=_check_cast)
def _cast(ctx: ImportContext, node: Node) -> list[Tensor]:
    dst = numpy_dtype(node.attr("to"))
    assert dst is not None
    return [_cast_tensor(ctx, node.x(0), dst)]


@converter("CastLike")
def _cast_like(ctx: ImportContext, node: Node) -> list[Tensor]:
    return [_cast_tensor(ctx, node.x(0), node.x(1).dtype)]
