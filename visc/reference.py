"""A numpy interpreter of vision ops: the semantic oracle of the dialect.

`eval_op` gives one op's results from its operand values, exactly as the op docstrings in
`visc.dialects.vision` define them; constant evaluation and the buffer interpreter build on
it. `evaluate` runs a whole stage-1 module. Map and epilogue bodies are interpreted op by
op, vectorized over whole arrays (operands broadcast with numpy rules).

Values are held in canonical numpy dtypes: float16/32/64, bool for i1, and *signed* integers
for signless iN; ops with unsigned semantics (divui, cmpi ult, uitofp, ...) reinterpret the
bits. `evaluate` returns outputs in the dtypes recorded in `vision.output_dtypes`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue

from visc.dialects import vision
from visc.dialects.vision import get_float, get_floats, get_int, get_ints, get_str
from visc.errors import InputShapeError
from visc.reference_detection import RULES as DETECTION_RULES
from visc.reference_indexing import RULES as INDEXING_RULES
from visc.reference_norm import RULES as NORM_RULES

# --------------------------------------------------------------------------- dtypes


def _elt(value: SSAValue) -> Attribute:
    t = value.type
    if isinstance(t, TensorType | MemRefType):
        return t.element_type
    return t


def canonical_dtype(elt: Attribute) -> np.dtype:
    """The numpy dtype holding values of an IR element type (signed for signless integers)."""
    if isinstance(elt, Float32Type):
        return np.dtype(np.float32)
    if isinstance(elt, Float64Type):
        return np.dtype(np.float64)
    if isinstance(elt, Float16Type):
        return np.dtype(np.float16)
    if isinstance(elt, IntegerType) and elt.width.data in (1, 8, 16, 32, 64):
        return np.dtype(np.bool_) if elt.width.data == 1 else np.dtype(f"int{elt.width.data}")
    raise TypeError(f"the reference interpreter has no numpy dtype for {elt}")


def dtype_of(value: SSAValue) -> np.dtype:
    """The canonical numpy dtype of a tensor/memref/scalar value."""
    return canonical_dtype(_elt(value))


def _unsigned(dt: np.dtype) -> np.dtype:
    return np.dtype(f"uint{8 * dt.itemsize}")


def canonical(array: np.ndarray | np.generic | float | int | bool, dt: np.dtype) -> np.ndarray:
    """`array` in the canonical dtype `dt`: a bit reinterpretation between signed and unsigned
    integers of one width, a value conversion otherwise."""
    a = np.asarray(array)
    if a.dtype == dt:
        return a
    if a.dtype.kind in "iu" and dt.kind in "iu" and a.dtype.itemsize == dt.itemsize:
        return a.view(dt)
    return a.astype(dt)


def _as_unsigned(a: np.ndarray) -> np.ndarray:
    return a if a.dtype.kind in "bu" else a.view(_unsigned(a.dtype))


# --------------------------------------------------------------------------- bodies


def _cmpf(pred: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    unordered = np.isnan(a) | np.isnan(b)
    base = [None, np.equal, np.greater, np.greater_equal, np.less, np.less_equal, np.not_equal]
    if pred == 0:
        return np.zeros(np.broadcast_shapes(a.shape, b.shape), bool)
    if pred == 15:
        return np.ones(np.broadcast_shapes(a.shape, b.shape), bool)
    if pred == 7:
        return ~unordered
    if pred == 14:
        return unordered
    if pred < 7:
        return base[pred](a, b) & ~unordered  # type: ignore[misc]
    return base[pred - 7](a, b) | unordered  # type: ignore[misc]


def _cmpi(pred: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if pred >= 6:
        a, b = _as_unsigned(a), _as_unsigned(b)
    fns = [np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal]
    return fns[pred if pred < 2 else (pred - 2) % 4 + 2](a, b)


def _div_trunc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    safe = np.where(b == 0, 1, b)
    q = a // safe
    fix = (a % safe != 0) & ((a < 0) != (safe < 0))
    return np.where(b == 0, 0, q + fix).astype(a.dtype)


def _rem_trunc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, 0, np.fmod(a, safe)).astype(a.dtype)


def _unsigned_op(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ua, ub = _as_unsigned(a), _as_unsigned(b)
        return np.asarray(fn(ua, ub)).astype(ua.dtype).view(a.dtype)

    return run


def _udiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b == 0, 0, a // np.where(b == 0, 1, b))


def _urem(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b == 0, 0, a % np.where(b == 0, 1, b))


def _erf(a: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(a.astype(np.float64)).astype(a.dtype)


def _round_half_away(a: np.ndarray) -> np.ndarray:
    return (np.sign(a) * np.floor(np.abs(a) + a.dtype.type(0.5))).astype(a.dtype)


def _ipowi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    neg = b < 0
    r = np.power(a, np.where(neg, 0, b)).astype(a.dtype)
    # negative exponents: 1 for base 1, +-1 for base -1, 0 otherwise (integer division)
    inv = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0)).astype(a.dtype)
    return np.where(neg, inv, r)


def _ext_signed(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    if a.dtype == np.bool_:
        return np.where(a, -1, 0).astype(dt)
    return a.astype(dt)


def _ext_unsigned(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.astype(dt)
    return _as_unsigned(a).astype(_unsigned(dt)).view(dt)


def _trunc_int(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    if dt == np.bool_:
        return (a & 1).astype(bool)
    return a.astype(dt)


def _sitofp(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    if a.dtype == np.bool_:
        return np.where(a, -1, 0).astype(dt)
    return a.astype(dt)


def _to_float(a: np.ndarray, dt: np.dtype, unsigned: bool) -> np.ndarray:
    return (_as_unsigned(a) if unsigned else a).astype(dt)


def _fp_to_int(a: np.ndarray, dt: np.dtype, unsigned: bool) -> np.ndarray:
    if dt == np.bool_:
        return a != 0
    t = np.trunc(a)
    if unsigned:
        return t.astype(_unsigned(dt)).view(dt)
    return t.astype(dt)


_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "arith.addf": np.add,
    "arith.subf": np.subtract,
    "arith.mulf": np.multiply,
    "arith.divf": np.divide,
    "arith.maximumf": np.maximum,
    "arith.minimumf": np.minimum,
    "arith.maxnumf": np.fmax,
    "arith.minnumf": np.fmin,
    "arith.remf": np.fmod,
    "arith.addi": lambda a, b: (a ^ b) if a.dtype == np.bool_ else a + b,
    "arith.subi": lambda a, b: (a ^ b) if a.dtype == np.bool_ else a - b,
    "arith.muli": lambda a, b: (a & b) if a.dtype == np.bool_ else a * b,
    "arith.divsi": _div_trunc,
    "arith.remsi": _rem_trunc,
    "arith.floordivsi": lambda a, b: np.where(b == 0, 0, a // np.where(b == 0, 1, b)),
    "arith.ceildivsi": lambda a, b: np.where(b == 0, 0, -(-a // np.where(b == 0, 1, b))),
    "arith.divui": _unsigned_op(_udiv),
    "arith.remui": _unsigned_op(_urem),
    "arith.ceildivui": _unsigned_op(lambda a, b: np.where(b == 0, 0, -(-a // np.where(b == 0, 1, b)))),
    "arith.maxsi": np.maximum,
    "arith.minsi": np.minimum,
    "arith.maxui": _unsigned_op(np.maximum),
    "arith.minui": _unsigned_op(np.minimum),
    "arith.andi": np.bitwise_and,
    "arith.ori": np.bitwise_or,
    "arith.xori": np.bitwise_xor,
    "arith.shli": np.left_shift,
    "arith.shrsi": np.right_shift,
    "arith.shrui": _unsigned_op(np.right_shift),
    "math.powf": np.power,
    "math.atan2": np.arctan2,
    "math.copysign": np.copysign,
    "math.ipowi": _ipowi,
    "math.fpowi": lambda a, b: np.power(a, b.astype(a.dtype)),
}

_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "arith.negf": np.negative,
    "math.absf": np.abs,
    "math.absi": np.abs,
    "math.exp": np.exp,
    "math.exp2": np.exp2,
    "math.expm1": np.expm1,
    "math.log": np.log,
    "math.log2": np.log2,
    "math.log10": np.log10,
    "math.log1p": np.log1p,
    "math.sqrt": np.sqrt,
    "math.rsqrt": lambda a: a.dtype.type(1) / np.sqrt(a),
    "math.cbrt": np.cbrt,
    "math.tanh": np.tanh,
    "math.erf": _erf,
    "math.floor": np.floor,
    "math.ceil": np.ceil,
    "math.trunc": np.trunc,
    "math.round": _round_half_away,
    "math.roundeven": np.rint,
    "math.sin": np.sin,
    "math.cos": np.cos,
    "math.tan": np.tan,
    "math.asin": np.arcsin,
    "math.acos": np.arccos,
    "math.atan": np.arctan,
    "math.sinh": np.sinh,
    "math.cosh": np.cosh,
    "math.asinh": np.arcsinh,
    "math.acosh": np.arccosh,
    "math.atanh": np.arctanh,
}

_CASTS: dict[str, Callable[[np.ndarray, np.dtype], np.ndarray]] = {
    "arith.sitofp": _sitofp,
    "arith.uitofp": lambda a, dt: _to_float(a, dt, True),
    "arith.fptosi": lambda a, dt: _fp_to_int(a, dt, False),
    "arith.fptoui": lambda a, dt: _fp_to_int(a, dt, True),
    "arith.extf": lambda a, dt: a.astype(dt),
    "arith.truncf": lambda a, dt: a.astype(dt),
    "arith.extsi": _ext_signed,
    "arith.extui": _ext_unsigned,
    "arith.trunci": _trunc_int,
    "arith.index_cast": lambda a, dt: a.astype(dt),
    "arith.bitcast": lambda a, dt: a.view(dt),
}


def _constant(op: Operation) -> np.ndarray:
    value = op.properties.get("value", op.attributes.get("value"))
    dt = dtype_of(op.results[0])
    if isinstance(value, FloatAttr):
        return np.array(float(value.value.data), dtype=dt)
    if isinstance(value, IntegerAttr):
        v = int(value.value.data)
        if dt == np.bool_:
            return np.array(bool(v & 1))
        return np.array(v & ((1 << (8 * dt.itemsize)) - 1), dtype=_unsigned(dt)).view(dt)
    if isinstance(value, DenseIntOrFPElementsAttr):
        shape = value.get_shape() or ()
        return np.array(value.get_values(), dtype=dt).reshape(shape)
    raise NotImplementedError(f"arith.constant with value {value}")


def eval_block(block: Block, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Interpret a body block on whole arrays; returns the yielded values."""
    env: dict[SSAValue, np.ndarray] = {}
    for arg, value in zip(block.args, args, strict=True):
        env[arg] = canonical(value, dtype_of(arg))
    with np.errstate(all="ignore"):
        for op in block.ops:
            if isinstance(op, vision.YieldOp):
                return [env[v] for v in op.values]
            name = op.name
            vals = [env[v] for v in op.operands]
            if isinstance(op, arith.ConstantOp):
                out = _constant(op)
            elif name in _BINARY:
                out = _BINARY[name](vals[0], vals[1])
            elif name in _UNARY:
                out = _UNARY[name](vals[0])
            elif name in _CASTS:
                out = _CASTS[name](vals[0], dtype_of(op.results[0]))
            elif isinstance(op, arith.CmpfOp):
                out = _cmpf(int(op.predicate.value.data), vals[0], vals[1])
            elif isinstance(op, arith.CmpiOp):
                out = _cmpi(int(op.predicate.value.data), vals[0], vals[1])
            elif isinstance(op, arith.SelectOp):
                out = np.where(vals[0], vals[1], vals[2])
            elif name == "math.fma":
                out = vals[0] * vals[1] + vals[2]
            else:
                raise NotImplementedError(f"the reference interpreter has no rule for {name} in a body")
            env[op.results[0]] = canonical(out, dtype_of(op.results[0]))
    raise ValueError("body block has no vision.yield")


