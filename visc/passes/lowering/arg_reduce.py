"""argmax / argmin -> one kernel, one thread per output element, a loop along the axis that
carries the best value and its index. The first extreme wins (strict comparison), or the last
with ``select_last_index`` (non-strict). Reads ``wg``.
"""

from __future__ import annotations

from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerType, i64
from xdsl.ir import SSAValue

from visc.dialects.vision import ArgMaxOp, ArgMinOp, VisionOp, get_int, shape_of
from visc.passes.lowering.common import Lowering, Problems, Schedule, check_wg, elt, kernel_hint
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder, is_float


def _check(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    typ = elt(op.ins[0])
    if isinstance(typ, IntegerType) and typ.width.data == 1:
        problems.append("bool inputs are not supported")
    return problems


def _lower(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x, out = op.ins[0], op.outs[0]
    shape = shape_of(x)
    axis = get_int(op, "axis")
    n = shape[axis]
    keep = len(shape_of(out)) == len(shape)
    last = bool(get_int(op, "select_last_index", 0))
    largest = isinstance(op, ArgMaxOp)
    pred = ("oge" if last else "ogt") if largest else ("ole" if last else "olt")
    ipred = ("sge" if last else "sgt") if largest else ("sle" if last else "slt")

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        row = [iv for a, iv in enumerate(ivs) if a != axis] if keep else list(ivs)

        def at(i: Idx) -> list[Idx]:
            return [*row[:axis], i, *row[axis:]]

        def step(i: Idx, carry: list[SSAValue]) -> list[SSAValue]:
            v = k.load(x, at(i))
            better = k.fcmp(pred, v, carry[0]) if is_float(v.type) else k.cmp(ipred, v, carry[0])
            return [k.select(better, v, carry[0]), k.select_idx(better, i, carry[1])]  # type: ignore[list-item]

        _, best = k.loop(1, n, [k.load(x, at(0)), k.idx(0)], step)
        k.store(k.pure(arith.IndexCastOp, best, i64, key="i64"), out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    ArgMaxOp: Lowering(frozenset({"wg"}), _check, _lower),
    ArgMinOp: Lowering(frozenset({"wg"}), _check, _lower),
}
