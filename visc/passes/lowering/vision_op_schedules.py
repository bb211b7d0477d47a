"""Default schedules of the sorting, selection and detection ops (called by
`vision-default-schedule`; the heuristics for every other op live in default_schedule.py).

Cooperative kernels (sort, top-k, NMS select, scan) run one work-group per row: enough
threads for one comparator (or chunk of 4 elements) each, as a power of two up to the
device's maximum. They sort in local memory (``local`` = 1) when a row fits the portable
local-memory budget, else in global scratch memory.
"""

from __future__ import annotations

import math

from visc.dialects.vision import (
    ArgMaxOp,
    ArgMinOp,
    NmsOp,
    RoiAlignOp,
    ScanOp,
    SortOp,
    TopKOp,
    VisionOp,
    element_type_of,
    get_int,
    shape_of,
)
from visc.passes.lowering.workgroup import LOCAL_MEMORY_BYTES, next_pow2

OPS = (TopKOp, SortOp, ArgMaxOp, ArgMinOp, ScanOp, NmsOp, RoiAlignOp)


def _group_size(work_items: int, max_wg: int) -> int:
    return max(1, min(next_pow2(max(work_items, 1)), 1 << max(0, max_wg.bit_length() - 1)))


def vision_op_schedule(op: VisionOp, flat_wg, max_wg: int) -> dict[str, int]:
    """The schedule of one of `OPS`; `flat_wg(threads)` is the work-group size heuristic of
    ordinary one-thread-per-element kernels."""
    from visc.passes.lowering.nms import nms_local_bytes
    from visc.passes.lowering.sort import sort_local_bytes

    if isinstance(op, TopKOp | SortOp):
        x = shape_of(op.ins[0])
        n = x[get_int(op, "axis")]
        local = sort_local_bytes(n, element_type_of(op.ins[0])) <= LOCAL_MEMORY_BYTES
        if local:
            return {"wg": _group_size(-(-n // 2), max_wg), "local": 1}
        return {"wg": flat_wg(math.prod(x) // 2), "local": 0}
    if isinstance(op, NmsOp):
        n = shape_of(op.ins[0])[1]
        local = nms_local_bytes(n, element_type_of(op.ins[1])) <= LOCAL_MEMORY_BYTES
        return {"wg": _group_size(-(-n // 2), max_wg), "local": int(local)}
    if isinstance(op, ScanOp):
        n = shape_of(op.ins[0])[get_int(op, "axis")]
        return {"wg": _group_size(-(-n // 4), max_wg)}
    return {"wg": flat_wg(math.prod(shape_of(op.dests[0])))}
