"""Parallel prefix sums (the building block NMS uses to compact its output), and the lowering
of `vision.scan` (ONNX CumSum).

One work-group scans one row: each of T = ceil(n / chunk) threads sums a contiguous chunk of
chunk = ceil(n / wg) elements, a Hillis-Steele scan over the T partial sums runs in local
memory (log2 T steps, double-buffered, a barrier after each), and every thread then walks its
chunk again from its exclusive offset, producing both the exclusive and the inclusive sum of
every element. float16 accumulates in float32. Reads ``wg``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import Float16Type, f32
from xdsl.ir import Attribute, SSAValue

from visc.dialects.vision import ScanOp, VisionOp, get_int, shape_of
from visc.passes.lowering.common import Lowering, Problems, Schedule, check_wg, elt, kernel_hint
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder
from visc.passes.lowering.workgroup import GroupBuilder, group_kernel

LoadFn = Callable[[KernelBuilder, list[Idx], Idx], SSAValue]
StoreFn = Callable[[KernelBuilder, list[Idx], Idx, SSAValue, SSAValue], None]


def accumulator_type(typ: Attribute) -> Attribute:
    return f32 if isinstance(typ, Float16Type) else typ


def scan_group(k: GroupBuilder, row: list[Idx], n: int, acc: Attribute, load: LoadFn, store: StoreFn) -> None:
    """Scan one row of n values inside a work-group: `store(k, row, i, exclusive, inclusive)`
    for every i (in the thread that owns i's chunk)."""
    if n == 0:
        return
    chunk = -(-n // k.wg)
    threads = -(-n // chunk)
    zero = k.const(0, acc)

    def bounds(t: SSAValue) -> tuple[Idx, Idx]:
        lo = k.mul(t, chunk)
        return lo, k.min(k.add(lo, chunk), n)

    buffers = [k.local(threads, acc), k.local(threads, acc) if threads > 1 else None]

    def partial(t: SSAValue) -> None:
        lo, hi = bounds(t)
        (s,) = k.loop(lo, hi, [zero], lambda i, c: [k.fadd(c[0], load(k, row, i))])
        k.store(s, buffers[0], [t])

    k.threads(threads, partial)
    k.barrier()
    src = 0
    d = 1
    while d < threads:
        def step(t: SSAValue, d: int = d, src: int = src) -> None:
            a, b = buffers[src], buffers[1 - src]
            assert a is not None and b is not None
            mine = k.read(a, [t])

            def add() -> list[SSAValue]:
                return [k.fadd(k.read(a, [k.sub(t, d)]), mine)]

            (v,) = k.if_(k.cmp("sge", t, d), add, lambda: [mine], types=[acc])
            k.store(v, b, [t])

        k.threads(threads, step)
        k.barrier()
        src, d = 1 - src, d * 2
    sums = buffers[src]
    assert sums is not None

    def finish(t: SSAValue) -> None:
        lo, hi = bounds(t)
        (base,) = k.if_(k.cmp("sgt", t, 0), lambda: [k.read(sums, [k.sub(t, 1)])], lambda: [zero], types=[acc])

        def walk(i: Idx, c: list[SSAValue]) -> list[SSAValue]:
            inclusive = k.fadd(c[0], load(k, row, i))
            store(k, row, i, c[0], inclusive)
            return [inclusive]

        k.loop(lo, hi, [base], walk)

    k.threads(threads, finish)


def scan_rows(fl: FunctionLowering, name: str, rows: Sequence[int], n: int, acc: Attribute, wg: int,
              load: LoadFn, store: StoreFn) -> None:
    """One work-group kernel scanning every row of `rows` (see `scan_group`)."""
    group_kernel(fl, name, list(rows), wg, lambda k, row: scan_group(k, row, n, acc, load, store))


def _check(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    typ = elt(op.ins[0])
    if getattr(typ, "width", None) is not None and typ.width.data == 1:  # type: ignore[attr-defined]
        problems.append("a prefix sum of bools is not supported")
    return problems


def _lower(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, out = op.ins[0], op.outs[0]
    shape = shape_of(x)
    axis = get_int(op, "axis")
    n = shape[axis]
    exclusive, reverse = bool(get_int(op, "exclusive", 0)), bool(get_int(op, "reverse", 0))
    typ = elt(x)
    acc = accumulator_type(typ)

    def at(k: KernelBuilder, row: Sequence[Idx], i: Idx) -> list[Idx]:
        return [*row[:axis], k.sub(n - 1, i) if reverse else i, *row[axis:]]

    def load(k: KernelBuilder, row: list[Idx], i: Idx) -> SSAValue:
        v = k.load(x, at(k, row, i))
        return k.fconvert(v, acc) if acc != typ else v

    def store(k: KernelBuilder, row: list[Idx], i: Idx, excl: SSAValue, incl: SSAValue) -> None:
        v = excl if exclusive else incl
        k.store(k.fconvert(v, typ) if acc != typ else v, out, at(k, row, i))

    rows = [d for a, d in enumerate(shape) if a != axis]
    scan_rows(fl, kernel_hint(op), rows, n, acc, sched.wg, load, store)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    ScanOp: Lowering(frozenset({"wg"}), _check, _lower),
}
