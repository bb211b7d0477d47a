"""roi_align -> one kernel, one thread per output element (roi, channel, bin row, bin column).

Each thread derives its roi's geometry (cheap next to the samples), then loops over the
bin's sample grid (static with ``sampling_ratio`` > 0, per-roi ceil(roi size / output size)
otherwise), interpolating each sample bilinearly from four pixels, in the element type and in
the order of ONNX's definition, so results match onnxruntime to the bit. Reads ``wg``.
"""

from __future__ import annotations

import math

from xdsl.ir import SSAValue

from visc.dialects.vision import RoiAlignOp, VisionOp, get_float, get_int, get_str, shape_of
from visc.passes.lowering.common import Lowering, Problems, Schedule, check_wg, elt, kernel_hint
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder, is_float


def _check(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    if not is_float(elt(op.ins[0])):
        problems.append(f"needs a floating-point tensor, got {elt(op.ins[0])}")
    return problems


def _lower(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, rois, batch_indices = op.ins
    out = op.outs[0]
    _, _, height, width = shape_of(x)
    _, _, oh, ow = shape_of(out)
    ty = elt(out)
    scale = get_float(op, "spatial_scale", 1.0)
    half_pixel = get_str(op, "coord_mode", "half_pixel") == "half_pixel"
    ratio = get_int(op, "sampling_ratio", 0)
    is_max = get_str(op, "mode", "avg") == "max"
    batch = shape_of(x)[0]
    status = fl.status(f"batch index out of range: the input's batch is {batch} (valid indices 0 to {batch - 1})",
                       batch_indices)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        r, c, ph, pw = ivs

        def f(v: float) -> SSAValue:
            return k.const(v, ty)

        raw = k.load(batch_indices, [r])
        b = k.int_to_index(raw)
        if status is not None:
            k.flag(k.or_(k.cmp("slt", b, 0), k.cmp("sge", b, batch)), status, raw)
            b = k.clamp(b, 0, batch - 1)
        offset = f(0.5 if half_pixel else 0.0)
        x0, y0, x1, y1 = (k.fsub(k.fmul(k.load(rois, [r, i]), f(scale)), offset) for i in range(4))
        roi_w, roi_h = k.fsub(x1, x0), k.fsub(y1, y0)
        if not half_pixel:  # malformed rois become 1x1
            roi_w, roi_h = k.fmax(roi_w, f(1.0)), k.fmax(roi_h, f(1.0))
        bin_h, bin_w = k.fdiv(roi_h, f(oh)), k.fdiv(roi_w, f(ow))

        def grid(size: SSAValue, out_size: int) -> Idx:
            if ratio > 0:
                return ratio
            return k.float_to_index(k.ceil(k.fdiv(size, f(out_size))))

        grid_h, grid_w = grid(roi_h, oh), grid(roi_w, ow)
        grid_hf, grid_wf = k.to_float(grid_h, ty), k.to_float(grid_w, ty)
        start_y = k.fadd(y0, k.fmul(k.to_float(ph, ty), bin_h))
        start_x = k.fadd(x0, k.fmul(k.to_float(pw, ty), bin_w))

        def coord(start: SSAValue, i: Idx, bin_size: SSAValue, grid_f: SSAValue) -> SSAValue:
            step = k.fdiv(k.fmul(k.fadd(k.to_float(i, ty), f(0.5)), bin_size), grid_f)
            return k.fadd(start, step)

        def taps(p: SSAValue, size: int) -> tuple[SSAValue, SSAValue, SSAValue, SSAValue]:
            """(low, high, low weight, high weight) of a coordinate clamped into the image."""
            p = k.fmax(p, f(0.0))
            low = k.float_to_index(p)
            edge = k.cmp("sge", low, size - 1)
            low = k.select(edge, k.idx(size - 1), low)  # type: ignore[arg-type]
            high = k.select(edge, k.idx(size - 1), k.add(low, 1))  # type: ignore[arg-type]
            p = k.select(edge, f(size - 1), p)
            frac = k.fsub(p, k.to_float(low, ty))
            return low, high, k.fsub(f(1.0), frac), frac

        def sample(iy: Idx, ix: Idx, acc: SSAValue) -> SSAValue:
            yy = coord(start_y, iy, bin_h, grid_hf)
            xx = coord(start_x, ix, bin_w, grid_wf)
            outside = k.any_of([k.fcmp("olt", yy, f(-1.0)), k.fcmp("ogt", yy, f(height)),
                                k.fcmp("olt", xx, f(-1.0)), k.fcmp("ogt", xx, f(width))])

            def inside() -> list[SSAValue]:
                y_lo, y_hi, hy, ly = taps(yy, height)
                x_lo, x_hi, hx, lx = taps(xx, width)
                terms = [k.fmul(k.fmul(wy, wx), k.load(x, [b, c, yi, xi]))
                         for wy, yi in ((hy, y_lo), (ly, y_hi)) for wx, xi in ((hx, x_lo), (lx, x_hi))]
                if is_max:
                    return [k.fmax(acc, k.fmax(k.fmax(terms[0], terms[1]), k.fmax(terms[2], terms[3])))]
                return [k.fadd(acc, k.fadd(k.fadd(k.fadd(terms[0], terms[1]), terms[2]), terms[3]))]

            # a sample outside [-1, size] contributes 0 (to the max as well, like ONNX)
            skipped = k.fmax(acc, f(0.0)) if is_max else acc
            (v,) = k.if_(outside, lambda: [skipped], inside, types=[ty])
            return v

        init = f(-math.inf) if is_max else f(0.0)

        def row(iy: Idx, carry: list[SSAValue]) -> list[SSAValue]:
            return k.loop(0, grid_w, carry, lambda ix, c: [sample(iy, ix, c[0])])

        (acc,) = k.loop(0, grid_h, [init], row)
        n = k.mul(grid_h, grid_w)
        if is_max:
            empty = k.cmp("eq", n, 0) if not isinstance(n, int) else n == 0
            value = k.select(empty, f(0.0), acc) if not isinstance(empty, bool) else (f(0.0) if empty else acc)
        else:
            count = k.to_float(k.max(n, 1), ty)
            value = k.fdiv(acc, count)
        k.store(value, out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    RoiAlignOp: Lowering(frozenset({"wg"}), _check, _lower),
}
