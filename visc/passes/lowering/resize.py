"""resize -> one kernel, one thread per output element. Reads ``wg`` only.

Per resized dim the source coordinate follows onnxruntime's float32 formulas for every
``coord_mode`` (half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners,
asymmetric, tf_half_pixel_for_nn, tf_crop_and_resize with ``roi`` and
``extrapolation_value``). ``nearest`` rounds by
``nearest_mode`` (round_prefer_floor, round_prefer_ceil, floor, ceil); ``linear`` is n-linear
over every resized dim (2^d taps, coordinates clamped to the input); ``cubic`` uses the 4-tap
kernel with ``cubic_coeff_a`` and ``exclude_outside`` (edge-clamped taps). Dims that are not
resized (same size, scale 1) are read directly.
"""

from __future__ import annotations

import itertools

import numpy as np
from xdsl.dialects.builtin import f32
from xdsl.ir import SSAValue

from visc.dialects.vision import (
    ResizeOp,
    VisionOp,
    get_float,
    get_floats,
    get_int,
    get_str,
    shape_of,
)
from visc.passes.lowering.common import Lowering, Problems, Schedule, check_wg, elt, kernel_hint
from visc.passes.lowering.loops import Cond, FunctionLowering, Idx, KernelBuilder, is_float

_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")

# a tap: (source index, weight or None for 1)
_Tap = tuple[Idx, SSAValue | None]


