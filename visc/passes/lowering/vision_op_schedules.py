"""Default schedules of the sorting, selection and detection ops (called by
`vision-default-schedule`; the heuristics for every other op live in default_schedule.py).

Cooperative kernels (sort, top-k, NMS select, scan) run one work-group per row: enough
threads for one comparator (or chunk of 4 elements) each, as a power of two up to the
device's maximum. They sort in local memory (``local`` = 1) when a row fits the portable
local-memory budget, else in global scratch memory in blocks as large as that budget allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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


# Largest cooperative work-group per device kind. A CPU driver runs the code between two
# barriers as a loop over the group's work-items on one core, so every barrier step costs a
# pass over the group: small groups win there (measured on PoCL, NMS of 4 x 960 boxes:
# 0.84 ms with 256 work-items, 0.32-0.49 ms with 8 to 64).
GROUP_CAP = {"gpu": 256, "cpu": 32}


def _group_size(work_items: int, max_wg: int) -> int:
    return max(1, min(next_pow2(max(work_items, 1)), 1 << max(0, max_wg.bit_length() - 1)))


def vision_op_schedule(op: VisionOp, flat_wg: Callable[[int], int], max_wg: int, device_type: str = "gpu") -> dict[str, int]:
    """The schedule of one of `OPS` on a device kind ("gpu" | "cpu"); `flat_wg(threads)` is
    the work-group size heuristic of ordinary one-thread-per-element kernels."""
    max_wg = min(max_wg, GROUP_CAP.get(device_type, max_wg))
    from visc.passes.lowering.nms import nms_local_bytes
    from visc.passes.lowering.sort import block_size, sort_local_bytes

    if isinstance(op, TopKOp | SortOp | NmsOp):
        if isinstance(op, NmsOp):
            n, key = shape_of(op.ins[0])[1], element_type_of(op.ins[1])
            need = nms_local_bytes(n, key)
        else:
            n, key = shape_of(op.ins[0])[get_int(op, "axis")], element_type_of(op.ins[0])
            need = sort_local_bytes(n, key)
        if need <= LOCAL_MEMORY_BYTES:
            return {"wg": _group_size(-(-n // 2), max_wg), "local": 1}
        block = block_size(n, key)
        return {"wg": _group_size(block // 2, max_wg), "local": 0, "block": block}
    if isinstance(op, ScanOp):
        n = shape_of(op.ins[0])[get_int(op, "axis")]
        return {"wg": _group_size(-(-n // 4), max_wg)}
    return {"wg": flat_wg(max(1, math.prod(shape_of(op.dests[0]))))}
