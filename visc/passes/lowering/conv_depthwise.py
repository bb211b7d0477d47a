"""Depthwise conv2d over row blocks (schedule key ``rows``), for CPUs.

The general kernel (conv.py) gives a depthwise conv one channel per thread and vectors of
output columns spread over threads, so a thread's column starts are only known at run time:
every tap then tests whether its vector lies inside the row, edge vectors are assembled lane
by lane from masked scalar loads, and a stride-2 vector is 16 scalar loads. On small images
(EfficientNet's 28x28 and 14x14 with 5x5 windows) nearly every tap takes that slow path.

Here a thread owns one channel and ``rows`` consecutive output rows, and walks every column
vector of those rows itself, so each vector's first column is a compile-time constant:
whether a tap leaves the row, which lanes read padding, and which input columns a strided
vector needs are all decided while lowering. A vector is then one load at stride 1 inside
the row, or a few whole-vector loads whose lanes are picked (extract/insert chains that
LLVM folds into shuffles) with zeros for padding. Each input row a thread reads feeds the
taps of every output row of its block that uses it, so a row block of R rows loads
(R - 1) * stride + KH input rows instead of R * KH.

Keys: ``rows`` (output rows per thread, 1..min(OH, 8); the last block is shifted up to end
at the last row and skips storing the rows its neighbour stores), ``vec`` (4, 8 or 16
lanes, at most OW; the last column vector is shifted left the same way), ``flat``, ``wg``.

With ``flat = 1`` (and then ``rows = 1``) a thread walks its channel's whole plane as one
flat row (`_lower_flat`): for rows narrower than a vector (7x7, 14x14), where row vectors
would leave lanes idle and nearly every one would cross the padding. It needs stride 1 and
output rows as wide as the input's, so that a tap is a fixed offset of the flat index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.dialects.builtin import VectorType
from xdsl.ir import SSAValue

from visc.dialects.vision import VisionOp, get_int
from visc.passes.lowering.common import ColumnGroup, Problems, Schedule, check_range, check_wg, elt
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder

if TYPE_CHECKING:
    from visc.passes.lowering.conv import _Geometry, _Plan

DEPTHWISE_WIDTHS = (4, 8, 16)
MAX_ROWS = 8


def is_depthwise(op: VisionOp, cg: int, og: int) -> bool:
    return get_int(op, "groups", 1) > 1 and cg == 1 and og == 1


def check_conv2d_depthwise(op: VisionOp, sched: Schedule, cg: int, og: int, oh: int, ow: int) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    if not is_depthwise(op, cg, og):
        problems.append("schedule rows is for depthwise convs (one input and one output channel per group)")
    check_range(problems, sched, "rows", 1, 1, min(oh, MAX_ROWS), f"the output has {oh} rows (at most {MAX_ROWS})")
    vec = sched.get("vec", 1)
    if vec not in DEPTHWISE_WIDTHS or vec > ow:
        problems.append(f"schedule vec={vec} with rows must be one of {DEPTHWISE_WIDTHS} and at most the "
                        f"output's {ow} columns")
    for key, neutral in (("tile_oc", 1), ("tile_ow", 1), ("pack", 0)):
        if sched.get(key, neutral) != neutral:
            problems.append(f"schedule {key} is not read with rows (a thread walks whole rows)")
    return problems


def _row_vector(k: KernelBuilder, x: SSAValue, n: Idx, c: Idx, ih: Idx, start: int, stride: int, lanes: int,
                width: int, zero: SSAValue) -> SSAValue:
    """Input columns start, start + stride, ... (`lanes` of them) of row `ih` as a vector,
    zero where a column lies in the padding; `start` is static, so the choice of loads is."""
    cols = [start + q * stride for q in range(lanes)]
    inside = [0 <= col < width for col in cols]
    if stride == 1 and all(inside):
        return k.vload(x, [n, c, ih, start], lanes)
    valid = [col for col, ok in zip(cols, inside, strict=True) if ok]
    if not valid:
        return k.vbroadcast(zero, lanes)
    if width < lanes:  # a row narrower than a vector: scalar loads
        return k.vfrom([k.load(x, [n, c, ih, col]) if ok else zero for col, ok in zip(cols, inside, strict=True)])
    bases: list[int] = []
    pos = min(valid[0], width - lanes)
    while True:
        bases.append(pos)
        if pos + lanes > valid[-1]:
            break
        pos = min(pos + lanes, width - lanes)
    loaded = [k.vload(x, [n, c, ih, b], lanes) for b in bases]
    picked = []
    for col, ok in zip(cols, inside, strict=True):
        if not ok:
            picked.append(zero)
            continue
        i = next(i for i, b in enumerate(bases) if b <= col < b + lanes)
        picked.append(k.vextract(loaded[i], col - bases[i]))
    return k.vfrom(picked)


def flat_depthwise(op: VisionOp) -> bool:
    """Whether depthwise `op` may run with ``flat = 1`` (`flat_window`, and fuse operands
    that follow the flattened output)."""
    from visc.passes.lowering.conv import _flat_fuse_ok, _geometry

    g = _geometry(op)
    return flat_window(g) and _flat_fuse_ok(op, g)


def flat_window(g: _Geometry) -> bool:
    """Whether every tap of a depthwise window reads the input pixel at a fixed offset from
    the output pixel's flat index (stride 1, output rows as wide as the input's), so the
    plane can be walked as one flat row (``flat = 1``)."""
    return (g.sh, g.sw) == (1, 1) and g.ow == g.w


def lower_conv2d_depthwise(sched: Schedule, fl: FunctionLowering, plan: _Plan, name: str,
                           window: _Geometry | None = None) -> None:
    """One kernel over (batch, channel, row blocks); `plan` is conv.py's plan of one channel
    by one column vector (its geometry, operands and store step). With ``flat``, `plan` is
    over the flattened plane and `window` is the conv's own geometry."""
    if window is not None:
        return _lower_flat(sched, fl, plan, name, window)
    rows, vec = sched.get("rows", 1), plan.vec
    g, x, w = plan.g, plan.x, plan.w
    blocks = -(-g.oh // rows)
    shifted_rows = blocks * rows > g.oh
    starts = [min(j * vec, g.ow - vec) for j in range(-(-g.ow // vec))]
    shifted_cols = len(starts) * vec > g.ow
    typ = elt(x)
    span = (rows - 1) * g.sh + (g.kh - 1) * g.dh + 1  # input rows a block reads

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        n, c, rb = ivs
        first = k.mul(rb, rows)
        oh0 = k.min(first, g.oh - rows) if shifted_rows else first
        ih0 = k.sub(k.mul(oh0, g.sh), g.pt)
        zero = k.const(0.0, typ)
        zero_v = k.vbroadcast(zero, vec)
        weights = [[k.vbroadcast(k.load(w, [c, 0, i, j]), vec) for j in range(g.kw)] for i in range(g.kh)]
        vtype = VectorType(typ, [vec])
        for j, col0 in enumerate(starts):
            accs = [zero_v] * rows
            for t in range(span):
                taps = [(r, (t - r * g.sh) // g.dh) for r in range(rows)
                        if t >= r * g.sh and (t - r * g.sh) % g.dh == 0 and (t - r * g.sh) // g.dh < g.kh]
                if not taps:
                    continue
                lo = -g.pt + t
                hi = (g.oh - rows) * g.sh - g.pt + t
                ih = k.add(ih0, t)
                row_ok = k.in_range(ih, 0, g.h, lo, hi)
                clamped = k.clamp(ih, 0, g.h - 1) if lo < 0 or hi >= g.h else ih

                def use_row(taps: list[tuple[int, int]] = taps, clamped: Idx = clamped, accs: list[SSAValue] = accs,
                            col0: int = col0) -> list[SSAValue]:
                    new = list(accs)
                    for kw in range(g.kw):
                        xv = _row_vector(k, x, n, c, clamped, col0 * g.sw - g.pl + kw * g.dw, g.sw, vec, g.w, zero)
                        for r, kh in taps:
                            new[r] = k.vfma(xv, weights[kh][kw], new[r])
                    return new

                accs = k.if_(row_ok, use_row, lambda accs=accs: list(accs), [vtype] * rows)
            last = shifted_cols and j == len(starts) - 1
            group = ColumnGroup(col0, True, col0, col0, last)
            for r in range(rows):
                oh = k.add(oh0, r)

                def store(oh: Idx = oh, acc: SSAValue = accs[r], group: ColumnGroup = group) -> list[SSAValue]:
                    plan.store(k, n, [c], oh, [group], [acc])
                    return []

                if shifted_rows and r < rows - 1:  # rows the previous block also stores
                    k.if_(k.cmp("sge", oh, first), store)
                else:
                    store()

    fl.kernel(name, [g.n, g.o, blocks], sched.wg, body)


def _lower_flat(sched: Schedule, fl: FunctionLowering, plan: _Plan, name: str, g: _Geometry) -> None:
    """A thread per (batch, channel) walks its whole plane as one flat row of vectors (small
    images: 7x7 and 14x14 rows fill a quarter or a half of a 16-lane vector, and each of their
    vectors runs into the padding). A tap (kh, kw) reads the input at the flat offset
    (kh * dh - pt) * W + kw * dw - pl from the output's index, so each vector of a tap is one
    load at a static position; the lanes whose row or column falls in the padding are known
    here and zeroed (inserts that LLVM folds into one blend)."""
    vec, plane = plan.vec, g.oh * g.ow
    starts = [min(j * vec, plane - vec) for j in range(-(-plane // vec))]
    shifted = len(starts) * vec > plane
    typ = elt(plan.x)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        n, c = ivs
        zero = k.const(0.0, typ)
        zero_v = k.vbroadcast(zero, vec)
        weights: dict[tuple[int, int], SSAValue] = {}
        for j, p0 in enumerate(starts):
            acc = zero_v
            for kh in range(g.kh):
                dr = kh * g.dh - g.pt
                for kw in range(g.kw):
                    dc = kw * g.dw - g.pl
                    ok = [0 <= (p0 + q) // g.ow + dr < g.h and 0 <= (p0 + q) % g.ow + dc < g.w for q in range(vec)]
                    if not any(ok):
                        continue
                    src = p0 + dr * g.w + dc  # lanes outside the plane come zero already
                    xv = _row_vector(k, plan.x, n, c, 0, src, 1, vec, g.h * g.w, zero)
                    for q in range(vec):
                        if not ok[q] and 0 <= src + q < g.h * g.w:
                            xv = k.vinsert(zero, xv, q)
                    if (kh, kw) not in weights:
                        weights[kh, kw] = k.vbroadcast(k.load(plan.w, [c, 0, kh, kw]), vec)
                    acc = k.vfma(xv, weights[kh, kw], acc)
            group = ColumnGroup(p0, True, p0, p0, shifted and j == len(starts) - 1)
            plan.store(k, n, [c], 0, [group], [acc])

    fl.kernel(name, [g.n, g.o], sched.wg, body)
