"""nms (ONNX NonMaxSuppression) -> three kernels built from the sort and scan building blocks.

1. select, one work-group per (batch, class): candidates (score > threshold; the others get
   key -inf and sort last) are sorted by decreasing score, ties by lower box index (the sort
   building block, in local memory or, for long rows, in global scratch). The greedy pass then
   walks the sorted list in a uniform loop: a candidate still unsuppressed is kept, and all
   threads test it against the later candidates in parallel (ONNX's IoU rule, in ONNX's float
   arithmetic), marking the ones it suppresses. The kept box indices and their number go to
   scratch memory; the walk stops keeping at max_output_boxes_per_class.
2. offsets, one work-group: an exclusive scan of the per-class counts (the scan building
   block) gives each class's first output row; its total is the op's `count`.
3. compact, one thread per (batch, class, slot): kept boxes move to their rows as
   (batch, class, box); rows past the total become -1.

Reads ``wg``, ``local`` (1: sort and suppression flags in local memory) and, with local = 0,
``block`` (see sort.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from xdsl.dialects import arith
from xdsl.dialects.builtin import i1, i8, i32, i64
from xdsl.ir import Attribute, SSAValue

from visc.dialects.vision import NmsOp, VisionOp, get_float, get_int, shape_of
from visc.passes.lowering.common import (
    Lowering,
    Problems,
    Schedule,
    elt,
    kernel_hint,
    node_name,
)
from visc.passes.lowering.loops import INDEX, FunctionLowering, Idx, KernelBuilder, is_float
from visc.passes.lowering.scan import scan_rows
from visc.passes.lowering.sort import (
    RowSort,
    check_sort_schedule,
    index_value,
    load_rows_local,
    sort_global,
    sort_local_bytes,
)
from visc.passes.lowering.workgroup import GroupBuilder, group_kernel, scratch

Corners = tuple[SSAValue, SSAValue, SSAValue, SSAValue]  # x_min, x_max, y_min, y_max


def nms_local_bytes(n: int, score_type: Attribute) -> int:
    """Local memory of the select kernel with ``local`` = 1: the sort's (its key array then
    holds the suppression flags)."""
    return sort_local_bytes(n, score_type)


def _check(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    n, typ = shape_of(op.ins[0])[1], elt(op.ins[1])
    check_sort_schedule(problems, sched, n, typ, nms_local_bytes(n, typ))
    if not is_float(typ):
        problems.append("boxes and scores must be floating point")
    return problems


def _corners(k: KernelBuilder, boxes: SSAValue, b: Idx, box: Idx, center: bool) -> Corners:
    v = [k.load(boxes, [b, box, i]) for i in range(4)]
    if center:
        two = k.const(2.0, v[0].type)
        half_w, half_h = k.fdiv(v[2], two), k.fdiv(v[3], two)
        return k.fsub(v[0], half_w), k.fadd(v[0], half_w), k.fsub(v[1], half_h), k.fadd(v[1], half_h)
    return k.fmin(v[1], v[3]), k.fmax(v[1], v[3]), k.fmin(v[0], v[2]), k.fmax(v[0], v[2])


def _area(k: KernelBuilder, c: Corners) -> SSAValue:
    return k.fmul(k.fsub(c[1], c[0]), k.fsub(c[3], c[2]))


def _suppresses(k: KernelBuilder, kept: Corners, kept_area: SSAValue, other: Corners, iou: SSAValue) -> SSAValue:
    """ONNX's SuppressByIOU: IoU(kept, other) > iou_threshold, with its degenerate cases."""
    zero = k.const(0.0, iou.type)
    ix_min, ix_max = k.fmax(kept[0], other[0]), k.fmin(kept[1], other[1])
    iy_min, iy_max = k.fmax(kept[2], other[2]), k.fmin(kept[3], other[3])
    inter = k.fmul(k.fsub(ix_max, ix_min), k.fsub(iy_max, iy_min))
    area = _area(k, other)
    union = k.fsub(k.fadd(kept_area, area), inter)
    conds = [k.fcmp("ogt", ix_max, ix_min), k.fcmp("ogt", iy_max, iy_min), k.fcmp("ogt", inter, zero),
             k.fcmp("ogt", kept_area, zero), k.fcmp("ogt", area, zero), k.fcmp("ogt", union, zero),
             k.fcmp("ogt", k.fdiv(inter, union), iou)]
    return k.all_of(conds)  # type: ignore[return-value]


