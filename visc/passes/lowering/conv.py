"""conv2d -> one register-tiled kernel; conv2d_transpose -> one gather kernel.

conv2d reads these schedule keys:

* ``wg``         work-group size (threads, flattened).
* ``tile_oc``    output channels per thread (must divide the channels of one group).
* ``tile_ow``    output column groups per thread, 1..ceil(OW / vec).
* ``vec``        lanes per column group (1, 2, 3, 4, 8, 16; at most OW): ``vec`` adjacent
                 output columns held in one vector accumulator. 1 = scalar threads.
* ``flat``       1: treat the output rows as one row of OH*OW columns (only for a 1x1 kernel
                 at stride 1 without padding, through `vision.reshape` views), so small images
                 still fill whole vectors; tile_ow and vec then count flat columns. With
                 ``rows``, a depthwise window at stride 1 over rows as wide as the input's
                 (conv_depthwise.py).
* ``unroll_k``   unroll hint of the input-channel loop (0 = fully; 1 = none).
* ``unroll_win`` unroll hint of the kernel-window loops kh, kw (0 = fully; 1 = none).

Each thread owns a ``tile_oc x tile_ow`` block of accumulators (loop iter_args; vectors of
``vec`` columns when ``vec > 1``). Column groups are distributed cyclically -- thread ``t`` of
a row computes groups ``t, t + S, t + 2S, ...`` with ``S = ceil(groups / tile_ow)`` -- so for
every register column consecutive threads touch consecutive output (and, at stride 1, input)
addresses: coalesced on GPUs. CPU OpenCL drivers run each thread as a scalar loop (they do not
vectorize across threads that contain loops), which is what ``vec`` is for: one vector load of
an input row segment feeds ``tile_oc`` vector multiply-adds. The reduction runs kh, kw outside
and the input channel innermost, so padding masks and clamped addresses are computed once per
window position and the hot loop is only loads and multiply-adds; the ``tile_oc`` weights a
thread reads are uniform across the work-group. The body is built in separate steps
(`_Plan.thread_coords`, `_Plan.reduce`, `_Plan.store`) so schedule keys that stage tiles in
local memory can replace one step without touching the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from xdsl.dialects.builtin import VectorType
from xdsl.ir import SSAValue

from visc.dialects.vision import (
    Conv2dOp,
    Conv2dTransposeOp,
    VisionOp,
    conv_weight_shape,
    get_int,
    get_ints,
    shape_of,
)
from visc.passes.lowering.common import (
    ColumnGroup,
    Lowering,
    Problems,
    Schedule,
    check_range,
    check_unroll,
    check_wg,
    elt,
    epilogue,
    epilogue_vector,
    kernel_hint,
    node_name,
    only_wg,
)
from visc.passes.lowering.loops import Cond, FunctionLowering, Idx, KernelBuilder


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class _Geometry:
    n: int
    c: int
    h: int
    w: int
    o: int
    kh: int
    kw: int
    oh: int
    ow: int
    sh: int
    sw: int
    pt: int
    pl: int
    dh: int
    dw: int
    groups: int

    @property
    def cg(self) -> int:
        return self.c // self.groups

    @property
    def og(self) -> int:
        return self.o // self.groups


def _geometry(op: VisionOp) -> _Geometry:
    n, c, h, w = shape_of(op.ins[0])
    _, _, oh, ow = shape_of(op.dests[0])
    ws = conv_weight_shape(op) if isinstance(op, Conv2dOp) else shape_of(op.ins[1])
    groups = get_int(op, "groups", 1)
    o = ws[0] if isinstance(op, Conv2dOp) else shape_of(op.dests[0])[1]
    sh, sw = get_ints(op, "strides")
    pt, pl, _, _ = get_ints(op, "pads")
    dh, dw = get_ints(op, "dilations")
    return _Geometry(n, c, h, w, o, ws[2], ws[3], oh, ow, sh, sw, pt, pl, dh, dw, groups)


def _clamped(k: KernelBuilder, a: Idx, a_min: int, a_max: int, size: int) -> tuple[Idx, Cond]:
    """(a clamped into [0, size), whether a was inside), given a in [a_min, a_max]."""
    ok = k.in_range(a, 0, size, a_min, a_max)
    if a_min < 0:
        a = k.max(a, 0)
    if a_max >= size:
        a = k.min(a, size - 1)
    return a, ok


# --------------------------------------------------------------------------- conv2d

VECTOR_WIDTHS = (1, 2, 3, 4, 8, 16)  # OpenCL C vector types


def check_conv2d(op: VisionOp, sched: Schedule) -> Problems:
    if sched.get("stage", 0):
        from visc.passes.lowering.conv_staged import check_conv2d_staged

        return check_conv2d_staged(op, sched)
    g = _geometry(op)
    problems: Problems = []
    if sched.get("threads_k", 1) != 1:
        problems.append(f"schedule threads_k={sched.get('threads_k', 1)} needs stage=3 (the split reduction)")
    flat = check_range(problems, sched, "flat", 0, 0, 1)
    if flat and sched.get("rows", 0):
        from visc.passes.lowering.conv_depthwise import flat_depthwise

        if not flat_depthwise(op):
            problems.append("schedule flat=1 with rows needs stride 1, output rows as wide as the input's and "
                            "fuse operands that broadcast over whole rows")
        g = replace(g, oh=1, ow=g.oh * g.ow)
    elif flat and not flattenable(op):
        problems.append("schedule flat=1 needs a 1x1 kernel, stride 1, no padding and fuse operands "
                        "that broadcast over whole rows")
    elif flat:
        g = replace(g, oh=1, ow=g.oh * g.ow)
    if sched.get("rows", 0):
        from visc.passes.lowering.conv_depthwise import check_conv2d_depthwise

        return problems + check_conv2d_depthwise(op, sched, g.cg, g.og, g.oh, g.ow)
    if sched.get("pack", 0):
        from visc.passes.lowering.conv_packed import check_conv2d_packed

        return problems + check_conv2d_packed(op, sched, g.og, g.ow)
    check_wg(problems, sched)
    toc = check_range(problems, sched, "tile_oc", 1, 1, g.og, f"{g.og} output channels per group")
    if toc >= 1 and g.og % toc:
        problems.append(f"schedule tile_oc={toc} must divide the {g.og} output channels of a group")
    vec = sched.get("vec", 1)
    if vec not in VECTOR_WIDTHS:
        problems.append(f"schedule vec={vec} is illegal (one of {', '.join(map(str, VECTOR_WIDTHS))})")
    elif vec > g.ow:
        problems.append(f"schedule vec={vec} is wider than the output's {g.ow} columns")
    groups = _ceil_div(g.ow, max(vec, 1))
    check_range(problems, sched, "tile_ow", 1, 1, groups,
                f"the output has {g.ow} columns, {groups} groups of vec={vec}")
    check_unroll(problems, sched, "unroll_k")
    check_unroll(problems, sched, "unroll_win")
    return problems


@dataclass
class _Plan:
    """One conv2d's thread mapping and register tile (see the module docstring)."""

    op: VisionOp
    g: _Geometry
    toc: int
    tow: int
    vec: int
    unroll_k: int
    unroll_win: int
    x: SSAValue
    w: SSAValue
    bias: SSAValue | None
    out: SSAValue
    fuse: list[SSAValue]

    @property
    def col_threads(self) -> int:
        return _ceil_div(_ceil_div(self.g.ow, self.vec), self.tow)

    def thread_space(self) -> list[int]:
        g = self.g
        return [g.n, g.o // self.toc, g.oh, self.col_threads]

    def thread_coords(self, k: KernelBuilder, ivs: list[Idx]):
        """Output coordinates of this thread's tile: batch, channels, row, column groups.

        With vectors, when ``vec`` does not divide OW the last group is shifted left to end at
        the last column (it overlaps its neighbour): every vector then covers real output
        columns, its loads stay inside the input row wherever the padding allows, and only the
        stores of the overlapped lanes are skipped."""
        n, ot, oh, t = ivs
        s, groups, vec, ow = self.col_threads, _ceil_div(self.g.ow, self.vec), self.vec, self.g.ow
        oc0 = k.mul(ot, self.toc)
        ocs = [k.add(oc0, i) for i in range(self.toc)]
        cols: list[ColumnGroup] = []
        for j in range(self.tow):
            lo, hi = j * s, j * s + s - 1
            grp = k.add(t, j * s)
            ok: Cond = True
            if hi >= groups:
                ok, grp, hi = k.cmp("slt", grp, groups), k.min(grp, groups - 1), groups - 1
            col = k.mul(grp, vec)
            last: Cond = False
            if groups * vec > ow and hi == groups - 1:
                last = k.cmp("eq", grp, groups - 1) if lo < groups - 1 else True
                col = k.min(col, ow - vec)
            cols.append(ColumnGroup(col, ok, min(lo * vec, ow - vec), min(hi * vec, ow - vec), last))
        return n, ocs, oh, cols

    def _zero(self, k: KernelBuilder) -> SSAValue:
        zero = k.const(0.0, elt(self.out))
        return zero if self.vec == 1 else k.vbroadcast(zero, self.vec)

    def reduce(self, k: KernelBuilder, n: Idx, ocs: list[Idx], oh: Idx, cols: list[ColumnGroup]) -> list[SSAValue]:
        """Accumulate the tile over kh, kw (outer) and input channels (inner)."""
        g, toc, tow, vec = self.g, self.toc, self.tow, self.vec
        x, w = self.x, self.w
        zero_s = k.const(0.0, elt(self.out))
        cin0 = k.mul(k.div(ocs[0], g.og), g.cg) if g.groups > 1 else 0
        ih0 = k.sub(k.mul(oh, g.sh), g.pt)
        ih0_range = (-g.pt, (g.oh - 1) * g.sh - g.pt)
        iw0 = [(k.sub(k.mul(c.col, g.sw), g.pl), c.lo * g.sw - g.pl, c.hi * g.sw - g.pl) for c in cols]
        # first to last input column a vector of outputs reads directly: at stride s, s whole
        # vectors whose every s-th lane it picks (s - 1 columns past its last tap)
        span = vec * g.sw - 1

        def over_kh(kh: Idx, accs: list[SSAValue]) -> list[SSAValue]:
            kh_lo, kh_hi = (kh, kh) if isinstance(kh, int) else (0, g.kh - 1)
            ih, row_ok = _clamped(k, k.add(ih0, k.mul(kh, g.dh)), ih0_range[0] + kh_lo * g.dh,
                                  ih0_range[1] + kh_hi * g.dh, g.h)

            def over_kw(kw: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                kw_lo, kw_hi = (kw, kw) if isinstance(kw, int) else (0, g.kw - 1)
                starts = [(k.add(base, k.mul(kw, g.dw)), lo + kw_lo * g.dw, hi + kw_hi * g.dw)
                          for base, lo, hi in iw0]

                def channels(load_x) -> list[SSAValue]:
                    def over_c(c: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                        ci = k.add(cin0, c)
                        xs = [load_x(ci, j) for j in range(tow)]
                        ws = [k.load(w, [oc, c, kh, kw]) for oc in ocs]
                        if vec > 1:
                            ws = [k.vbroadcast(v, vec) for v in ws]
                            return [k.vfma(xs[j], ws[i], accs[i * tow + j]) for i in range(toc) for j in range(tow)]
                        return [k.fma(ws[i], xs[j], accs[i * tow + j]) for i in range(toc) for j in range(tow)]

                    return k.loop(0, g.cg, accs, over_c, unroll=self.unroll_k)

                if vec == 1:
                    taps = [_clamped(k, a, lo, hi, g.w) for a, lo, hi in starts]
                    taps = [(iw, k.and_(row_ok, ok)) for iw, ok in taps]
                    return channels(lambda ci, j: k.select(taps[j][1], k.load(x, [n, ci, ih, taps[j][0]]), zero_s))

                # vectors: a group whose taps all lie inside the input row reads them directly
                # (one vector load at stride 1); a group at the padded edge assembles its lanes
                # from masked scalar loads. The choice is loop-invariant per group, so device
                # compilers unswitch the channel loop.
                inside = [k.in_range(a, 0, g.w - span, lo, hi) for a, lo, hi in starts]
                lanes = [[] if ok is True else
                         [_clamped(k, k.add(a, q * g.sw), lo + q * g.sw, hi + q * g.sw, g.w) for q in range(vec)]
                         for (a, lo, hi), ok in zip(starts, inside, strict=True)]

                def load_x(ci: Idx, j: int) -> SSAValue:
                    def direct() -> list[SSAValue]:
                        a = starts[j][0]
                        if g.sw == 1:
                            return [k.vload(x, [n, ci, ih, a], vec)]
                        # strided: lane q is lane q*s of s consecutive vector loads (extracts
                        # and inserts that compilers fold into shuffles), not vec scalar loads
                        whole = [k.vload(x, [n, ci, ih, k.add(a, i * vec)], vec) for i in range(g.sw)]
                        return [k.vfrom([k.vextract(whole[q * g.sw // vec], q * g.sw % vec) for q in range(vec)])]

                    def masked() -> list[SSAValue]:
                        return [k.vfrom([k.select(ok, k.load(x, [n, ci, ih, iw]), zero_s) for iw, ok in lanes[j]])]

                    (v,) = k.if_(inside[j], direct, masked, [VectorType(zero_s.type, [vec])])
                    return v

                # a padding row contributes nothing: skip its channel loop
                return k.if_(row_ok, lambda: channels(load_x), lambda: accs, [a.type for a in accs])

            return k.loop(0, g.kw, accs, over_kw, unroll=self.unroll_win)

        return k.loop(0, g.kh, [self._zero(k)] * (toc * tow), over_kh, unroll=self.unroll_win)

    def store(self, k: KernelBuilder, n: Idx, ocs: list[Idx], oh: Idx, cols: list[ColumnGroup],
              accs: Sequence[SSAValue]) -> None:
        """Bias, epilogue and store of the tile (the shifted last group stores only the
        lanes its neighbour does not)."""
        op, out, vec, ow, fuse = self.op, self.out, self.vec, self.g.ow, self.fuse
        bias = [k.load(self.bias, [oc]) for oc in ocs] if self.bias is not None else None
        overlap = _ceil_div(ow, vec) * vec - ow  # lanes the shifted last group shares
        for j, cg in enumerate(cols):

            def group(j: int = j, cg: ColumnGroup = cg) -> list[SSAValue]:
                for i, oc in enumerate(ocs):
                    acc = accs[i * self.tow + j]
                    if vec == 1:
                        v = k.fadd(acc, bias[i]) if bias is not None else acc
                        k.store(epilogue(k, op, v, [n, oc, oh, cg.col], fuse), out, [n, oc, oh, cg.col])
                        continue
                    if bias is not None:
                        acc = k.fadd(acc, k.vbroadcast(bias[i], vec))
                    v = epilogue_vector(k, op, acc, [n, oc, oh, cg.col], vec, ow, fuse)
                    if v is None:  # a body that is not plain float arithmetic: lane by lane
                        lanes = [epilogue(k, op, k.vextract(acc, q), [n, oc, oh, k.add(cg.col, q)], fuse)
                                 for q in range(vec)]
                        v = k.vfrom(lanes)

                    def tail(v: SSAValue = v, oc: Idx = oc) -> list[SSAValue]:
                        for q in range(overlap, vec):
                            k.store(k.vextract(v, q), out, [n, oc, oh, k.add(cg.col, q)])
                        return []

                    def whole(v: SSAValue = v, oc: Idx = oc) -> list[SSAValue]:
                        k.vstore(v, out, [n, oc, oh, cg.col])
                        return []

                    k.if_(cg.last, tail, whole)
                return []

            k.if_(cg.ok, group)


def _flat_fuse_shape(shape: tuple[int, ...], oh: int, ow: int) -> tuple[int, ...] | None:
    """The shape of a fuse operand over the flattened output rows, None if it cannot follow."""
    if len(shape) < 2:
        return shape if not shape or shape[-1] == 1 else None
    if shape[-2:] == (1, 1):
        return shape
    if shape[-2:] == (oh, ow):
        return (*shape[:-2], 1, oh * ow)
    return None


def flattenable(op: VisionOp) -> bool:
    """Whether the output rows can be treated as one long row: a 1x1 kernel at stride 1 with no
    padding reads the input pixel of the same flat index, so rows join seamlessly."""
    g = _geometry(op)
    if (g.kh, g.kw, g.sh, g.sw, g.pt, g.pl) != (1, 1, 1, 1, 0, 0) or get_ints(op, "pads") != (0, 0, 0, 0):
        return False
    return _flat_fuse_ok(op, g)


def _flat_fuse_ok(op: VisionOp, g: _Geometry) -> bool:
    return all(_flat_fuse_shape(shape_of(f), g.oh, g.ow) is not None for f in op.fuse)


def lower_conv2d(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    if sched.get("stage", 0):
        from visc.passes.lowering.conv_staged import lower_conv2d_staged

        return lower_conv2d_staged(op, sched, fl)
    g = _geometry(op)
    x, w, out = op.ins[0], op.ins[1], op.outs[0]
    bias = op.ins[2] if len(op.ins) == 3 else None
    fuse = list(op.fuse)
    window = g
    if sched.get("flat", 0):
        node = node_name(op)
        x = fl.view(x, (g.n, g.c, 1, g.h * g.w), node + ":flat_in")
        out = fl.view(out, (g.n, g.o, 1, g.oh * g.ow), node + ":flat_out")
        fuse = [fl.view(f, _flat_fuse_shape(shape_of(f), g.oh, g.ow) or (), node + f":flat_fuse{i}")
                for i, f in enumerate(fuse)]
        g = replace(g, h=1, w=g.h * g.w, oh=1, ow=g.oh * g.ow)
    if sched.get("pack", 0):
        from visc.passes.lowering.conv_packed import lower_conv2d_packed

        return lower_conv2d_packed(op, sched, fl, g, x, w, bias, out, fuse, kernel_hint(op))
    if sched.get("rows", 0):
        from visc.passes.lowering.conv_depthwise import lower_conv2d_depthwise

        return lower_conv2d_depthwise(sched, fl, _Plan(op, g, 1, 1, sched.get("vec", 1), 1, 1, x, w, bias, out, fuse),
                                      kernel_hint(op), window if sched.get("flat", 0) else None)
    plan = _Plan(op, g, sched.get("tile_oc", 1), sched.get("tile_ow", 1), sched.get("vec", 1),
                 sched.get("unroll_k", 1), sched.get("unroll_win", 1), x, w, bias, out, fuse)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        n, ocs, oh, cols = plan.thread_coords(k, ivs)
        accs = plan.reduce(k, n, ocs, oh, cols)
        plan.store(k, n, ocs, oh, cols, accs)

    fl.kernel(kernel_hint(op), plan.thread_space(), sched.wg, body)


# --------------------------------------------------------------------------- conv2d_transpose


def lower_conv2d_transpose(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    """One thread per output element gathers the inputs that scatter onto it: for each
    window tap (kh, kw) with ``oh + pad - kh * dil`` divisible by the stride and inside the
    input, the input-channel loop of the group accumulates. Reads ``wg``."""
    g = _geometry(op)
    x, w, out = op.ins[0], op.ins[1], op.outs[0]
    bias = op.ins[2] if len(op.ins) == 3 else None
    og = g.o // g.groups
    ty = elt(out)

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        n, o, oh, ow = ivs
        zero = k.const(0.0, ty)
        grp = k.div(o, og) if g.groups > 1 else 0
        oig = k.rem(o, og) if g.groups > 1 else o
        cin0 = k.mul(grp, g.cg)

        def tap(pos: Idx, kk: Idx, pad: int, dil: int, stride: int, size: int, lo: int, hi: int):
            num = k.sub(k.add(pos, pad), k.mul(kk, dil))  # in [lo, hi]
            ok = k.in_range(num, 0, size * stride, lo, hi)
            if stride > 1:
                lift = stride * _ceil_div(max(0, -lo), stride)  # makes num non-negative
                ok = k.and_(ok, k.cmp("eq", k.rem(k.add(num, lift), stride), 0))
            src = k.div(k.clamp(num, 0, (size - 1) * stride), stride)
            return src, ok

        def over_kh(kh: Idx, accs: list[SSAValue]) -> list[SSAValue]:
            ih, row_ok = tap(oh, kh, g.pt, g.dh, g.sh, g.h, g.pt - (g.kh - 1) * g.dh, g.oh - 1 + g.pt)

            def over_kw(kw: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                iw, col_ok = tap(ow, kw, g.pl, g.dw, g.sw, g.w, g.pl - (g.kw - 1) * g.dw, g.ow - 1 + g.pl)

                def gather() -> list[SSAValue]:
                    def over_c(c: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                        ci = k.add(cin0, c)
                        return [k.fma(k.load(x, [n, ci, ih, iw]), k.load(w, [ci, oig, kh, kw]), accs[0])]

                    return k.loop(0, g.cg, accs, over_c)

                return k.if_(k.and_(row_ok, col_ok), gather, lambda: accs, [ty])

            return k.loop(0, g.kw, accs, over_kw)

        (acc,) = k.loop(0, g.kh, [zero], over_kh)
        if bias is not None:
            acc = k.fadd(acc, k.load(bias, [o]))
        k.store(acc, out, [n, o, oh, ow])

    fl.kernel(kernel_hint(op), [g.n, g.o, g.oh, g.ow], sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    Conv2dOp: Lowering(frozenset({"wg", "tile_oc", "tile_ow", "vec", "flat", "unroll_k", "unroll_win", "pack",
                                  "stage", "block_m", "block_n", "tile_k", "split_k", "threads_k",  # conv_staged.py: stage >= 1
                                  "rows"}),  # conv_depthwise.py
                       check_conv2d, lower_conv2d),
    Conv2dTransposeOp: Lowering(frozenset({"wg"}), only_wg, lower_conv2d_transpose),
}
