"""matmul -> one register-tiled kernel.

Reads these schedule keys:

* ``wg``        work-group size.
* ``tile_m``    output rows per thread (1..M), consecutive rows.
* ``tile_n``    output column groups per thread, distributed cyclically: thread ``t`` owns
                groups ``t, t + S, ...`` with ``S = ceil(groups / tile_n)``, so for each
                register column consecutive threads read consecutive ``b`` and write
                consecutive outputs.
* ``vec``       vector width along ``b``'s contiguous dim: with ``b`` not transposed, a column
                group is ``vec`` adjacent output columns (vector loads of ``b`` rows, one
                vector accumulator per row x group; when ``vec`` does not divide N the last
                group is shifted left to end at column N - 1 and stores only the lanes its
                neighbour does not); with ``transpose_b`` the contraction is vectorized
                instead (``vec`` consecutive k of ``a`` and ``b`` per step, lanes summed at the
                end, a scalar loop for the remainder). 1 = scalar.
* ``unroll_k``  unroll hint of the contraction loop (0 = fully; 1 = none).

Batch dimensions broadcast with numpy rules (a size-1 batch dim of ``a``, ``b`` or ``c`` is
read at index 0). The steps (`_Plan.coords`, `_Plan.reduce`, `_Plan.store`) are separate;
``stage >= 1`` (work-group memory staging of ``a``/``b`` tiles, keys ``stage``, ``block_m``,
``block_n``, ``tile_k``, ``split_k``; ``stage = 3``: the reduction split across threads,
``threads_k``) is matmul_staged.py, which reuses `_Plan.store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.ir import SSAValue

from visc.dialects.vision import MatmulOp, VisionOp, get_float, get_int, shape_of
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
    load_broadcast,
)
from visc.passes.lowering.loops import Cond, FunctionLowering, Idx, KernelBuilder, broadcast_index

VECTOR_WIDTHS = (1, 2, 3, 4, 8, 16)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _dims(op: VisionOp) -> tuple[int, int, int]:
    a = shape_of(op.ins[0])
    out = shape_of(op.outs[0])
    k = a[-2] if get_int(op, "transpose_a", 0) else a[-1]
    return out[-2], out[-1], k


def check_matmul(op: VisionOp, sched: Schedule) -> Problems:
    if sched.get("stage", 0):
        from visc.passes.lowering.matmul_staged import check_matmul_staged

        return check_matmul_staged(op, sched)
    m, n, k = _dims(op)
    problems: Problems = []
    if sched.get("threads_k", 1) != 1:
        problems.append(f"schedule threads_k={sched.get('threads_k', 1)} needs stage=3 (the split reduction)")
    check_wg(problems, sched)
    check_range(problems, sched, "tile_m", 1, 1, m, f"the output has {m} rows")
    vec = sched.get("vec", 1)
    along_n = not get_int(op, "transpose_b", 0)
    if vec not in VECTOR_WIDTHS:
        problems.append(f"schedule vec={vec} is illegal (one of {', '.join(map(str, VECTOR_WIDTHS))})")
        vec = 1
    elif vec > (n if along_n else k):
        problems.append(f"schedule vec={vec} exceeds the {'columns' if along_n else 'contraction'} "
                        f"({n if along_n else k})")
        vec = 1
    groups = _ceil_div(n, vec) if along_n else n
    check_range(problems, sched, "tile_n", 1, 1, groups, f"the output has {groups} column groups")
    check_unroll(problems, sched, "unroll_k")
    return problems


@dataclass
class _Plan:
    op: VisionOp
    m: int
    n: int
    k: int
    tm: int
    tn: int
    vec: int
    unroll_k: int

    @property
    def vec_n(self) -> int:
        """Lanes along the output columns (vec when b is not transposed)."""
        return 1 if get_int(self.op, "transpose_b", 0) else self.vec

    @property
    def vec_k(self) -> int:
        """Lanes along the contraction (vec when b is transposed)."""
        return self.vec if get_int(self.op, "transpose_b", 0) else 1

    @property
    def batch(self) -> tuple[int, ...]:
        return shape_of(self.op.outs[0])[:-2]

    def col_threads(self) -> int:
        return _ceil_div(_ceil_div(self.n, self.vec_n), self.tn)

    def thread_space(self) -> list[int]:
        return [*self.batch, _ceil_div(self.m, self.tm), self.col_threads()]

    def coords(self, k: KernelBuilder, ivs: list[Idx]):
        """(batch index, rows as (index, valid), column groups)."""
        *bidx, mt, t = ivs
        rows: list[tuple[Idx, Cond]] = []
        m_threads = _ceil_div(self.m, self.tm)
        for i in range(self.tm):
            r = k.add(k.mul(mt, self.tm), i)
            ok: Cond = True
            if (m_threads - 1) * self.tm + i >= self.m:
                ok, r = k.cmp("slt", r, self.m), k.min(r, self.m - 1)
            rows.append((r, ok))
        cols: list[ColumnGroup] = []
        vn = self.vec_n
        s, groups = self.col_threads(), _ceil_div(self.n, vn)
        for j in range(self.tn):
            lo, hi = j * s, j * s + s - 1
            grp = k.add(t, j * s)
            ok = True
            if hi >= groups:
                ok, grp, hi = k.cmp("slt", grp, groups), k.min(grp, groups - 1), groups - 1
            col = k.mul(grp, vn)
            last: Cond = False
            if groups * vn > self.n and hi == groups - 1:
                # the last vector is shifted left to end at column N - 1 (overlapping its
                # neighbour, whose lanes it then does not store): every load stays in bounds
                last = k.cmp("eq", grp, groups - 1) if lo < groups - 1 else True
                col = k.min(col, self.n - vn)
            cols.append(ColumnGroup(col, ok, min(lo * vn, self.n - vn), min(hi * vn, self.n - vn), last))
        return bidx, rows, cols

    def _operands(self, bidx: list[Idx]):
        a, b = self.op.ins[0], self.op.ins[1]
        ta, tb = get_int(self.op, "transpose_a", 0), get_int(self.op, "transpose_b", 0)
        ab = broadcast_index(shape_of(a)[:-2], bidx)
        bb = broadcast_index(shape_of(b)[:-2], bidx)

        def a_at(r: Idx, kk: Idx) -> list[Idx]:
            return [*ab, kk, r] if ta else [*ab, r, kk]

        def b_at(c: Idx, kk: Idx) -> list[Idx]:
            return [*bb, c, kk] if tb else [*bb, kk, c]

        return a, b, a_at, b_at, ta

    def reduce(self, k: KernelBuilder, bidx: list[Idx], rows, cols: list[ColumnGroup]) -> list[SSAValue]:
        """The tile's dot products: tm x tn accumulators (scalars, or vectors of output
        columns when vec_n > 1); with vec_k > 1 each is already summed over its lanes."""
        a, b, a_at, b_at, ta = self._operands(bidx)
        ty = elt(self.op.outs[0])
        zero = k.const(0.0, ty)
        tm, tn, vn, vk = self.tm, self.tn, self.vec_n, self.vec_k

        if vn > 1:
            def vector_n_step(kk: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                av = [k.vbroadcast(k.load(a, a_at(r, kk)), vn) for r, _ in rows]
                bv = [k.vload(b, b_at(g.col, kk), vn) for g in cols]
                return [k.vfma(av[i], bv[j], accs[i * tn + j]) for i in range(tm) for j in range(tn)]

            return k.loop(0, self.k, [k.vbroadcast(zero, vn)] * (tm * tn), vector_n_step, unroll=self.unroll_k)

        def scalar_step(kk: Idx, accs: list[SSAValue]) -> list[SSAValue]:
            av = [k.load(a, a_at(r, kk)) for r, _ in rows]
            bv = [k.load(b, b_at(g.col, kk)) for g in cols]
            return [k.fma(av[i], bv[j], accs[i * tn + j]) for i in range(tm) for j in range(tn)]

        if vk == 1:
            return k.loop(0, self.k, [zero] * (tm * tn), scalar_step, unroll=self.unroll_k)

        def vector_step(kv: Idx, accs: list[SSAValue]) -> list[SSAValue]:
            kk = k.mul(kv, vk)
            if ta:
                av = [k.vfrom([k.load(a, a_at(r, k.add(kk, q))) for q in range(vk)]) for r, _ in rows]
            else:
                av = [k.vload(a, a_at(r, kk), vk) for r, _ in rows]
            bv = [k.vload(b, b_at(g.col, kk), vk) for g in cols]
            return [k.vfma(av[i], bv[j], accs[i * tn + j]) for i in range(tm) for j in range(tn)]

        whole = self.k // vk
        vaccs = k.loop(0, whole, [k.vbroadcast(zero, vk)] * (tm * tn), vector_step, unroll=self.unroll_k)
        tail = k.loop(whole * vk, self.k, [zero] * (tm * tn), scalar_step)
        out = []
        for v, s in zip(vaccs, tail, strict=True):
            total = s
            for q in range(vk):
                total = k.fadd(total, k.vextract(v, q))
            out.append(total)
        return out

    def store(self, k: KernelBuilder, bidx: list[Idx], rows, cols: list[ColumnGroup], accs: Sequence[SSAValue]) -> None:
        op, out = self.op, self.op.outs[0]
        ty = elt(out)
        alpha, beta = get_float(op, "alpha", 1.0), get_float(op, "beta", 1.0)
        c = op.ins[2] if len(op.ins) == 3 and beta != 0.0 else None
        vn = self.vec_n

        def finish(v: SSAValue, idx: list[Idx]) -> SSAValue:
            if alpha != 1.0:
                v = k.fmul(v, k.const(alpha, ty))
            if c is not None:
                cv = load_broadcast(k, c, idx)
                v = k.fadd(v, cv if beta == 1.0 else k.fmul(cv, k.const(beta, ty)))
            return epilogue(k, op, v, idx)

        for i, (r, rok) in enumerate(rows):
            for j, g in enumerate(cols):

                def element(i: int = i, j: int = j, r: Idx = r, g: ColumnGroup = g) -> list[SSAValue]:
                    acc = accs[i * self.tn + j]
                    if vn == 1:
                        idx = [*bidx, r, g.col]
                        k.store(finish(acc, idx), out, idx)
                        return []
                    v = None
                    if alpha == 1.0 and c is None:
                        v = epilogue_vector(k, op, acc, [*bidx, r, g.col], vn, self.n)
                    if v is None:  # lane by lane
                        v = k.vfrom([finish(k.vextract(acc, q), [*bidx, r, k.add(g.col, q)]) for q in range(vn)])
                    overlap = _ceil_div(self.n, vn) * vn - self.n

                    def tail(v: SSAValue = v) -> list[SSAValue]:
                        for q in range(overlap, vn):
                            k.store(k.vextract(v, q), out, [*bidx, r, k.add(g.col, q)])
                        return []

                    def whole(v: SSAValue = v) -> list[SSAValue]:
                        k.vstore(v, out, [*bidx, r, g.col])
                        return []

                    k.if_(g.last, tail, whole)
                    return []

                k.if_(k.and_(rok, g.ok), element)


def lower_matmul(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    if sched.get("stage", 0):
        from visc.passes.lowering.matmul_staged import lower_matmul_staged

        return lower_matmul_staged(op, sched, fl)
    m, n, kk = _dims(op)
    plan = _Plan(op, m, n, kk, sched.get("tile_m", 1), sched.get("tile_n", 1), sched.get("vec", 1),
                 sched.get("unroll_k", 1))

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        bidx, rows, cols = plan.coords(k, ivs)
        plan.store(k, bidx, rows, cols, plan.reduce(k, bidx, rows, cols))

    fl.kernel(kernel_hint(op), plan.thread_space(), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    MatmulOp: Lowering(frozenset({"wg", "tile_m", "tile_n", "vec", "unroll_k",
                                  "stage", "block_m", "block_n", "tile_k", "split_k", "threads_k"}),  # matmul_staged.py: stage >= 1
                       check_matmul, lower_matmul),
}
