"""pool2d and global_pool -> one kernel each, one thread per output element.

pool2d (any number of spatial dims) reads ``wg`` and ``unroll_win`` (unroll hint of the window
loops, 0 = fully, 1 = none). Window positions outside the input are masked (clamped address,
value replaced), never branched on: max ignores them, avg divides by the taps inside the input
(``count_include_pad=0``) or inside the padded input (``count_include_pad=1``, ONNX/onnxruntime
semantics for windows that ceil_mode lets run past the end padding), lp sums ``|x|^p`` over
taps inside the input. global_pool reads ``wg``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from xdsl.ir import SSAValue

from visc.dialects.vision import (
    GlobalPoolOp,
    Pool2dOp,
    VisionOp,
    get_int,
    get_ints,
    get_str,
    shape_of,
)
from visc.passes.lowering.common import (
    Lowering,
    Problems,
    Schedule,
    check_unroll,
    check_wg,
    elt,
    kernel_hint,
)
from visc.passes.lowering.loops import Cond, FunctionLowering, Idx, KernelBuilder, extreme, is_float


def _float_only(op: VisionOp, problems: Problems) -> None:
    """Max pooling also takes signed integers (the importer maps unsigned order onto signed)."""
    if not is_float(elt(op.outs[0])) and get_str(op, "kind") != "max":
        problems.append(f"{get_str(op, 'kind')} pooling needs a floating-point tensor, got {elt(op.outs[0])}")


def check_pool2d(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    check_unroll(problems, sched, "unroll_win")
    _float_only(op, problems)
    if get_str(op, "kind") == "lp" and get_int(op, "p", 2) < 1:
        problems.append("lp pooling needs p >= 1")
    return problems


def _nest(k: KernelBuilder, extents: Sequence[int], inits: list[SSAValue], unroll: int,
          body: Callable[[list[Idx], list[SSAValue]], list[SSAValue]], at: list[Idx] | None = None) -> list[SSAValue]:
    """Nested scf.for over `extents` (outermost first) carrying `inits`."""
    at = at or []
    if len(at) == len(extents):
        return body(at, inits)
    return k.loop(0, extents[len(at)], inits,
                  lambda i, c: _nest(k, extents, c, unroll, body, [*at, i]), unroll=unroll)


def lower_pool2d(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, out = op.ins[0], op.outs[0]
    xs, os_ = shape_of(x), shape_of(out)
    kind = get_str(op, "kind")
    kernel = get_ints(op, "kernel")
    r = len(kernel)
    strides = get_ints(op, "strides") if "strides" in op.attributes else (1,) * r
    dil = get_ints(op, "dilations") if "dilations" in op.attributes else (1,) * r
    pads = get_ints(op, "pads") if "pads" in op.attributes else (0,) * (2 * r)
    include_pad = bool(get_int(op, "count_include_pad", 0))
    p = get_int(op, "p", 2)
    ty = elt(out)
    unroll = sched.get("unroll_win", 1)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        nc, sp = ivs[:2], ivs[2:]
        starts = [k.sub(k.mul(sp[d], strides[d]), pads[d]) for d in range(r)]
        static_count = True  # every tap counts for the divisor, for every thread
        for d in range(r):
            last = (os_[2 + d] - 1) * strides[d] - pads[d] + (kernel[d] - 1) * dil[d]
            limit = xs[2 + d] + pads[r + d] if include_pad else xs[2 + d]
            static_count &= (include_pad or pads[d] <= 0) and last < limit
        carry_count = kind == "avg" and not static_count

        def window(d: int, idx: list[Idx], inside: Cond, counted: Cond, carry: list[SSAValue]) -> list[SSAValue]:
            """Loop over window dim d (masks of dims < d already folded into inside/counted)."""
            if d == r:
                return tap(idx, inside, counted, carry)

            def step(kk: Idx, carry: list[SSAValue]) -> list[SSAValue]:
                lo = -pads[d] + (kk if isinstance(kk, int) else 0) * dil[d]
                hi = (os_[2 + d] - 1) * strides[d] - pads[d] + (kk if isinstance(kk, int) else kernel[d] - 1) * dil[d]
                pos = k.add(starts[d], k.mul(kk, dil[d]))
                n = xs[2 + d]
                ok = k.and_(inside, k.in_range(pos, 0, n, lo, hi))
                cnt = k.and_(counted, k.in_range(pos, -pads[d], n + pads[r + d], lo, hi)) if include_pad else ok
                at = k.clamp(pos, 0, n - 1) if lo < 0 or hi >= n else pos
                return window(d + 1, [*idx, at], ok, cnt, carry)

            return k.loop(0, kernel[d], carry, step, unroll=unroll)

        def tap(idx: list[Idx], ok: Cond, cnt: Cond, carry: list[SSAValue]) -> list[SSAValue]:
            v = k.load(x, idx)
            acc = carry[0]
            if kind == "max":
                acc = k.select(ok, k.fmax(acc, v), acc)
            elif kind == "avg":
                acc = k.fadd(acc, k.select(ok, v, k.const(0, ty)))
            else:
                av = k.abs(v)
                term = av if p == 1 else k.fmul(av, av) if p == 2 else k.pow(av, k.const(float(p), ty))
                acc = k.fadd(acc, k.select(ok, term, k.const(0, ty)))
            if not carry_count:
                return [acc]
            return [acc, k.fadd(carry[1], k.select(cnt, k.const(1, ty), k.const(0, ty)))]

        init = [k.const(extreme(ty, True) if kind == "max" else 0, ty)]
        if carry_count:
            init.append(k.const(0, ty))
        res = window(0, list(nc), True, True, init)
        v = res[0]
        if kind == "avg":
            v = k.fdiv(v, res[1] if carry_count else k.const(float(math.prod(kernel)), ty))
        elif kind == "lp" and p == 2:
            v = k.sqrt(v)
        elif kind == "lp" and p != 1:
            v = k.pow(v, k.const(1.0 / p, ty))
        k.store(v, out, ivs)

    fl.kernel(kernel_hint(op), list(os_), sched.wg, body)


def check_global_pool(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    _float_only(op, problems)
    return problems


def lower_global_pool(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, out = op.ins[0], op.outs[0]
    xs = shape_of(x)
    kind = get_str(op, "kind")
    ty = elt(out)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        nc = ivs[:2]
        init = k.const(extreme(ty, True) if kind == "max" else 0, ty)

        def tap(sp: list[Idx], carry: list[SSAValue]) -> list[SSAValue]:
            v = k.load(x, [*nc, *sp])
            return [k.fmax(carry[0], v) if kind == "max" else k.fadd(carry[0], v)]

        (v,) = _nest(k, xs[2:], [init], 1, tap)
        if kind == "avg":
            v = k.fdiv(v, k.const(float(math.prod(xs[2:])), ty))
        k.store(v, out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    Pool2dOp: Lowering(frozenset({"wg", "unroll_win"}), check_pool2d, lower_pool2d),
    GlobalPoolOp: Lowering(frozenset({"wg"}), check_global_pool, lower_global_pool),
}
