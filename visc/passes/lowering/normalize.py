"""batch_norm, lrn, softmax, log_softmax -> one kernel each. All read ``wg`` only.

softmax / log_softmax: one thread per row (all indices but ``axis``), three passes over the
row -- max, sum of ``exp(x - max)``, write -- so large logits never overflow. With the
reduced axis outermost in memory (e.g. NCHW channels), consecutive threads read consecutive
addresses in every pass.
"""

from __future__ import annotations

import math

from xdsl.ir import SSAValue

from visc.dialects.vision import (
    BatchNormOp,
    LogSoftmaxOp,
    LrnOp,
    SoftmaxOp,
    VisionOp,
    get_float,
    get_int,
    shape_of,
)
from visc.passes.lowering.common import Lowering, Problems, Schedule, check_wg, elt, kernel_hint
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder, is_float


def check_float(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    if not is_float(elt(op.outs[0])):
        problems.append(f"needs a floating-point tensor, got {elt(op.outs[0])}")
    return problems


def lower_batch_norm(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, scale, bias, mean, var = op.ins
    out = op.outs[0]
    ty = elt(out)
    eps = get_float(op, "epsilon", 1e-5)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        c = [ivs[1]] if len(ivs) > 1 else [0]
        inv = k.fdiv(k.load(scale, c), k.sqrt(k.fadd(k.load(var, c), k.const(eps, ty))))
        v = k.fadd(k.fmul(k.fsub(k.load(x, ivs), k.load(mean, c)), inv), k.load(bias, c))
        k.store(v, out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


def lower_lrn(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """y = x / (bias + alpha / size * sum of x^2 over channels [c - (size-1)//2, c + size//2])^beta."""
    x, out = op.ins[0], op.outs[0]
    shape = shape_of(x)
    ty = elt(out)
    size = get_int(op, "size")
    alpha, beta, bias = get_float(op, "alpha", 1e-4), get_float(op, "beta", 0.75), get_float(op, "bias", 1.0)
    before, after = (size - 1) // 2, size // 2  # ceil((size-1)/2) == size // 2

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        c = ivs[1]
        lo = k.max(k.sub(c, before), 0)
        hi = k.min(k.add(c, after + 1), shape[1])

        def tap(cc: Idx, carry: list[SSAValue]) -> list[SSAValue]:
            v = k.load(x, [ivs[0], cc, *ivs[2:]])
            return [k.fma(v, v, carry[0])]

        (sq,) = k.loop(lo, hi, [k.const(0.0, ty)], tap)
        denom = k.fadd(k.const(bias, ty), k.fmul(k.const(alpha / size, ty), sq))
        k.store(k.fdiv(k.load(x, ivs), k.pow(denom, k.const(beta, ty))), out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


def _lower_softmax(op: VisionOp, sched: Schedule, fl: FunctionLowering, log: bool) -> None:
    x, out = op.ins[0], op.outs[0]
    shape = shape_of(x)
    rank = len(shape)
    axis = get_int(op, "axis", -1) % rank
    n = shape[axis]
    ty = elt(out)
    rows = [s for d, s in enumerate(shape) if d != axis]

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        def at(i: Idx) -> list[Idx]:
            return [*ivs[:axis], i, *ivs[axis:]]

        (mx,) = k.loop(0, n, [k.const(-math.inf, ty)], lambda i, c: [k.fmax(c[0], k.load(x, at(i)))])
        (total,) = k.loop(0, n, [k.const(0.0, ty)],
                          lambda i, c: [k.fadd(c[0], k.exp(k.fsub(k.load(x, at(i)), mx)))])
        if log:
            shift = k.fadd(mx, k.log(total))
        else:
            inv = k.fdiv(k.const(1.0, ty), total)

        def write(i: Idx, c: list[SSAValue]) -> list[SSAValue]:
            v = k.load(x, at(i))
            k.store(k.fsub(v, shift) if log else k.fmul(k.exp(k.fsub(v, mx)), inv), out, at(i))
            return []

        k.loop(0, n, [], write)

    fl.kernel(kernel_hint(op), rows, sched.wg, body)


def lower_softmax(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    _lower_softmax(op, sched, fl, log=False)


def lower_log_softmax(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    _lower_softmax(op, sched, fl, log=True)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    BatchNormOp: Lowering(frozenset({"wg"}), check_float, lower_batch_norm),
    LrnOp: Lowering(frozenset({"wg"}), check_float, lower_lrn),
    SoftmaxOp: Lowering(frozenset({"wg"}), check_float, lower_softmax),
    LogSoftmaxOp: Lowering(frozenset({"wg"}), check_float, lower_log_softmax),
}


