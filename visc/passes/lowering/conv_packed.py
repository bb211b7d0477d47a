"""conv2d over packed weights: vectors run along output channels (schedule key ``pack``).

The plain conv2d kernel (conv.py) vectorizes along output columns, which wastes lanes when
rows are short (ResNet's 7x7 and 14x14 layers fill 7 or 14 of 16 lanes) and reads ``tile_oc``
weights as scalars from addresses C*KH*KW apart. With ``pack = V`` (4, 8 or 16),
`vision-pack-weights` has stored the weight as (O/V, KH, KW, C/groups, V): the V output
channels of one tap are adjacent, one aligned vector load. A thread then owns
``tile_oc / V`` channel vectors x ``tile_ow`` consecutive output columns; each input pixel it
reads is one scalar broadcast into every channel vector, so no lane is ever idle and the
output width no longer matters. This is the layout CPU libraries use for direct convolution.

Keys read (besides ``pack``): ``wg``, ``tile_oc`` (output channels per thread, a multiple of
V dividing the channels of one group), ``tile_ow`` (consecutive output columns, at most OW;
the last tile of a row is shifted left to end at the last column, so it recomputes a few of
its neighbour's columns and stores the same values), ``flat`` (1x1 convs: one long row, as in
conv.py), ``unroll_k``, ``unroll_win``. ``vec`` must stay 1.

The reduction runs kh, kw outside and channels inside. Per tap, whether all of a thread's
input columns lie inside the row is loop-invariant, so the channel loop is emitted twice:
direct loads, and loads masked to zero for taps over the padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects import memref
from xdsl.ir import SSAValue

from visc.dialects.vision import VisionOp, get_int, shape_of
from visc.errors import CompileError
from visc.passes.lowering.common import (
    Problems,
    Schedule,
    check_range,
    check_unroll,
    check_wg,
    describe,
    elt,
    epilogue,
    load_broadcast,
)
from visc.passes.lowering.conv import _clamped, _Geometry
from visc.passes.lowering.loops import (
    FunctionLowering,
    Idx,
    KernelBuilder,
    broadcast_index,
    vectorizable_body,
)

PACK_WIDTHS = (4, 8, 16)


def check_conv2d_packed(op: VisionOp, sched: Schedule, og: int, ow: int) -> Problems:
    """Legality of a ``pack`` schedule for a conv with `og` channels per group and `ow`
    output columns (after ``flat``)."""
    problems: Problems = []
    check_wg(problems, sched)
    lanes = sched.get("pack", 0)
    if lanes not in PACK_WIDTHS:
        problems.append(f"schedule pack={lanes} is illegal (one of {', '.join(map(str, PACK_WIDTHS))})")
        return problems
    if og % lanes:
        problems.append(f"schedule pack={lanes} must divide the {og} output channels of a group")
    toc = check_range(problems, sched, "tile_oc", lanes, lanes, og, f"{og} output channels per group")
    if toc % lanes or (toc and og % toc):
        problems.append(f"schedule tile_oc={toc} must be a multiple of pack={lanes} and divide {og}")
    check_range(problems, sched, "tile_ow", 1, 1, ow, f"the output has {ow} columns")
    if sched.get("vec", 1) != 1:
        problems.append("schedule vec must be 1 with pack (vectors run along output channels)")
    packed = get_int(op, "packed_oc", 0)
    if packed != lanes and len(shape_of(op.ins[1])) == 5:
        problems.append(f"the weight is packed by {packed}, the schedule asks for pack={lanes}")
    check_unroll(problems, sched, "unroll_k")
    check_unroll(problems, sched, "unroll_win")
    return problems


@dataclass(frozen=True)
class _Fuse:
    """A fuse operand of the epilogue: `flat` is its (N, O/V, V, OH*OW) view when it has the
    output's whole shape (a lane is then a constant index, like the output's), else None."""

    value: SSAValue
    flat: SSAValue | None

    def lanes(self, k: KernelBuilder, idx: list[Idx], lane0: list[Idx], lanes: int) -> SSAValue:
        """The operand at `lanes` consecutive channels from output index `idx`: one broadcast
        scalar when it does not vary along channels, else a gather (channels are a plane
        apart in NCHW)."""
        shape = shape_of(self.value)
        axis = len(shape) - 3  # the NCHW channel axis, right-aligned
        if axis < 0 or shape[axis] == 1:
            return k.vbroadcast(load_broadcast(k, self.value, idx), lanes)
        if self.flat is not None:
            n, blk, pos = lane0
            return k.vfrom([k.load(self.flat, [n, blk, q, pos]) for q in range(lanes)])
        n, oc, oh, col = idx
        return k.vfrom([k.load(self.value, broadcast_index(shape, [n, k.add(oc, q), oh, col])) for q in range(lanes)])


def lower_conv2d_packed(op: VisionOp, sched: Schedule, fl: FunctionLowering, g: _Geometry, x: SSAValue, w: SSAValue,
                        bias: SSAValue | None, out: SSAValue, fuse: list[SSAValue], name: str) -> None:
    """One kernel over (batch, channel tiles, rows, column tiles); `g` is conv.py's geometry
    (already flattened when ``flat``), `x`/`out`/`fuse` the (possibly viewed) operands."""
    lanes, toc, tow = sched.get("pack", 8), sched.get("tile_oc", 8), sched.get("tile_ow", 1)
    if get_int(op, "packed_oc", 0) != lanes:
        raise CompileError(f"{describe(op)}: schedule pack={lanes} needs the weight packed by "
                           f"vision-pack-weights before lower-vision-to-loops")
    nvec = toc // lanes
    unroll_k, unroll_win = sched.get("unroll_k", 1), sched.get("unroll_win", 1)
    col_tiles = -(-g.ow // tow)
    typ = elt(out)
    by_lane = (g.n, g.o // lanes, lanes, g.oh * g.ow)
    out_flat = fl.view(out, by_lane, name + ":lanes")
    fused = [_Fuse(f, fl.view(f, by_lane, name + f":lanes{i}") if shape_of(f) == shape_of(out) else None)
             for i, f in enumerate(fuse)]

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        n, ot, oh, t = ivs
        oc0 = k.mul(ot, toc)
        blk0 = k.mul(ot, nvec)  # first channel vector of the packed weight
        col0 = k.min(k.mul(t, tow), g.ow - tow) if col_tiles * tow > g.ow else k.mul(t, tow)
        col_hi = g.ow - tow  # largest col0
        cin0 = k.mul(k.div(oc0, g.og), g.cg) if g.groups > 1 else 0
        zero_s = k.const(0.0, typ)
        zero_v = k.vbroadcast(zero_s, lanes)
        ih0 = k.sub(k.mul(oh, g.sh), g.pt)

        def over_kh(kh: Idx, accs: list[SSAValue]) -> list[SSAValue]:
            kh_lo, kh_hi = (kh, kh) if isinstance(kh, int) else (0, g.kh - 1)
            ih, row_ok = _clamped(k, k.add(ih0, k.mul(kh, g.dh)), -g.pt + kh_lo * g.dh,
                                  (g.oh - 1) * g.sh - g.pt + kh_hi * g.dh, g.h)

            def over_kw(kw: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                kw_lo, kw_hi = (kw, kw) if isinstance(kw, int) else (0, g.kw - 1)
                taps = [_clamped(k, k.add(k.sub(k.mul(k.add(col0, j), g.sw), g.pl), k.mul(kw, g.dw)),
                                 j * g.sw - g.pl + kw_lo * g.dw, (col_hi + j) * g.sw - g.pl + kw_hi * g.dw, g.w)
                        for j in range(tow)]

                def channels(masked: bool) -> list[SSAValue]:
                    def over_c(c: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                        ci = k.add(cin0, c)
                        xs = []
                        for iw, ok in taps:
                            v = k.load(x, [n, ci, ih, iw])
                            xs.append(k.vbroadcast(k.select(ok, v, zero_s) if masked else v, lanes))
                        ws = [k.vload(w, [k.add(blk0, i), kh, kw, c, 0], lanes) for i in range(nvec)]
                        return [k.vfma(ws[i], xs[j], accs[i * tow + j]) for i in range(nvec) for j in range(tow)]

                    return k.loop(0, g.cg, accs, over_c, unroll=unroll_k)

                inside = k.all_of([ok for _, ok in taps])
                types = [a.type for a in accs]
                return k.if_(row_ok, lambda: k.if_(inside, lambda: channels(False), lambda: channels(True), types),
                             lambda: accs, types)

            return k.loop(0, g.kw, accs, over_kw, unroll=unroll_win)

        accs = k.loop(0, g.kh, [zero_v] * (nvec * tow), over_kh, unroll=unroll_win)
        _store(k, op, g, out_flat, fused, bias, accs, n, oc0, blk0, oh, col0, lanes, nvec, tow)

    fl.kernel(name, [g.n, g.o // toc, g.oh, col_tiles], sched.wg, body)


def _store(k: KernelBuilder, op: VisionOp, g: _Geometry, out: SSAValue, fuse: Sequence[_Fuse], bias: SSAValue | None,
           accs: Sequence[SSAValue], n: Idx, oc0: Idx, blk0: Idx, oh: Idx, col0: Idx, lanes: int, nvec: int,
           tow: int) -> None:
    """Bias, epilogue and store: channel vectors leave lane by lane (outputs are NCHW), `out`
    viewed as (N, O/V, V, OH*OW) so that lane q is index q. A vector goes through a private
    array and a loop over its lanes marked for full unrolling: a few IR ops per vector, where
    a lane-by-lane store was two or three per lane (a 2x8 tile has 256 lanes, three quarters
    of a packed kernel's IR and of its lowering time: DenseNet-121 compiled in 13 s, not 7).
    Unrolled, the compiler keeps the array in registers: the machine code is the same."""
    # a body of plain float arithmetic runs on the vectors (none: the vector as it is)
    vectors = not op.body.blocks or vectorizable_body(op.body)
    lane_buf: SSAValue | None = None
    if vectors:
        alloca = memref.AllocaOp.get(elt(out), shape=[lanes])
        k.emit(alloca)
        lane_buf = alloca.memref
    for i in range(nvec):
        oc = k.add(oc0, i * lanes)
        blk = k.add(blk0, i)
        b = k.vload(bias, [oc], lanes) if bias is not None else None
        for j in range(tow):
            col = k.add(col0, j)
            pos = k.add(k.mul(oh, g.ow), col)
            acc = accs[i * tow + j]
            if b is not None:
                acc = k.fadd(acc, b)
            if lane_buf is None:  # a body that is not plain float arithmetic: lane by lane
                for q in range(lanes):
                    v = epilogue(k, op, k.vextract(acc, q), [n, k.add(oc, q), oh, col], [f.value for f in fuse])
                    k.store(v, out, [n, blk, q, pos])
                continue
            if op.body.blocks:
                fused = [f.lanes(k, [n, oc, oh, col], [n, blk, pos], lanes) for f in fuse]
                (acc,) = k.inline_body_vector(op.body, [acc, *fused], lanes)
            k.vstore(acc, lane_buf, [0])

            def lane(q: Idx, carried: list[SSAValue], buf: SSAValue = lane_buf, blk: Idx = blk,
                     pos: Idx = pos) -> list[SSAValue]:
                k.store(k.load(buf, [q]), out, [n, blk, q, pos])
                return []

            k.loop(0, lanes, [], lane, unroll=0)
