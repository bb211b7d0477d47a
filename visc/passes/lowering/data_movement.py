"""concat, split, slice, pad, transpose, gather -> copy kernels, one thread per written element.

All read ``wg`` only and work on any element type. Concat and split build one kernel per
input / output (each a dense copy into or out of a slab), so no thread branches on which
operand it belongs to.
"""

from __future__ import annotations

from visc.dialects.vision import (
    ConcatOp,
    GatherOp,
    PadOp,
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
    only_wg,
)
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder, is_float


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


def lower_gather(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """Indices wrap when negative and are clamped into range (ONNX leaves out-of-range
    indices undefined; clamping keeps every access in bounds)."""
    data, indices, out = op.ins[0], op.ins[1], op.outs[0]
    dshape = shape_of(data)
    axis = _axis(op, len(dshape))
    r = len(shape_of(indices))
    n = dshape[axis]

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        raw = k.int_to_index(k.load(indices, ivs[axis:axis + r]))
        wrapped = k.select_idx(k.cmp("slt", raw, 0), k.add(raw, n), raw)
        pos = k.clamp(wrapped, 0, n - 1)
        k.store(k.load(data, [*ivs[:axis], pos, *ivs[axis + r:]]), out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    ConcatOp: Lowering(frozenset({"wg"}), only_wg, lower_concat),
    SplitOp: Lowering(frozenset({"wg"}), only_wg, lower_split),
    SliceOp: Lowering(frozenset({"wg"}), only_wg, lower_slice),
    PadOp: Lowering(frozenset({"wg"}), check_pad, lower_pad),
    TransposeOp: Lowering(frozenset({"wg"}), only_wg, lower_transpose),
    GatherOp: Lowering(frozenset({"wg"}), only_wg, lower_gather),
}