def _apply_body(op: vision.VisionOp, first: np.ndarray, fuse: Sequence[np.ndarray]) -> np.ndarray:
    """The epilogue of conv2d/matmul: body(acc, *fuse) if there is a body."""
    if not op.body.blocks:
        return first
    (out,) = eval_block(op.body.block, [first, *fuse])
    return out


# --------------------------------------------------------------------------- ops


def _out(op: vision.VisionOp, i: int = 0) -> tuple[tuple[int, ...], np.dtype]:
    dest = op.dests[i]
    return vision.shape_of(dest), dtype_of(dest)


def _finish(op: vision.VisionOp, value: np.ndarray, i: int = 0) -> np.ndarray:
    shape, dt = _out(op, i)
    with np.errstate(all="ignore"):
        a = canonical(value, dt)
    if a.shape == shape and a.flags.c_contiguous:
        return a
    # np.array, not np.ascontiguousarray: the latter turns 0-d results into 1-d ones
    return np.array(np.broadcast_to(a, shape), order="C")


def _acc_dtype(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dt == np.float16 else dt


def _conv2d(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x, w = args[0], args[1]
    if w.ndim == 5:  # packed_oc: (O/V, KH, KW, C/g, V) -> OIHW
        w = w.transpose(0, 4, 3, 1, 2).reshape(-1, w.shape[3], *w.shape[1:3])
    oh, ow = _out(op)[0][2:]
    sh, sw = get_ints(op, "strides")
    pt, pl, _pb, _pr = get_ints(op, "pads")
    dh, dw = get_ints(op, "dilations")
    g = get_int(op, "groups")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    acc_t = _acc_dtype(x.dtype)
    need_h, need_w = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    xp = np.zeros((n, c, max(need_h, pt + h), max(need_w, pl + wd)), acc_t)
    xp[:, :, pt:pt + h, pl:pl + wd] = x
    xg = xp.reshape(n, g, cg, *xp.shape[2:])
    wg = w.astype(acc_t).reshape(g, o // g, cg, kh, kw)
    acc = np.zeros((n, g, o // g, oh * ow), acc_t)
    for i in range(kh):
        for j in range(kw):
            xs = xg[:, :, :, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw]
            acc += np.matmul(wg[:, :, :, i, j], xs.reshape(n, g, cg, oh * ow))
    y = acc.reshape(n, o, oh, ow)
    if len(args) > 2:
        y = y + args[2].astype(acc_t).reshape(1, o, 1, 1)
    return _apply_body(op, y.astype(x.dtype), fuse)


def _conv2d_transpose(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x, w = args[0], args[1]
    (oh, ow) = _out(op)[0][2:]
    sh, sw = get_ints(op, "strides")
    pt, pl, _pb, _pr = get_ints(op, "pads")
    dh, dw = get_ints(op, "dilations")
    g = get_int(op, "groups")
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    acc_t = _acc_dtype(x.dtype)
    full_h, full_w = (h - 1) * sh + (kh - 1) * dh + 1, (wd - 1) * sw + (kw - 1) * dw + 1
    lo_h, lo_w = min(0, pt), min(0, pl)
    canvas = np.zeros((n, g * og, max(full_h, pt + oh) - lo_h, max(full_w, pl + ow) - lo_w), acc_t)
    xg = x.astype(acc_t).reshape(n, g, c // g, h * wd)
    wg = w.astype(acc_t).reshape(g, c // g, og, kh, kw)
    for i in range(kh):
        for j in range(kw):
            part = np.matmul(np.swapaxes(wg[:, :, :, i, j], 1, 2), xg).reshape(n, g * og, h, wd)
            r0, c0 = i * dh - lo_h, j * dw - lo_w
            canvas[:, :, r0: r0 + (h - 1) * sh + 1: sh, c0: c0 + (wd - 1) * sw + 1: sw] += part
    y = canvas[:, :, pt - lo_h: pt - lo_h + oh, pl - lo_w: pl - lo_w + ow]
    if len(args) > 2:
        y = y + args[2].astype(acc_t).reshape(1, -1, 1, 1)
    return _apply_body(op, y.astype(x.dtype), fuse)


def _pool2d(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    out_shape, dt = _out(op)
    kind = get_str(op, "kind")
    kernel = get_ints(op, "kernel")
    nd = len(kernel)
    strides = get_ints(op, "strides") if "strides" in op.attributes else (1,) * nd
    pads = get_ints(op, "pads") if "pads" in op.attributes else (0,) * (2 * nd)
    dil = get_ints(op, "dilations") if "dilations" in op.attributes else (1,) * nd
    spatial, outs = x.shape[2:], out_shape[2:]
    work_t = _acc_dtype(x.dtype) if kind != "max" else x.dtype
    if kind == "max":  # NaN taps are skipped (fmax; NaN is its identity), as onnxruntime skips them
        fill = np.nan if x.dtype.kind == "f" else np.iinfo(x.dtype).min if x.dtype.kind in "iu" else False
    else:
        fill = 0
    padded_shape = [max((o - 1) * s + (k - 1) * d + 1, p + n)
                    for o, s, k, d, p, n in zip(outs, strides, kernel, dil, pads[:nd], spatial, strict=True)]
    xp = np.full((*x.shape[:2], *padded_shape), fill, dtype=work_t)
    xp[(slice(None), slice(None), *[slice(p, p + n) for p, n in zip(pads[:nd], spatial, strict=True)])] = x
    if kind == "lp":
        xp = np.abs(xp) ** get_int(op, "p", 2)
    acc: np.ndarray | None = None
    for taps in itertools.product(*[range(k) for k in kernel]):
        sl = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(taps, dil, outs, strides, strict=True))
        v = xp[(slice(None), slice(None), *sl)]
        if acc is None:
            acc = v.copy()
        elif kind == "max":
            acc = np.fmax(acc, v)
        else:
            acc = acc + v
    assert acc is not None
    if kind == "avg":
        include = get_int(op, "count_include_pad", 0)
        counts: np.ndarray = np.ones((), dtype=np.int64)
        for i in range(nd):
            lo, size = pads[i], spatial[i]
            taps = np.arange(outs[i])[:, None] * strides[i] - lo + np.arange(kernel[i])[None, :] * dil[i]
            if include:
                valid = (taps >= -lo) & (taps < size + pads[nd + i])
            else:
                valid = (taps >= 0) & (taps < size)
            counts = np.multiply.outer(counts, valid.sum(axis=1))
        acc = acc / np.maximum(counts, 1).astype(work_t)
    elif kind == "lp":
        acc = acc ** (1.0 / get_int(op, "p", 2))
    return acc.astype(dt)


def _global_pool(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    axes = tuple(range(2, x.ndim))
    if get_str(op, "kind") == "max":  # NaN skipped, as in max pooling
        return np.fmax.reduce(x.reshape(*x.shape[:2], -1), axis=2).reshape(*x.shape[:2], *[1] * len(axes))
    return x.astype(_acc_dtype(x.dtype)).mean(axis=axes, keepdims=True).astype(x.dtype)


def _batch_norm(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x, scale, bias, mean, var = args
    eps = get_float(op, "epsilon", 1e-5)
    work = np.result_type(_acc_dtype(x.dtype), scale.dtype)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    s = (scale.astype(work) / np.sqrt(var.astype(work) + work.type(eps))).reshape(shape)
    y = (x.astype(work) - mean.astype(work).reshape(shape)) * s + bias.astype(work).reshape(shape)
    return y.astype(x.dtype)


def _lrn(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    work = _acc_dtype(x.dtype)
    size = get_int(op, "size")
    alpha, beta, bias = get_float(op, "alpha", 1e-4), get_float(op, "beta", 0.75), get_float(op, "bias", 1.0)
    sq = x.astype(work) ** 2
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    c = x.shape[1]
    csum = np.concatenate([np.zeros_like(sq[:, :1]), np.cumsum(sq, axis=1)], axis=1)
    lo = np.clip(np.arange(c) - before, 0, c)
    hi = np.clip(np.arange(c) + after + 1, 0, c)
    window = np.take(csum, hi, axis=1) - np.take(csum, lo, axis=1)
    y = x.astype(work) / (work.type(bias) + work.type(alpha / size) * window) ** work.type(beta)
    return y.astype(x.dtype)


def _matmul(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    a, b = args[0], args[1]
    if get_int(op, "transpose_a", 0):
        a = np.swapaxes(a, -1, -2)
    if get_int(op, "transpose_b", 0):
        b = np.swapaxes(b, -1, -2)
    work = _acc_dtype(a.dtype)
    y = np.matmul(a.astype(work), b.astype(work))
    alpha, beta = get_float(op, "alpha", 1.0), get_float(op, "beta", 1.0)
    if alpha != 1.0:
        y = y * work.type(alpha)
    if len(args) > 2:
        c = args[2].astype(work)
        y = y + (c if beta == 1.0 else c * work.type(beta))
    return _apply_body(op, y.astype(a.dtype), fuse)


def _map(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    (out,) = eval_block(op.body.block, args)
    return out


def _concat(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(args, axis=get_int(op, "axis"))


def _split(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> list[np.ndarray]:
    axis = get_int(op, "axis")
    sizes = [vision.shape_of(d)[axis] for d in op.dests]
    return np.split(args[0], np.cumsum(sizes)[:-1], axis=axis)


def _slice(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    shape, _ = _out(op)
    index = []
    for start, step, n in zip(get_ints(op, "starts"), get_ints(op, "steps"), shape, strict=True):
        if n == 0:
            index.append(slice(0, 0))
            continue
        stop = start + (n - 1) * step + (1 if step > 0 else -1)
        index.append(slice(start, None if stop < 0 else stop, step))
    return args[0][tuple(index)]


def _pad(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    pads = get_ints(op, "pads")
    r = x.ndim
    crop = tuple(slice(max(0, -pads[i]), x.shape[i] - max(0, -pads[i + r])) for i in range(r))
    x = x[crop]
    width = [(max(0, pads[i]), max(0, pads[i + r])) for i in range(r)]
    mode = get_str(op, "mode", "constant")
    if mode == "constant":
        value = get_float(op, "value", 0.0)
        with np.errstate(all="ignore"):
            if x.dtype.kind in "iu":  # wrap like a C integer conversion (200.0 -> i8 is -56)
                fill = np.array(int(value) & ((1 << (8 * x.dtype.itemsize)) - 1)).astype(np.uint64).astype(x.dtype)
            else:
                fill = np.array(value).astype(x.dtype)
        return np.pad(x, width, mode="constant", constant_values=fill)
    return np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])


def _reshape(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    return args[0].reshape(_out(op)[0])


def _transpose(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    return np.transpose(args[0], get_ints(op, "perm"))


def _softmax(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    axis = get_int(op, "axis")
    work = _acc_dtype(x.dtype)
    xs = x.astype(work)
    m = np.max(xs, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(xs - m)
    total = e.sum(axis=axis, keepdims=True)
    if isinstance(op, vision.LogSoftmaxOp):
        return (xs - m - np.log(total)).astype(x.dtype)
    return (e / total).astype(x.dtype)


def _reduce(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    shape, dt = _out(op)
    axes = tuple(get_ints(op, "axes"))
    kind = get_str(op, "kind")
    keep = len(shape) == x.ndim
    work = _acc_dtype(x.dtype) if x.dtype.kind == "f" else x.dtype
    xs = x.astype(work)
    if kind in ("max", "min"):
        if xs.dtype.kind == "f":
            init = -np.inf if kind == "max" else np.inf
        elif xs.dtype == np.bool_:
            init = kind == "min"
        else:
            info = np.iinfo(xs.dtype)
            init = info.min if kind == "max" else info.max
        fn = np.max if kind == "max" else np.min
        y = fn(xs, axis=axes, keepdims=keep, initial=init)
    elif kind == "sum":
        y = np.sum(xs, axis=axes, keepdims=keep, dtype=work)
    elif kind == "mean":
        y = np.sum(xs, axis=axes, keepdims=keep, dtype=work) / work.type(
            max(1, int(np.prod([x.shape[a] for a in axes]))))
    elif kind == "prod":
        y = np.prod(xs, axis=axes, keepdims=keep, dtype=work)
    elif kind == "sum_square":
        y = np.sum(xs * xs, axis=axes, keepdims=keep, dtype=work)
    elif kind == "l1":
        y = np.sum(np.abs(xs), axis=axes, keepdims=keep, dtype=work)
    elif kind == "l2":
        y = np.sqrt(np.sum(xs * xs, axis=axes, keepdims=keep, dtype=work))
    elif kind == "log_sum":
        y = np.log(np.sum(xs, axis=axes, keepdims=keep, dtype=work))
    elif kind == "log_sum_exp":
        m = np.max(xs, axis=axes, keepdims=True, initial=-np.inf)
        m = np.where(np.isfinite(m), m, 0)
        s = np.sum(np.exp(xs - m), axis=axes, keepdims=True)
        y = np.log(s) + m
        if not keep:
            y = np.squeeze(y, axis=axes)
    else:
        raise NotImplementedError(f"reduce kind {kind}")
    return np.asarray(y).reshape(shape).astype(dt)


def _gather(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    data, idx = args
    axis = get_int(op, "axis", 0)
    n = data.shape[axis]
    idx = idx.astype(np.int64)
    return np.take(data, np.where(idx < 0, idx + n, idx), axis=axis)


# -- resize ---------------------------------------------------------------------------------


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Weights of the 4 taps at offsets -1, 0, 1, 2 from floor(x), t = x - floor(x)."""
    def kern(d: np.ndarray) -> np.ndarray:
        d = np.abs(d)
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return np.where(d <= 1, near, np.where(d < 2, far, 0.0))

    return np.stack([kern(t + 1), kern(t), kern(1 - t), kern(2 - t)], axis=-1)


def _source_coords(coord: str, n_out: int, n_in: int, scale: float, roi: tuple[float, float]) -> np.ndarray:
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in
    if coord == "asymmetric":
        return y / scale
    if coord == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if coord == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale
    if coord == "pytorch_half_pixel":
        return (y + 0.5) / scale - 0.5 if n_out > 1 else np.full(n_out, -0.5)
    if coord == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
        return offset + (y + 0.5) / scale - 0.5
    # align_corners and tf_crop_and_resize divide by the integer output length, as the ONNX
    # spec and onnxruntime do (onnx's Python reference uses scale * n_in instead)
    if coord == "align_corners":
        return np.zeros(n_out) if n_out == 1 else y * (n_in - 1) / (n_out - 1)
    if coord == "tf_crop_and_resize":
        lo, hi = roi
        if n_out == 1:
            return np.full(n_out, (hi - lo) * (n_in - 1) / 2 + lo * (n_in - 1))
        return y * (hi - lo) * (n_in - 1) / (n_out - 1) + lo * (n_in - 1)
    raise NotImplementedError(f"coordinate mode {coord}")


def _nearest_index(x: np.ndarray, mode: str) -> np.ndarray:
    fl = np.floor(x)
    frac = x - fl
    if mode == "floor":
        pick = fl
    elif mode == "ceil":
        pick = np.ceil(x)
    elif mode == "round_prefer_ceil":
        pick = np.where(frac < 0.5, fl, fl + 1)
    else:  # round_prefer_floor
        pick = np.where(frac <= 0.5, fl, fl + 1)
    return pick.astype(np.int64)


def _resize_axis(data: np.ndarray, axis: int, n_out: int, scale: float, roi: tuple[float, float],
                 op: vision.VisionOp) -> np.ndarray:
    n_in = data.shape[axis]
    mode = get_str(op, "mode")
    coord = get_str(op, "coord_mode", "half_pixel")
    x = _source_coords(coord, n_out, n_in, scale, roi)
    if mode == "nearest":
        idx = _nearest_index(x, get_str(op, "nearest_mode", "round_prefer_floor"))[:, None]
        weights = np.ones((n_out, 1))
    else:
        base = np.floor(x).astype(np.int64)
        t = x - base
        if mode == "linear":
            idx = base[:, None] + np.arange(2)[None, :]
            weights = np.stack([1 - t, t], axis=-1)
        else:
            idx = base[:, None] + np.arange(-1, 3)[None, :]
            weights = _cubic_weights(t, get_float(op, "cubic_coeff_a", -0.75))
        if get_int(op, "exclude_outside", 0):
            weights = np.where((idx < 0) | (idx >= n_in), 0.0, weights)
            total = weights.sum(axis=1, keepdims=True)
            weights = weights / np.where(total == 0, 1.0, total)
    taken = np.take(data, np.clip(idx, 0, n_in - 1), axis=axis)  # (..., n_out, taps, ...)
    wshape = (1,) * axis + weights.shape + (1,) * (data.ndim - axis - 1)
    out = (taken * weights.reshape(wshape)).sum(axis=axis + 1)
    if coord == "tf_crop_and_resize":
        outside = (x < 0) | (x > n_in - 1)
        mshape = (1,) * axis + (n_out,) + (1,) * (data.ndim - axis - 1)
        out = np.where(outside.reshape(mshape), get_float(op, "extrapolation_value", 0.0), out)
    return out


def _resize(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    shape, dt = _out(op)
    scales = get_floats(op, "scales")
    r = x.ndim
    roi = get_floats(op, "roi") if "roi" in op.attributes else (0.0,) * r + (1.0,) * r
    y = x.astype(np.float64)
    crop = get_str(op, "coord_mode", "half_pixel") == "tf_crop_and_resize"
    for axis in range(r):
        same = shape[axis] == x.shape[axis] and scales[axis] == 1.0
        if same and (not crop or (roi[axis] == 0.0 and roi[axis + r] == 1.0)):
            continue
        y = _resize_axis(y, axis, shape[axis], scales[axis], (roi[axis], roi[axis + r]), op)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        y = np.clip(np.round(y) if get_str(op, "mode") != "nearest" else y, info.min, info.max)
    return y.astype(dt)


_OPS: dict[type[vision.VisionOp], Callable[..., np.ndarray | list[np.ndarray]]] = {
    vision.Conv2dOp: _conv2d,
    vision.Conv2dTransposeOp: _conv2d_transpose,
    vision.Pool2dOp: _pool2d,
    vision.GlobalPoolOp: _global_pool,
    vision.BatchNormOp: _batch_norm,
    vision.LrnOp: _lrn,
    vision.MatmulOp: _matmul,
    vision.MapOp: _map,
    vision.ConcatOp: _concat,
    vision.SplitOp: _split,
    vision.SliceOp: _slice,
    vision.PadOp: _pad,
    vision.ReshapeOp: _reshape,
    vision.TransposeOp: _transpose,
    vision.ResizeOp: _resize,
    vision.SoftmaxOp: _softmax,
    vision.LogSoftmaxOp: _softmax,
    vision.ReduceOp: _reduce,
    vision.GatherOp: _gather,
}
_OPS.update(DETECTION_RULES)
_OPS.update(INDEXING_RULES)
_OPS.update(NORM_RULES)


def _operand(value: np.ndarray, v: SSAValue) -> np.ndarray:
    """`value` in the canonical dtype and static shape of operand `v`."""
    a = canonical(value, dtype_of(v))
    shape = vision.shape_of(v)
    if a.shape != shape and a.size == int(np.prod(shape, dtype=np.int64)):
        a = a.reshape(shape)
    return a


def eval_op(op: vision.VisionOp, args: Sequence[np.ndarray], fuse: Sequence[np.ndarray] = ()) -> list[np.ndarray]:
    """The results of one vision compute op (tensor or bufferized form) on numpy values.

    `args` are the values of `op.ins`, `fuse` those of `op.fuse`; results come back in the
    shapes and canonical dtypes of the op's results (or `outs`)."""
    fn = _OPS.get(type(op))
    if fn is None:
        raise NotImplementedError(f"the reference interpreter has no rule for {op.name}")
    ins = [_operand(a, v) for a, v in zip(args, op.ins, strict=True)]
    extra = [_operand(a, v) for a, v in zip(fuse, op.fuse, strict=True)]
    with np.errstate(all="ignore"):
        out = fn(op, ins, extra)
    outs = out if isinstance(out, list) else [out]
    return [_finish(op, v, i) for i, v in enumerate(outs)]


# --------------------------------------------------------------------------- modules


def _entry(module: ModuleOp) -> func.FuncOp:
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    for f in funcs:
        if f.sym_name.data == "main":
            return f
    if len(funcs) == 1:
        return funcs[0]
    raise ValueError("the module has no func.func @main")


def _output_dtypes(f: func.FuncOp) -> list[np.dtype] | None:
    attr = f.attributes.get("vision.output_dtypes")
    if attr is None:
        return None
    return [np.dtype(s.data) for s in attr.data if isinstance(s, StringAttr)]  # type: ignore[attr-defined]


def output_counts(f: func.FuncOp) -> list[int] | None:
    """`vision.output_counts` of an entry function: per result, -1 or the index of the result
    (an i64 [1] tensor) holding how many rows of its first dim are valid (docs/ir.md)."""
    attr = f.attributes.get("vision.output_counts")
    if attr is None:
        return None
    return [int(v) for v in attr.get_values()]  # type: ignore[attr-defined]


def trim_counted(outs: list[np.ndarray], counts: Sequence[int] | None) -> list[np.ndarray]:
    """The outputs a caller sees: counted outputs trimmed to their count, count outputs dropped."""
    if not counts:
        return outs
    hidden = {c for c in counts if c >= 0}
    return [o[: int(np.asarray(outs[c]).reshape(-1)[0])] if c >= 0 else o
            for i, (o, c) in enumerate(zip(outs, counts, strict=True)) if i not in hidden]


def evaluate(module: ModuleOp, weights: Mapping[str, np.ndarray], inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run a stage-1 (tensor) module on numpy inputs; outputs in their ONNX dtypes."""
    f = _entry(module)
    block = f.body.block
    if len(inputs) != len(block.args):
        raise InputShapeError(f"the model takes {len(block.args)} inputs, got {len(inputs)}")
    env: dict[SSAValue, np.ndarray] = {}
    names = f.attributes.get("vision.input_names")
    for i, (arg, value) in enumerate(zip(block.args, inputs, strict=True)):
        a = np.asarray(value)
        want = vision.shape_of(arg)
        if a.shape != want:
            label = names.data[i].data if names is not None else f"#{i}"  # type: ignore[attr-defined]
            raise InputShapeError(f"input '{label}' has shape {a.shape}, the model expects {want}")
        env[arg] = canonical(a, dtype_of(arg))
    for op in block.ops:
        if isinstance(op, vision.WeightOp):
            # reshape: a store may hold a 0-d weight as shape (1,)
            value = canonical(weights[op.weight_name], dtype_of(op.result))
            env[op.result] = value.reshape(vision.shape_of(op.result))
        elif isinstance(op, vision.VisionOp):
            results = eval_op(op, [env[v] for v in op.ins], [env[v] for v in op.fuse])
            for r, value in zip(op.res, results, strict=True):
                env[r] = value
        elif isinstance(op, arith.ConstantOp):
            env[op.result] = _constant(op)
        elif isinstance(op, func.ReturnOp):
            outs = [env[v] for v in op.arguments]
            dtypes = _output_dtypes(f) or [o.dtype for o in outs]
            return trim_counted([canonical(o, dt) for o, dt in zip(outs, dtypes, strict=True)], output_counts(f))
        else:
            raise NotImplementedError(f"the reference interpreter has no rule for {op.name} in @main")
    raise ValueError("@main has no func.return")
