"""concat, split, slice, pad, transpose, gather, gather_elements, gather_nd, scatter_nd -> copy
kernels, one thread per written element.

All read ``wg`` only and work on any element type. Concat and split build one kernel per
input / output (each a dense copy into or out of a slab), so no thread branches on which
operand it belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.ir import SSAValue

from visc.dialects.vision import (
    ConcatOp,
    GatherElementsOp,
    GatherNDOp,
    GatherOp,
    PadOp,
    ScatterNDOp,
    SliceOp,
    SplitOp,
    TransposeOp,
    VisionOp,
    get_float,
    get_int,
    get_ints,
    get_str,
    shape_of,
)
from visc.passes.graph.concat_in_place import in_place_inputs
from visc.passes.lowering.common import (
    Lowering,
    Problems,
    Schedule,
    check_wg,
    elt,
    kernel_hint,
    node_name,
    only_wg,
)
from visc.passes.lowering.loops import Cond, FunctionLowering, Idx, KernelBuilder, is_float


def _axis(op: VisionOp, rank: int) -> int:
    return get_int(op, "axis") % rank if rank else 0


def lower_concat(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    out = op.outs[0]
    axis = _axis(op, len(shape_of(out)))
    offset = 0
    skip = in_place_inputs(op)  # already written into their slab (vision-concat-in-place)
    for q, src in enumerate(op.ins):
        if q in skip:
            offset += shape_of(src)[axis]
            continue

        def body(k: KernelBuilder, ivs: list[Idx], src=src, offset=offset) -> None:
            dst = list(ivs)
            dst[axis] = k.add(dst[axis], offset)
            k.store(k.load(src, ivs), out, dst)

        fl.kernel(kernel_hint(op, str(q)), list(shape_of(src)), sched.wg, body)
        offset += shape_of(src)[axis]


def lower_split(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    src = op.ins[0]
    axis = _axis(op, len(shape_of(src)))
    offset = 0
    for q, dst_ref in enumerate(op.outs):

        def body(k: KernelBuilder, ivs: list[Idx], dst_ref=dst_ref, offset=offset) -> None:
            idx = list(ivs)
            idx[axis] = k.add(idx[axis], offset)
            k.store(k.load(src, idx), dst_ref, ivs)

        fl.kernel(kernel_hint(op, str(q)), list(shape_of(dst_ref)), sched.wg, body)
        offset += shape_of(dst_ref)[axis]


def lower_slice(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    src, out = op.ins[0], op.outs[0]
    starts, steps = get_ints(op, "starts"), get_ints(op, "steps")

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        idx = [k.add(s, k.mul(i, st)) for i, s, st in zip(ivs, starts, steps, strict=True)]
        k.store(k.load(src, idx), out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


def check_pad(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    mode = get_str(op, "mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        problems.append(f"pad mode '{mode}' is not supported (constant, reflect, edge, wrap)")
    if mode != "constant" and 0 in shape_of(op.ins[0]) and 0 not in shape_of(op.outs[0]):
        problems.append(f"pad mode '{mode}' needs a non-empty input")
    return problems


def lower_pad(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """ONNX semantics: negative pads crop, then the remaining input is padded by the mode
    (reflect and wrap repeat as numpy does when a pad exceeds the input)."""
    src, out = op.ins[0], op.outs[0]
    shape, oshape = shape_of(src), shape_of(out)
    rank = len(shape)
    pads = get_ints(op, "pads")
    mode = get_str(op, "mode", "constant")
    ty = elt(out)
    value = get_float(op, "value", 0.0)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        idx: list[Idx] = []
        oks = []
        for d in range(rank):
            # negative pads crop first; the remaining [crop, crop + n) is what gets padded
            crop = max(0, -pads[d])
            n = shape[d] - crop - max(0, -pads[rank + d])
            pb = max(0, pads[d])
            a = k.sub(ivs[d], pb)
            lo, hi = -pb, oshape[d] - 1 - pb
            if lo >= 0 and hi < n:
                idx.append(k.add(a, crop))
                continue
            if n == 0:  # constant mode on an empty dim: nothing to read
                oks.append(False)
                idx.append(0)
                continue
            if mode == "constant":
                oks.append(k.in_range(a, 0, n, lo, hi))
                a = k.clamp(a, 0, n - 1)
            elif mode == "edge":
                a = k.clamp(a, 0, n - 1)
            elif mode == "wrap":
                lift = n * (-(-max(0, -lo) // n))
                a = k.rem(k.add(a, lift), n)
            elif n == 1:  # reflect of a single element
                a = 0
            else:  # reflect: period 2(n-1), mirrored in its second half
                period = 2 * (n - 1)
                lift = period * (-(-max(0, -lo) // period))
                r = k.rem(k.add(a, lift), period)
                a = k.select_idx(k.cmp("slt", r, n), r, k.sub(period, r))
            idx.append(k.add(a, crop))
        if any(ok is False for ok in oks):
            v = k.const(value if is_float(ty) else int(value), ty)
        else:
            v = k.load(src, idx)
            if oks:
                fill = k.const(value if is_float(ty) else int(value), ty)
                v = k.select(k.all_of(oks), v, fill)
        k.store(v, out, ivs)

    fl.kernel(kernel_hint(op), list(oshape), sched.wg, body)


def lower_transpose(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    src, out = op.ins[0], op.outs[0]
    perm = get_ints(op, "perm")

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        idx: list[Idx] = [0] * len(perm)
        for i, p in enumerate(perm):
            idx[p] = ivs[i]
        k.store(k.load(src, idx), out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


def _checked(k: KernelBuilder, loaded: SSAValue, n: int, status: SSAValue | None) -> Idx:
    """An index input's value as a position in a dim of size ``n``: negatives wrap; one still
    outside [0, n) is flagged in ``status`` and clamped, so the access stays in bounds."""
    raw = k.int_to_index(loaded)
    wrapped = k.select_idx(k.cmp("slt", raw, 0), k.add(raw, n), raw)
    if status is not None:
        k.flag(k.or_(k.cmp("slt", wrapped, 0), k.cmp("sge", wrapped, n)), status, loaded)
    return k.clamp(wrapped, 0, n - 1)


def _range_message(axis: int, n: int) -> str:
    return f"index out of range: axis {axis} has {n} entries (valid indices {-n} to {n - 1})"


def lower_gather(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """Indices wrap when negative. An index outside [-n, n) is an error, as in onnxruntime:
    the kernel flags it in a status word the runtime reports after the run (naming the
    node), and reads a clamped row meanwhile so no access leaves the buffer. Indices that
    are constants were checked at import and need no word."""
    data, indices, out = op.ins[0], op.ins[1], op.outs[0]
    dshape = shape_of(data)
    axis = _axis(op, len(dshape))
    r = len(shape_of(indices))
    n = dshape[axis]
    status = fl.status(_range_message(axis, n), indices)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        pos = _checked(k, k.load(indices, ivs[axis:axis + r]), n, status)
        k.store(k.load(data, [*ivs[:axis], pos, *ivs[axis + r:]]), out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


def lower_gather_elements(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """One thread per output element, reading data at its own position with the axis
    coordinate taken from indices."""
    data, indices, out = op.ins[0], op.ins[1], op.outs[0]
    axis = get_int(op, "axis")
    n = shape_of(data)[axis]
    status = fl.status(_range_message(axis, n), indices)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        pos = _checked(k, k.load(indices, ivs), n, status)
        k.store(k.load(data, [*ivs[:axis], pos, *ivs[axis + 1:]]), out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


def _tuple_message(dims: Sequence[int], first: int) -> str:
    spans = ", ".join(f"axis {first + j}: {-n} to {n - 1}" for j, n in enumerate(dims))
    return f"index out of range (valid indices {spans})"


def lower_gather_nd(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """One thread per output element: its leading coordinates pick an index tuple, which
    with the shared batch coordinates and its trailing coordinates addresses data."""
    data, indices, out = op.ins[0], op.ins[1], op.outs[0]
    dshape, ishape = shape_of(data), shape_of(indices)
    b, q = get_int(op, "batch_dims", 0), ishape[-1]
    lead = len(ishape) - 1
    dims = dshape[b:b + q]
    status = fl.status(_tuple_message(dims, b), indices)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        coords = [_checked(k, k.load(indices, [*ivs[:lead], j]), n, status) for j, n in enumerate(dims)]
        k.store(k.load(data, [*ivs[:b], *coords, *ivs[lead:]]), out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


def lower_scatter_nd(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """One thread per output element, walking every index tuple in order and combining the
    update of each tuple that addresses it: no two threads write one element, and repeated
    tuples apply in order (ONNX's sequential semantics) without atomics. The walk costs
    elements x tuples, small for the post-processing tensors ScatterND updates in CNNs."""
    data, indices, updates = op.ins
    out = op.outs[0]
    dshape, ishape = shape_of(data), shape_of(indices)
    q = ishape[-1]
    count = math.prod(ishape[:-1])
    node = node_name(op)
    flat_idx = fl.view(indices, [count, q], node)
    flat_upd = fl.view(updates, [count, *dshape[q:]], node)
    status = fl.status(_tuple_message(dshape[:q], 0), indices)
    reduction = get_str(op, "reduction", "none")

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        def step(j: Idx, carry: list[SSAValue]) -> list[SSAValue]:
            hit: Cond = True
            for c in range(q):
                pos = _checked(k, k.load(flat_idx, [j, c]), dshape[c], status)
                hit = k.and_(hit, k.cmp("eq", pos, ivs[c]))
            new = k.load(flat_upd, [j, *ivs[q:]])
            combined = {"none": lambda: new, "add": lambda: k.fadd(carry[0], new),
                        "mul": lambda: k.fmul(carry[0], new), "max": lambda: k.fmax(carry[0], new),
                        "min": lambda: k.fmin(carry[0], new)}[reduction]()
            return [k.select(hit, combined, carry[0])]

        (value,) = k.loop(0, count, [k.load(data, ivs)], step)
        k.store(value, out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    ConcatOp: Lowering(frozenset({"wg"}), only_wg, lower_concat),
    SplitOp: Lowering(frozenset({"wg"}), only_wg, lower_split),
    SliceOp: Lowering(frozenset({"wg"}), only_wg, lower_slice),
    PadOp: Lowering(frozenset({"wg"}), check_pad, lower_pad),
    TransposeOp: Lowering(frozenset({"wg"}), only_wg, lower_transpose),
    GatherOp: Lowering(frozenset({"wg"}), only_wg, lower_gather),
    GatherElementsOp: Lowering(frozenset({"wg"}), only_wg, lower_gather_elements),
    GatherNDOp: Lowering(frozenset({"wg"}), only_wg, lower_gather_nd),
    ScatterNDOp: Lowering(frozenset({"wg"}), only_wg, lower_scatter_nd),
}
