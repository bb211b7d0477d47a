"""matmul -> one register-tiled kernel.

Reads these schedule keys:

* ``wg``        work-group size.
* ``tile_m``    output rows per thread (1..M), consecutive rows.
* ``tile_n``    output columns per thread (1..N), distributed cyclically: thread ``t`` owns
                columns ``t, t + S, ...`` with ``S = ceil(N / tile_n)``, so for each register
                column consecutive threads read consecutive ``b`` and write consecutive outputs.
* ``unroll_k``  unroll hint of the contraction loop (0 = fully; 1 = none).

The accumulators are ``tile_m x tile_n`` loop-carried scalars. Batch dimensions broadcast with
numpy rules (a size-1 batch dim of ``a``, ``b`` or ``c`` is read at index 0). The steps
(`_Plan.coords`, `_Plan.reduce`, `_Plan.store`) are separate so local-memory staging of
``a``/``b`` tiles or vector loads can later replace `reduce` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.ir import SSAValue

from visc.dialects.vision import MatmulOp, VisionOp, get_float, get_int, shape_of
from visc.passes.lowering.common import (
    Lowering,
    Problems,
    Schedule,
    check_range,
    check_unroll,
    check_wg,
    elt,
    epilogue,
    kernel_hint,
    load_broadcast,
)
from visc.passes.lowering.loops import Cond, FunctionLowering, Idx, KernelBuilder, broadcast_index


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _dims(op: VisionOp) -> tuple[int, int, int]:
    a = shape_of(op.ins[0])
    out = shape_of(op.outs[0])
    k = a[-2] if get_int(op, "transpose_a", 0) else a[-1]
    return out[-2], out[-1], k


def check_matmul(op: VisionOp, sched: Schedule) -> Problems:
    m, n, _ = _dims(op)
    problems: Problems = []
    check_wg(problems, sched)
    check_range(problems, sched, "tile_m", 1, 1, m, f"the output has {m} rows")
    check_range(problems, sched, "tile_n", 1, 1, n, f"the output has {n} columns")
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
    unroll_k: int

    @property
    def batch(self) -> tuple[int, ...]:
        return shape_of(self.op.outs[0])[:-2]

    def thread_space(self) -> list[int]:
        return [*self.batch, _ceil_div(self.m, self.tm), _ceil_div(self.n, self.tn)]

    def coords(self, k: KernelBuilder, ivs: list[Idx]):
        """(batch index, rows, columns); rows/columns are (index, valid) pairs."""
        *bidx, mt, t = ivs
        rows: list[tuple[Idx, Cond]] = []
        m_threads = _ceil_div(self.m, self.tm)
        for i in range(self.tm):
            r = k.add(k.mul(mt, self.tm), i)
            ok: Cond = True
            if (m_threads - 1) * self.tm + i >= self.m:
                ok, r = k.cmp("slt", r, self.m), k.min(r, self.m - 1)
            rows.append((r, ok))
        cols: list[tuple[Idx, Cond]] = []
        s = _ceil_div(self.n, self.tn)
        for j in range(self.tn):
            c = k.add(t, j * s)
            ok = True
            if j * s + s - 1 >= self.n:
                ok, c = k.cmp("slt", c, self.n), k.min(c, self.n - 1)
            cols.append((c, ok))
        return bidx, rows, cols

    def reduce(self, k: KernelBuilder, bidx: list[Idx], rows, cols) -> list[SSAValue]:
        a, b = self.op.ins[0], self.op.ins[1]
        ta, tb = get_int(self.op, "transpose_a", 0), get_int(self.op, "transpose_b", 0)
        ab = broadcast_index(shape_of(a)[:-2], bidx)
        bb = broadcast_index(shape_of(b)[:-2], bidx)
        zero = k.const(0.0, elt(self.op.outs[0]))

        def step(kk: Idx, accs: list[SSAValue]) -> list[SSAValue]:
            av = [k.load(a, [*ab, kk, r] if ta else [*ab, r, kk]) for r, _ in rows]
            bv = [k.load(b, [*bb, c, kk] if tb else [*bb, kk, c]) for c, _ in cols]
            return [k.fma(av[i], bv[j], accs[i * self.tn + j]) for i in range(self.tm) for j in range(self.tn)]

        return k.loop(0, self.k, [zero] * (self.tm * self.tn), step, unroll=self.unroll_k)

    def store(self, k: KernelBuilder, bidx: list[Idx], rows, cols, accs: Sequence[SSAValue]) -> None:
        op, out = self.op, self.op.outs[0]
        ty = elt(out)
        alpha, beta = get_float(op, "alpha", 1.0), get_float(op, "beta", 1.0)
        c = op.ins[2] if len(op.ins) == 3 else None
        for i, (r, rok) in enumerate(rows):
            for j, (col, cok) in enumerate(cols):

                def element(i: int = i, j: int = j, r: Idx = r, col: Idx = col) -> list[SSAValue]:
                    idx = [*bidx, r, col]
                    v = accs[i * self.tn + j]
                    if alpha != 1.0:
                        v = k.fmul(v, k.const(alpha, ty))
                    if c is not None and beta != 0.0:
                        cv = load_broadcast(k, c, idx)
                        v = k.fadd(v, cv if beta == 1.0 else k.fmul(cv, k.const(beta, ty)))
                    k.store(epilogue(k, op, v, idx), out, idx)
                    return []

                k.if_(k.and_(rok, cok), element)


def lower_matmul(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    m, n, kk = _dims(op)
    plan = _Plan(op, m, n, kk, sched.get("tile_m", 1), sched.get("tile_n", 1), sched.get("unroll_k", 1))

    def body(k: KernelBuilder, ivs: list[Idx]) -> None:
        bidx, rows, cols = plan.coords(k, ivs)
        plan.store(k, bidx, rows, cols, plan.reduce(k, bidx, rows, cols))

    fl.kernel(kernel_hint(op), plan.thread_space(), sched.wg, body)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    MatmulOp: Lowering(frozenset({"wg", "tile_m", "tile_n", "unroll_k"}), check_matmul, lower_matmul),
}
