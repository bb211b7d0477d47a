"""pool2d and global_pool -> one kernel each, one thread per output element.

pool2d (any number of spatial dims) reads ``wg``, ``unroll_win`` (unroll hint of the window
loops, 0 = fully, 1 = none) and ``vec`` (output columns per thread, computed as one vector;
1 = scalar). A thread whose window lies wholly inside the input (most of them)
runs a plain loop; at the borders, positions outside the input are masked (clamped address,
value replaced) rather than branched on: max ignores them, avg divides by the taps inside the input
(``count_include_pad=0``) or inside the padded input (``count_include_pad=1``, ONNX/onnxruntime
semantics for windows that ceil_mode lets run past the end padding), lp sums ``|x|^p`` over
taps inside the input. global_pool reads ``wg``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import VectorType
from xdsl.ir import Attribute, SSAValue

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
    check_range,
    check_unroll,
    check_wg,
    chunked_reduce,
    elt,
    kernel_hint,
    node_name,
)
from visc.passes.lowering.loops import Cond, FunctionLowering, Idx, KernelBuilder, extreme, is_float


def _max_identity(ty: Attribute) -> float | int:
    """Max pooling skips NaN taps as onnxruntime does (``maxnumf``: a window of NaN, 1, inf
    gives inf); starting from NaN, the identity of ``maxnumf``, a window of only NaN stays NaN
    while one of only -inf gives -inf. Integers start from their lowest value."""
    return math.nan if is_float(ty) else extreme(ty, True)


def _float_only(op: VisionOp, problems: Problems) -> None:
    """Max pooling also takes signed integers (the importer maps unsigned order onto signed)."""
    if not is_float(elt(op.outs[0])) and get_str(op, "kind") != "max":
        problems.append(f"{get_str(op, 'kind')} pooling needs a floating-point tensor, got {elt(op.outs[0])}")


VECTOR_WIDTHS = (1, 2, 3, 4, 8, 16)


def check_pool2d(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    check_unroll(problems, sched, "unroll_win")
    vec = sched.get("vec", 1)
    width = shape_of(op.outs[0])[-1]
    if vec not in VECTOR_WIDTHS:
        problems.append(f"schedule vec={vec} is illegal (one of {', '.join(map(str, VECTOR_WIDTHS))})")
    elif vec > width:
        problems.append(f"schedule vec={vec} is wider than the output's {width} columns")
    elif vec > 1 and not is_float(elt(op.outs[0])):
        problems.append(f"schedule vec={vec} needs a floating-point tensor")
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


def _lp_term(k: KernelBuilder, v: SSAValue, p: int, ty: Attribute) -> SSAValue:
    """|v|^p, what an input contributes to an Lp pool (scalar or vector `v`)."""
    av = k.abs(v)
    if p == 1:
        return av
    if p == 2:
        return k.fmul(av, av)
    e = k.const(float(p), ty)
    return k.pow(av, k.vbroadcast(e, v.type.get_shape()[0]) if isinstance(v.type, VectorType) else e)


def _pool_params(op: VisionOp, sched: Schedule) -> tuple:
    """pool2d's operands, shapes and attributes with their defaults, read the same way by the
    scalar and the vector lowering: (x, out, x shape, out shape, kind, kernel, rank, strides,
    dilations, pads, count_include_pad, p, element type, unroll_win)."""
    x, out = op.ins[0], op.outs[0]
    kernel = get_ints(op, "kernel")
    r = len(kernel)
    strides = get_ints(op, "strides") if "strides" in op.attributes else (1,) * r
    dil = get_ints(op, "dilations") if "dilations" in op.attributes else (1,) * r
    pads = get_ints(op, "pads") if "pads" in op.attributes else (0,) * (2 * r)
    return (x, out, shape_of(x), shape_of(out), get_str(op, "kind"), kernel, r, strides, dil, pads,
            bool(get_int(op, "count_include_pad", 0)), get_int(op, "p", 2), elt(out), sched.get("unroll_win", 1))


def lower_pool2d(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, out, xs, os_, kind, kernel, r, strides, dil, pads, include_pad, p, ty, unroll = _pool_params(op, sched)
    if sched.get("vec", 1) > 1:
        _lower_pool2d_vec(op, sched, fl)
        return

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        nc, sp = ivs[:2], ivs[2:]
        starts = [k.sub(k.mul(sp[d], strides[d]), pads[d]) for d in range(r)]
        static_count = True  # every tap counts for the divisor, for every thread
        for d in range(r):
            last = (os_[2 + d] - 1) * strides[d] - pads[d] + (kernel[d] - 1) * dil[d]
            limit = xs[2 + d] + pads[r + d] if include_pad else xs[2 + d]
            static_count &= (include_pad or pads[d] <= 0) and last < limit
        carry_count = kind == "avg" and not static_count

        def window(d: int, idx: list[Idx], inside: Cond, counted: Cond, carry: list[SSAValue],
                   masked: bool) -> list[SSAValue]:
            """Loop over window dim d (masks of dims < d already folded into inside/counted);
            unmasked, every tap is known to lie inside the input."""
            if d == r:
                return tap(idx, inside, counted, carry)

            def step(kk: Idx, carry: list[SSAValue]) -> list[SSAValue]:
                lo = -pads[d] + (kk if isinstance(kk, int) else 0) * dil[d]
                hi = (os_[2 + d] - 1) * strides[d] - pads[d] + (kk if isinstance(kk, int) else kernel[d] - 1) * dil[d]
                pos = k.add(starts[d], k.mul(kk, dil[d]))
                if not masked:
                    return window(d + 1, [*idx, pos], True, True, carry, masked)
                n = xs[2 + d]
                ok = k.and_(inside, k.in_range(pos, 0, n, lo, hi))
                cnt = k.and_(counted, k.in_range(pos, -pads[d], n + pads[r + d], lo, hi)) if include_pad else ok
                at = k.clamp(pos, 0, n - 1) if lo < 0 or hi >= n else pos
                return window(d + 1, [*idx, at], ok, cnt, carry, masked)

            return k.loop(0, kernel[d], carry, step, unroll=unroll)

        def tap(idx: list[Idx], ok: Cond, cnt: Cond, carry: list[SSAValue]) -> list[SSAValue]:
            v = k.load(x, idx)
            acc = carry[0]
            if kind == "max":
                acc = k.select(ok, k.fmax_num(acc, v), acc)
            elif kind == "avg":
                acc = k.fadd(acc, k.select(ok, v, k.const(0, ty)))
            else:
                acc = k.fadd(acc, k.select(ok, _lp_term(k, v, p, ty), k.const(0, ty)))
            if len(carry) == 1:
                return [acc]
            return [acc, k.fadd(carry[1], k.select(cnt, k.const(1, ty), k.const(0, ty)))]

        def pooled(masked: bool) -> list[SSAValue]:
            init = [k.const(_max_identity(ty) if kind == "max" else 0, ty)]
            if carry_count and masked:
                init.append(k.const(0, ty))
            res = window(0, list(nc), True, True, init, masked)
            v = res[0]
            if kind == "avg":
                v = k.fdiv(v, res[1] if len(res) > 1 else k.const(float(math.prod(kernel)), ty))
            elif kind == "lp" and p == 2:
                v = k.sqrt(v)
            elif kind == "lp" and p != 1:
                v = k.pow(v, k.const(1.0 / p, ty))
            return [v]

        # most windows lie wholly inside the input: they run without masks or clamps
        interior = k.all_of([
            k.in_range(starts[d], 0, xs[2 + d] - (kernel[d] - 1) * dil[d], -pads[d],
                       (os_[2 + d] - 1) * strides[d] - pads[d])
            for d in range(r)])
        (v,) = k.if_(interior, lambda: pooled(False), lambda: pooled(True), [ty])
        k.store(v, out, ivs)

    fl.kernel(kernel_hint(op), list(os_), sched.wg, body)


def _lower_pool2d_vec(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """pool2d with ``vec`` adjacent output columns per thread in one vector: the per-thread cost
    of a CPU OpenCL driver (which does not vectorize across threads with loops) is shared by
    ``vec`` outputs. The last column group is shifted left to end at the last column (like
    conv2d's) and stores only the lanes its neighbour does not."""
    x, out, xs, os_, kind, kernel, r, strides, dil, pads, include_pad, p, ty, unroll = _pool_params(op, sched)
    vec = sched.get("vec", 1)
    ow = os_[-1]
    groups = -(-ow // vec)
    overlap = groups * vec - ow
    ident = _max_identity(ty) if kind == "max" else 0

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        nc, sp = ivs[:2], ivs[2:]
        grp = sp[-1]
        col = k.min(k.mul(grp, vec), ow - vec) if overlap else k.mul(grp, vec)
        last: Cond = k.cmp("eq", grp, groups - 1) if overlap else False
        cols = [k.add(col, q) for q in range(vec)]

        def lane_starts(d: int) -> list[tuple[Idx, int, int]]:
            """(window start, its static range) per lane along dim d; lanes differ only along
            the last dim (column col + q, in [q, ow - vec + q])."""
            st, pd = strides[d], pads[d]
            if d < r - 1:
                return [(k.sub(k.mul(sp[d], st), pd), -pd, (os_[2 + d] - 1) * st - pd)]
            return [(k.sub(k.mul(c, st), pd), q * st - pd, (ow - vec + q) * st - pd) for q, c in enumerate(cols)]

        starts = [lane_starts(d) for d in range(r)]

        def term(v: SSAValue) -> SSAValue:
            """What a tap contributes to the reduction (|x|^p for lp pooling)."""
            return _lp_term(k, v, p, ty) if kind == "lp" else v

        def combine(a: SSAValue, b: SSAValue) -> SSAValue:
            return k.fmax_num(a, b) if kind == "max" else k.fadd(a, b)

        def separable() -> SSAValue:
            """An interior thread with a strided last dim: reduce the window over the outer
            dims first, elementwise on the contiguous span of input columns that the lanes'
            windows cover (read as vectors of ``vec`` plus scalars, never past the span),
            then over the last dim by picking each lane's columns out of that span. A
            gather of ``vec`` strided scalars per tap cost a shuffle per element and a
            reduction op per tap (PoCL: 1.8x faster 3x3 stride-2 max pools)."""
            d = r - 1
            span = (vec - 1) * strides[d] + (kernel[d] - 1) * dil[d] + 1
            full = span // vec
            base = starts[d][0][0]

            def level(dd: int, idx: list[Idx], carry: list[SSAValue]) -> list[SSAValue]:
                if dd == d:
                    vals = [k.load(x, [*idx, k.add(base, i)]) for i in range(span)]
                    parts = [k.vfrom(vals[c * vec:(c + 1) * vec]) for c in range(full)] + vals[full * vec:]
                    return [combine(a, term(b)) for a, b in zip(carry, parts, strict=True)]
                a, _, _ = starts[dd][0]
                return k.loop(0, kernel[dd], carry,
                              lambda kk, c: level(dd + 1, [*idx, k.add(a, k.mul(kk, dil[dd]))], c), unroll=unroll)

            # identity-initialized: peeling the first window row instead measured slower on PoCL
            ident_s = k.const(ident, ty)
            parts = level(0, list(nc), [k.vbroadcast(ident_s, vec)] * full + [ident_s] * (span - full * vec))
            elems = [k.vextract(parts[i // vec], i % vec) if i < full * vec else parts[full + i - full * vec]
                     for i in range(span)]
            taps = [k.vfrom([elems[q * strides[d] + kk * dil[d]] for q in range(vec)]) for kk in range(kernel[d])]
            acc = taps[0]
            for t in taps[1:]:
                acc = combine(acc, t)
            return acc

        def window(masked: bool) -> list[SSAValue]:
            def level(d: int, idx: list[Idx], ok: list[Cond], cnt: list[Cond], carry: list[SSAValue]) -> list[SSAValue]:
                if d == r - 1:
                    return last_dim(idx, ok, cnt, carry)

                def step(kk: Idx, carry: list[SSAValue]) -> list[SSAValue]:
                    a, lo, hi = starts[d][0]
                    lo, hi = lo + (kk if isinstance(kk, int) else 0) * dil[d], hi + (kk if isinstance(kk, int) else kernel[d] - 1) * dil[d]
                    pos = k.add(a, k.mul(kk, dil[d]))
                    if not masked:
                        return level(d + 1, [*idx, pos], ok, cnt, carry)
                    n = xs[2 + d]
                    inside = k.in_range(pos, 0, n, lo, hi)
                    counted = k.in_range(pos, -pads[d], n + pads[r + d], lo, hi) if include_pad else inside
                    at = k.clamp(pos, 0, n - 1) if lo < 0 or hi >= n else pos
                    return level(d + 1, [*idx, at], [k.and_(o, inside) for o in ok],
                                 [k.and_(c, counted) for c in cnt], carry)

                return k.loop(0, kernel[d], carry, step, unroll=unroll)

            def last_dim(idx: list[Idx], ok: list[Cond], cnt: list[Cond], carry: list[SSAValue]) -> list[SSAValue]:
                d = r - 1
                n = xs[2 + d]

                def step(kk: Idx, carry: list[SSAValue]) -> list[SSAValue]:
                    taps, oks, cnts = [], [], []
                    direct = not masked and strides[d] == 1  # one vector load at lane 0's tap
                    for a, lo, hi in starts[d][:1] if direct else starts[d]:
                        lo, hi = lo + (kk if isinstance(kk, int) else 0) * dil[d], hi + (kk if isinstance(kk, int) else kernel[d] - 1) * dil[d]
                        pos = k.add(a, k.mul(kk, dil[d]))
                        if masked:
                            inside = k.in_range(pos, 0, n, lo, hi)
                            oks.append(k.and_(ok[0], inside))
                            cnts.append(k.and_(cnt[0], k.in_range(pos, -pads[d], n + pads[r + d], lo, hi))
                                        if include_pad else oks[-1])
                            pos = k.clamp(pos, 0, n - 1) if lo < 0 or hi >= n else pos
                        taps.append(pos)
                    if direct:
                        v = k.vload(x, [*idx, taps[0]], vec)
                    else:
                        vals = [k.load(x, [*idx, t]) for t in taps]
                        if masked:
                            fill = k.const(ident, ty)
                            vals = [k.select(o, v, fill) for o, v in zip(oks, vals, strict=True)]
                        v = k.vfrom(vals)
                    acc = combine(carry[0], term(v))
                    if len(carry) == 1:
                        return [acc]
                    ones = [k.select(c, k.const(1, ty), k.const(0, ty)) for c in cnts]
                    return [acc, k.fadd(carry[1], k.vfrom(ones))]

                return k.loop(0, kernel[d], carry, step, unroll=unroll)

            count_needed = kind == "avg" and masked
            if not masked and 1 < strides[-1] <= (kernel[-1] - 1) * dil[-1] + 1:  # windows touch: no gaps
                res = [separable()]
            else:
                init = [k.vbroadcast(k.const(ident, ty), vec)]
                if count_needed:
                    init.append(k.vbroadcast(k.const(0, ty), vec))
                res = level(0, list(nc), [True], [True], init)
            v = res[0]
            if kind == "avg":
                v = k.fdiv(v, res[1] if count_needed else k.vbroadcast(k.const(float(math.prod(kernel)), ty), vec))
            elif kind == "lp" and p == 2:
                v = k.sqrt(v)
            elif kind == "lp" and p != 1:
                v = k.pow(v, k.vbroadcast(k.const(1.0 / p, ty), vec))
            return [v]

        interior = k.all_of([
            k.in_range(starts[d][0][0], 0, xs[2 + d] - (kernel[d] - 1) * dil[d] - (vec - 1) * strides[d] * (d == r - 1),
                       starts[d][0][1], starts[d][0][2])
            for d in range(r)])
        (v,) = k.if_(interior, lambda: window(False), lambda: window(True), [VectorType(ty, [vec])])

        def tail() -> list[SSAValue]:
            for q in range(overlap, vec):
                k.store(k.vextract(v, q), out, [*nc, *sp[:-1], cols[q]])
            return []

        def whole() -> list[SSAValue]:
            k.vstore(v, out, [*nc, *sp[:-1], col])
            return []

        k.if_(last, tail, whole)

    fl.kernel(kernel_hint(op), [*os_[:-1], groups], sched.wg, body)


def check_global_pool(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    check_range(problems, sched, "partials", 1, 1, 16)
    _float_only(op, problems)
    return problems


def lower_global_pool(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """A thread per (batch, channel) reduces its plane, read as one flat row, in ``partials``
    independent chains (CPUs: a vector's worth; a single chain waits on every add)."""
    x, out = op.ins[0], op.outs[0]
    xs = shape_of(x)
    size = math.prod(xs[2:])
    flat = fl.view(x, (*xs[:2], size), node_name(op) + ":plane")
    kind = get_str(op, "kind")
    ty = elt(out)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        nc = ivs[:2]
        init = k.const(_max_identity(ty) if kind == "max" else 0, ty)
        v = chunked_reduce(k, size, init, lambda i: k.load(flat, [*nc, i]),
                           k.fmax_num if kind == "max" else k.fadd, sched.get("partials", 1))
        if kind == "avg":
            v = k.fdiv(v, k.const(float(size), ty))
        k.store(v, out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    Pool2dOp: Lowering(frozenset({"wg", "unroll_win", "vec"}), check_pool2d, lower_pool2d),
    GlobalPoolOp: Lowering(frozenset({"wg", "partials"}), check_global_pool, lower_global_pool),
}
