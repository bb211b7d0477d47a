"""map -> one kernel, one thread per output element.

Reads ``wg`` only. Inputs are read with numpy broadcasting at the output index (a size-1 dim
is read at 0), the body is inlined once per element, any element types.
"""

from __future__ import annotations

from visc.dialects.vision import MapOp, VisionOp, shape_of
from visc.passes.lowering.common import Lowering, Schedule, kernel_hint, load_broadcast, only_wg
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder


def lower_map(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    out = op.outs[0]

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        args = [load_broadcast(k, v, ivs) for v in op.ins]
        (res,) = k.inline_body(op.body, args)
        k.store(res, out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    MapOp: Lowering(frozenset({"wg"}), only_wg, lower_map),
}
