"""map -> one kernel, one thread per output element.

Reads ``wg`` only. Inputs are read with numpy broadcasting at the output index (a size-1 dim
is read at 0), the body is inlined once per element, any element types.

Adjacent output dims that every operand either spans whole or broadcasts over together are
merged first, through `vision.reshape` views (numpy's coalescing of broadcast dims): a
squeeze-and-excitation scale x * s (x 1xCx7x7, s 1xCx1x1) runs over 1xCx49, not 1xCx7x7, so
the CPU backend's innermost loop is 49 elements long instead of 7 (too short for vectors:
EfficientNet-B0's scale multiplies ran scalar) and every target's index math shrinks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from visc.dialects.vision import MapOp, VisionOp, shape_of
from visc.passes.lowering.common import (
    Lowering,
    Schedule,
    kernel_hint,
    load_broadcast,
    node_name,
    only_wg,
)
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder


def _right_aligned(shape: Sequence[int], rank: int) -> tuple[int, ...]:
    """`shape` with leading 1s up to `rank` dims (numpy broadcasting)."""
    return (1,) * (rank - len(shape)) + tuple(shape)


def coalesced_dims(out: Sequence[int], ins: Sequence[Sequence[int]]) -> list[list[int]]:
    """Groups of adjacent output dims that may be merged: within a group every operand (shapes
    right-aligned with `out`, numpy style) spans each dim of size > 1 whole, or broadcasts over
    each of them."""
    padded = [_right_aligned(s, len(out)) for s in ins]
    groups: list[list[int]] = []
    kinds: list[tuple[bool, ...] | None] = []  # per group: which operands span it (None: all dims size 1)
    for d in range(len(out)):
        kind = None if out[d] == 1 else tuple(s[d] == out[d] for s in padded)
        if groups and (kind is None or kinds[-1] is None or kind == kinds[-1]):
            groups[-1].append(d)
            kinds[-1] = kinds[-1] if kind is None else kind
        else:
            groups.append([d])
            kinds.append(kind)
    return groups


def lower_map(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    out, ins = op.outs[0], list(op.ins)
    shape = shape_of(out)
    groups = coalesced_dims(shape, [shape_of(v) for v in ins])
    if len(groups) < len(shape):
        node = node_name(op)

        def merged(s: Sequence[int]) -> tuple[int, ...]:
            padded = _right_aligned(s, len(shape))
            return tuple(math.prod(padded[d] for d in g) for g in groups)

        ins = [fl.view(v, merged(shape_of(v)), f"{node}:coalesced{i}") for i, v in enumerate(ins)]
        out = fl.view(out, merged(shape), f"{node}:coalesced_out")

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        args = [load_broadcast(k, v, ivs) for v in ins]
        (res,) = k.inline_body(op.body, args)
        k.store(res, out, ivs)

    fl.kernel(kernel_hint(op), list(shape_of(out)), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    MapOp: Lowering(frozenset({"wg"}), only_wg, lower_map),
}