def check_resize(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    mode = get_str(op, "mode")
    coord = get_str(op, "coord_mode", "half_pixel")
    if coord not in _COORD_MODES:
        problems.append(f"coordinate_transformation_mode '{coord}' is not supported")
    if mode == "nearest" and get_str(op, "nearest_mode", "round_prefer_floor") not in _NEAREST_MODES:
        problems.append(f"nearest_mode '{get_str(op, 'nearest_mode')}' is not supported")
    if mode != "nearest" and not is_float(elt(op.outs[0])):
        problems.append(f"{mode} resize needs a floating-point tensor")
    if coord == "tf_crop_and_resize" and len(get_floats(op, "roi")) != 2 * len(shape_of(op.ins[0])):
        problems.append("tf_crop_and_resize needs a roi with 2 values per dim")
    return problems


def _f(v: float) -> float:
    return float(np.float32(v))


def lower_resize(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, out = op.ins[0], op.outs[0]
    xs, os_ = shape_of(x), shape_of(out)
    rank = len(xs)
    ty = elt(out)
    mode = get_str(op, "mode")
    coord = get_str(op, "coord_mode", "half_pixel")
    nearest = get_str(op, "nearest_mode", "round_prefer_floor")
    scales = get_floats(op, "scales")
    roi = get_floats(op, "roi") if coord == "tf_crop_and_resize" else ()
    a_coef = get_float(op, "cubic_coeff_a", -0.75)
    exclude = bool(get_int(op, "exclude_outside", 0))
    extrap = get_float(op, "extrapolation_value", 0.0)

    def source_coord(k: KernelBuilder, d: int, i: Idx) -> tuple[SSAValue, Cond]:
        """x_original in f32 and whether it lies outside the input (tf_crop_and_resize)."""
        n_in, n_out, s = xs[d], os_[d], _f(scales[d])
        xr = k.to_float(i, f32)

        def c(v: float) -> SSAValue:
            return k.const(_f(v), f32)

        def half_pixel() -> SSAValue:
            return k.fsub(k.fdiv(k.fadd(xr, c(0.5)), c(s)), c(0.5))

        if coord == "half_pixel":
            return half_pixel(), False
        if coord == "half_pixel_symmetric":
            adjustment = np.float32(n_out) / (np.float32(s) * np.float32(n_in))
            offset = np.float32(n_in / 2) * (np.float32(1) - adjustment)
            return k.fadd(c(float(offset)), half_pixel()), False
        if coord == "pytorch_half_pixel":
            return (half_pixel() if n_out > 1 else c(0.0)), False
        if coord == "align_corners":
            return (c(0.0) if n_out == 1 else k.fdiv(k.fmul(xr, c(n_in - 1)), c(n_out - 1))), False
        if coord == "asymmetric":
            return k.fdiv(xr, c(s)), False
        if coord == "tf_half_pixel_for_nn":
            return k.fdiv(k.fadd(xr, c(0.5)), c(s)), False
        start, end = roi[d], roi[rank + d]
        if n_out > 1:
            num = k.fmul(k.fmul(xr, c(_f(end) - _f(start))), c(n_in - 1))
            v = k.fadd(c(_f(start) * (n_in - 1)), k.fdiv(num, c(n_out - 1)))
        else:
            v = c(0.5 * (_f(start) + _f(end)) * (n_in - 1))
        return v, k.or_(k.fcmp("olt", v, c(0.0)), k.fcmp("ogt", v, c(n_in - 1)))

    def taps(k: KernelBuilder, d: int, i: Idx) -> tuple[list[_Tap], Cond]:
        n_in = xs[d]
        if xs[d] == os_[d] and scales[d] == 1.0 and coord != "tf_crop_and_resize":
            return [(i, None)], False
        xo, outside = source_coord(k, d, i)
        if mode == "nearest":
            if nearest == "round_prefer_floor":
                r = k.ceil(k.fsub(xo, k.const(0.5, f32)))
            elif nearest == "round_prefer_ceil":
                r = k.floor(k.fadd(xo, k.const(0.5, f32)))
            else:
                r = k.floor(xo) if nearest == "floor" else k.ceil(xo)
            return [(k.clamp(k.float_to_index(r), 0, n_in - 1), None)], outside
        if mode == "linear":
            xc = k.fmin(k.fmax(xo, k.const(0.0, f32)), k.const(float(n_in - 1), f32))
            fl_ = k.floor(xc)
            x0 = k.float_to_index(fl_)
            x1 = k.min(k.add(x0, 1), n_in - 1)
            w1 = k.fsub(xc, fl_)
            w0 = k.fsub(k.const(1.0, f32), w1)
            return [(x0, w0), (x1, w1)], outside
        # cubic
        fl_ = k.floor(xo)
        base = k.float_to_index(fl_)
        t = k.fsub(xo, fl_)
        one = k.const(1.0, f32)
        a = k.const(a_coef, f32)

        def far(u: SSAValue) -> SSAValue:  # weight at distance u + 1 in (1, 2]
            up = k.fadd(u, one)
            inner = k.fadd(k.fmul(k.fsub(k.fmul(a, up), k.const(5 * a_coef, f32)), up), k.const(8 * a_coef, f32))
            return k.fsub(k.fmul(inner, up), k.const(4 * a_coef, f32))

        def near(u: SSAValue) -> SSAValue:  # weight at distance u in [0, 1]
            lin = k.fsub(k.fmul(k.const(a_coef + 2, f32), u), k.const(a_coef + 3, f32))
            return k.fadd(k.fmul(k.fmul(lin, u), u), one)

        rest = k.fsub(one, t)
        weights = [far(t), near(t), near(rest), far(rest)]
        pos = [k.add(base, off) for off in (-1, 0, 1, 2)]
        if exclude:
            zero = k.const(0.0, f32)
            weights = [k.select(k.in_range(p, 0, n_in, -(1 << 30), 1 << 30), w, zero)
                       for p, w in zip(pos, weights, strict=True)]
            total = weights[0]
            for w in weights[1:]:
                total = k.fadd(total, w)
            weights = [k.fdiv(w, total) for w in weights]
        return [(k.clamp(p, 0, n_in - 1), w) for p, w in zip(pos, weights, strict=True)], outside

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        per_dim = [taps(k, d, ivs[d]) for d in range(rank)]
        outside = k.any_of([f for _, f in per_dim])
        acc: SSAValue | None = None
        for combo in itertools.product(*[t for t, _ in per_dim]):
            v = k.load(x, [i for i, _ in combo])
            ws = [w for _, w in combo if w is not None]
            if ws:
                w = ws[0]
                for extra in ws[1:]:
                    w = k.fmul(w, extra)
                v = k.fmul(k.fconvert(w, ty), v)
            acc = v if acc is None else k.fadd(acc, v)
        assert acc is not None
        if outside is not False:
            acc = k.select(outside, k.const(extrap if is_float(ty) else int(extrap), ty), acc)
        k.store(acc, out, ivs)

    fl.kernel(kernel_hint(op), list(os_), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    ResizeOp: Lowering(frozenset({"wg"}), check_resize, lower_resize),
}
