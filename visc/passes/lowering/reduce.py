"""reduce -> one kernel, one thread per output element, nested loops over the reduced axes.

Reads ``wg`` and ``unroll_k`` (unroll hint of the innermost reduction loop, 0 = fully).
log_sum_exp subtracts the maximum first (two passes) so it never overflows. Integer tensors
support sum, mean (truncating), max, min and prod with signed arithmetic; bools max (any)
and min (all).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerType
from xdsl.ir import SSAValue

from visc.dialects.vision import ReduceOp, VisionOp, get_ints, get_str, shape_of
from visc.passes.lowering.common import (
    Lowering,
    Problems,
    Schedule,
    check_unroll,
    check_wg,
    elt,
    kernel_hint,
)
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder, extreme, is_float

_INT_KINDS = ("sum", "mean", "max", "min", "prod")


def _axes(op: VisionOp) -> tuple[int, ...]:
    rank = len(shape_of(op.ins[0]))
    axes = get_ints(op, "axes") if "axes" in op.attributes else ()
    return tuple(sorted({a % rank for a in axes})) if axes else tuple(range(rank))


def check_reduce(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    check_unroll(problems, sched, "unroll_k")
    kind = get_str(op, "kind")
    if not is_float(elt(op.outs[0])) and kind not in _INT_KINDS:
        problems.append(f"reduce kind '{kind}' needs a floating-point tensor")
    xs, os_ = shape_of(op.ins[0]), shape_of(op.outs[0])
    axes = _axes(op)
    kept = tuple(1 if d in axes else n for d, n in enumerate(xs))
    dropped = tuple(n for d, n in enumerate(xs) if d not in axes)
    if os_ not in (kept, dropped):
        problems.append(f"output shape {os_} is neither {kept} nor {dropped} for axes {list(axes)}")
    return problems


def lower_reduce(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, out = op.ins[0], op.outs[0]
    xs, os_ = shape_of(x), shape_of(out)
    axes = _axes(op)
    keep = len(os_) == len(xs)
    kind = get_str(op, "kind")
    ty = elt(out)
    unroll = sched.get("unroll_k", 1)
    red = [xs[a] for a in axes]

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        def source(rv: Sequence[Idx]) -> list[Idx]:
            it, ri = iter(ivs), iter(rv)
            idx: list[Idx] = []
            for d in range(len(xs)):
                if d in axes:
                    idx.append(next(ri))
                    if keep:
                        next(it)
                else:
                    idx.append(next(it))
            return idx

        def nest(init: list[SSAValue], step, at: list[Idx]) -> list[SSAValue]:
            if len(at) == len(red):
                return step(k.load(x, source(at)), init)
            inner = len(at) == len(red) - 1
            return k.loop(0, red[len(at)], init, lambda i, c: nest(c, step, [*at, i]),
                          unroll=unroll if inner else 1)

        zero = k.const(0, ty)
        if kind in ("max", "min") and isinstance(ty, IntegerType) and ty.width.data == 1:
            # bools order false < true: max is any (or), min is all (and)
            combine = arith.OrIOp if kind == "max" else arith.AndIOp
            (v,) = nest([k.const(kind == "min", ty)], lambda v, c: [k.op(combine, c[0], v)], [])
        elif kind in ("max", "min"):
            (v,) = nest([k.const(extreme(ty, kind == "max"), ty)],
                        lambda v, c: [k.fmax(c[0], v) if kind == "max" else k.fmin(c[0], v)], [])
        elif kind == "prod":
            (v,) = nest([k.const(1, ty)], lambda v, c: [k.fmul(c[0], v)], [])
        elif kind == "log_sum_exp":
            (mx,) = nest([k.const(-math.inf, ty)], lambda v, c: [k.fmax(c[0], v)], [])
            # an all -inf row has max -inf: shift by 0 instead so the result is -inf, not nan
            shift = k.select(k.fcmp("one", mx, k.const(-math.inf, ty)), mx, zero)
            (s,) = nest([zero], lambda v, c: [k.fadd(c[0], k.exp(k.fsub(v, shift)))], [])
            v = k.fadd(k.log(s), shift)
        else:
            def term(v: SSAValue) -> SSAValue:
                if kind in ("sum_square", "l2"):
                    return k.fmul(v, v)
                if kind == "l1":
                    return k.abs(v)
                return v

            (v,) = nest([zero], lambda v, c: [k.fadd(c[0], term(v))], [])
            if kind == "mean":
                v = k.fdiv(v, k.const(math.prod(red), ty))
            elif kind == "l2":
                v = k.sqrt(v)
            elif kind == "log_sum":
                v = k.log(v)
        k.store(v, out, ivs)

    fl.kernel(kernel_hint(op), list(os_), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    ReduceOp: Lowering(frozenset({"wg", "unroll_k"}), check_reduce, lower_reduce),
}