def _lower(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    boxes, scores = op.ins
    selected, count = op.outs
    batches, n, _ = shape_of(boxes)
    classes = shape_of(scores)[1]
    groups = batches * classes
    per_class = shape_of(selected)[0] // groups
    ty = elt(scores)
    center = bool(get_int(op, "center_point_box", 0))
    threshold = get_float(op, "score_threshold") if "score_threshold" in op.attributes else None
    iou_threshold = get_float(op, "iou_threshold", 0.0)
    node, hint = node_name(op), kernel_hint(op)
    local = bool(sched.get("local", 1))
    wg = sched.wg

    kept = scratch(fl, [groups, per_class], i32, node)
    counts = scratch(fl, [groups], i32, node)
    offsets = scratch(fl, [groups], i32, node)
    flags_global = None if local else scratch(fl, [groups, n], i8, node)

    def key(k: KernelBuilder, row: list[Idx], i: Idx) -> SSAValue:
        s = k.load(scores, [row[0], row[1], i])
        if threshold is None:
            return s
        return k.select(k.fcmp("ogt", s, k.const(threshold, ty)), s, k.const(-math.inf, ty))

    spec = RowSort(f"{hint}_sort", node, (batches, classes), n, ty, True, wg, local, sched.get("block", 0))

    def greedy(k: GroupBuilder, row: list[Idx], key_at: Callable[[Idx], SSAValue],
               box_at: Callable[[Idx], SSAValue], flags: SSAValue | None) -> None:
        """The greedy walk over one class's sorted candidates. `flags`: a local array to hold
        the suppression flags (the sorted keys, free once the candidates are counted), or
        None for the global scratch flags."""
        b = row[0]
        g = k.add(k.mul(b, classes), row[1])
        if flags is None:
            assert flags_global is not None
            flag_mem, clear, mark = flags_global, k.const(0, i8), k.const(1, i8)

            def flag_index(j: Idx) -> list[Idx]:
                return [g, j]
        else:
            flag_mem, clear, mark = flags, k.const(0.0, ty), k.const(1.0, ty)

            def flag_index(j: Idx) -> list[Idx]:
                return [j]

        def alive(j: Idx) -> SSAValue:
            v = k.read(flag_mem, flag_index(j))
            return k.fcmp("oeq", v, clear) if is_float(v.type) else k.cmp("eq", v, clear)  # type: ignore[return-value]

        candidates: Idx = n
        if threshold is not None:
            # candidates sort first: their number m bounds the walk and the sweeps
            lowest = k.const(-math.inf, ty)
            # the class's count slot holds m until the walk stores the final count
            k.single(lambda: k.store(k.const(0, i32), counts, [g]))
            k.barrier()

            def boundary(j: Idx) -> None:
                """The last candidate (valid, and last or followed by an invalid one) stores m."""
                (next_valid,) = k.if_(k.cmp("slt", j, n - 1),
                                      lambda: [k.fcmp("ogt", key_at(k.add(j, 1)), lowest)],
                                      lambda: [k.const(False, i1)], types=[i1])
                ends = k.cmp("eq", next_valid, k.const(False, i1))
                edge = k.and_(k.fcmp("ogt", key_at(j), lowest), ends)
                k.if_(edge, lambda: (k.store(index_value(k, k.add(j, 1)), counts, [g]), [])[1])

            k.each(n, boundary)
            k.barrier()
            candidates = k.int_to_index(k.read(counts, [g]))
        k.each(n, lambda j: k.store(clear, flag_mem, flag_index(j)))
        k.barrier()
        iou = k.const(iou_threshold, ty)

        def visit(pos: Idx, carry: list[SSAValue]) -> list[SSAValue]:
            taken = carry[0]
            conds = [alive(pos), k.cmp("slt", taken, per_class)]

            def keep() -> list[SSAValue]:
                box = k.int_to_index(box_at(pos))
                k.single(lambda: k.store(index_value(k, box), kept, [g, taken]))
                mine = _corners(k, boxes, b, box, center)
                mine_area = _area(k, mine)

                def test(j: Idx) -> None:
                    def check() -> list[SSAValue]:
                        other = _corners(k, boxes, b, k.int_to_index(box_at(j)), center)
                        hit = _suppresses(k, mine, mine_area, other, iou)
                        k.if_(hit, lambda: (k.store(mark, flag_mem, flag_index(j)), [])[1])
                        return []

                    k.if_(alive(j), check)

                k.each(candidates, test, start=k.add(pos, 1))
                k.barrier()
                return [k.add(taken, 1)]  # type: ignore[list-item]

            return k.if_(k.all_of(conds), keep, lambda: [taken], types=[INDEX])

        (total,) = k.loop(0, candidates, [k.idx(0)], visit)
        k.single(lambda: k.store(index_value(k, total), counts, [g]))

    if local:
        def select(k: GroupBuilder, row: list[Idx]) -> None:
            keys, idx = load_rows_local(k, spec, row, key)
            greedy(k, row, lambda p: k.read(keys, [p]), lambda p: k.read(idx, [p]), keys)

        group_kernel(fl, f"{hint}_select", [batches, classes], wg, select)
    else:
        keys_s, idx_s = sort_global(fl, spec, key)

        def select_sorted(k: GroupBuilder, row: list[Idx]) -> None:
            g = k.add(k.mul(row[0], classes), row[1])
            greedy(k, row, lambda p: k.load(keys_s, [g, p]), lambda p: k.load(idx_s, [g, p]), None)

        group_kernel(fl, f"{hint}_select", [batches, classes], wg, select_sorted)

    def offset_of(k: KernelBuilder, row: list[Idx], i: Idx) -> SSAValue:
        return k.load(counts, [i])

    def write_offset(k: KernelBuilder, row: list[Idx], i: Idx, excl: SSAValue, incl: SSAValue) -> None:
        k.store(excl, offsets, [i])
        k.if_(k.cmp("eq", i, groups - 1), lambda: (k.store(k.pure(arith.ExtSIOp, incl, i64), count, [0]), [])[1])

    scan_rows(fl, f"{hint}_offsets", [], groups, i32, min(wg, 1 << max(0, (groups - 1).bit_length())),
              offset_of, write_offset)

    def compact(k: KernelBuilder, ivs: list[Idx]) -> None:
        b, c, slot = ivs
        g = k.add(k.mul(b, classes), c)
        s32 = index_value(k, slot)

        def move() -> list[SSAValue]:
            dest = k.int_to_index(k.fadd(k.load(offsets, [g]), s32))
            for col, v in enumerate((index_value(k, b), index_value(k, c), k.load(kept, [g, slot]))):
                k.store(k.pure(arith.ExtSIOp, v, i64), selected, [dest, col])
            return []

        k.if_(k.cmp("slt", s32, k.load(counts, [g])), move)
        flat = k.add(k.mul(g, per_class), slot)
        past = k.cmp("sge", k.pure(arith.IndexCastOp, k.idx(flat), i64, key="i64"), k.load(count, [0]))

        def pad() -> list[SSAValue]:
            for col in range(3):
                k.store(k.const(-1, i64), selected, [flat, col])
            return []

        k.if_(past, pad)

    fl.kernel(f"{hint}_compact", [batches, classes, per_class], wg, compact)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    NmsOp: Lowering(frozenset({"wg", "local", "block"}), _check, _lower),
}
