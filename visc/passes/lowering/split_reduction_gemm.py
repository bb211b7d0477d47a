"""The GEMM engine behind ``stage = 3`` conv2d and matmul: ``C[m, n] = sum_k A[m, k] B[k, n]``
with the reduction split across the threads of a work-group (a cross-thread reduction, TVM's
rfactor).

Why a third engine: a layer with a long K and few outputs (MobileNetV2's 1x1 projections at
batch 1: 64 x 196 outputs, K = 384) leaves a one-output-per-thread kernel with too few threads,
each running a long serial chain; the staged engine pays a barrier pair and a cold global
round trip per K step; split-K over work-groups pays a second launch. Here ``threads_k``
threads share each output group, each summing one contiguous slice of K straight from global
memory, and the partial sums meet in work-group memory after a single barrier.

Work-group: ``block_n / TN`` lanes x ``threads_k`` slices; grid: batch x ceil(M / TM) x
ceil(N / block_n). Thread (slice r, lane l) owns rows ``m0 .. m0 + TM - 1`` and columns
``n0 + l + j * lanes`` (j < TN): consecutive lanes read consecutive columns of B (coalesced
for conv2d's input) and the same element of A (a broadcast). A slice is ceil(K / threads_k)
rounded up to the unroll factor; reads past K give zeros, rows and columns past M and N read
clamped (real) addresses and are never stored.

The partials go to a work-group array ``[threads_k][TM * TN][lanes]`` (consecutive lanes,
consecutive words); after the barrier the work-group's threads share the ``TM * TN * lanes``
outputs, each adding its output's slices in slice order (deterministic) and finishing it
through the caller's store (bias, epilogue). No value crosses a barrier in a thread's
registers, so the kernel is valid on every backend, the CPU one included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.ir import Attribute, SSAValue

from visc.passes.lowering.common import Problems, Schedule, check_neutral, check_range, check_unroll
from visc.passes.lowering.loops import FunctionLowering, Idx
from visc.passes.lowering.staged_gemm import (
    MAX_LOCAL_BYTES,
    MAX_THREAD_TILE,
    STAGED_DEFAULTS,
    LoadA,
    LoadB,
    StoreC,
)
from visc.passes.lowering.workgroup import GroupBuilder, group_kernel

SPLIT_STAGE = 3
MAX_THREADS = 1024  # the largest work-group of any target (the tuner applies each device's)
MAX_FULL_UNROLL = 64  # K elements per slice that unroll_k = 0 may unroll


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class SplitTiles:
    """The ``stage = 3`` schedule of one GEMM."""

    tm: int  # rows per work-group (all of them in every thread)
    tn: int  # columns per thread
    bn: int  # columns per work-group
    rk: int  # threads_k: threads sharing each column group's K
    unroll: int = 1  # K elements per loop step (0: the whole slice)

    @property
    def lanes(self) -> int:
        return self.bn // max(1, self.tn)  # tn < 1: check_split reports it

    @property
    def threads(self) -> int:
        return self.lanes * self.rk

    def local_elements(self) -> int:
        return self.tm * self.tn * self.threads

    def slice_and_step(self, k: int) -> tuple[int, int]:
        """(K elements per slice, elements per loop step): the slice is a whole number of steps."""
        per = _ceil_div(k, self.rk)
        if self.unroll == 0:
            return per, per
        step = min(self.unroll, per)
        return _ceil_div(per, step) * step, step


def split_tiles(sched: Schedule, tm_key: str, tn_key: str) -> SplitTiles:
    return SplitTiles(sched.get(tm_key, 1), sched.get(tn_key, 1), sched.get("block_n", STAGED_DEFAULTS["block_n"]),
                      sched.get("threads_k", 1), sched.get("unroll_k", 1))


def check_split(problems: Problems, sched: Schedule, tm_key: str, tn_key: str, k_len: int, elt_bytes: int,
                other_keys: Sequence[tuple[str, int]] = ()) -> SplitTiles:
    """Legality of a ``stage = 3`` schedule; `other_keys` (and the staged engine's block_m,
    tile_k, split_k) must keep these neutral values."""
    t = split_tiles(sched, tm_key, tn_key)
    check_range(problems, sched, "block_n", STAGED_DEFAULTS["block_n"], 1, MAX_THREADS)
    check_range(problems, sched, "threads_k", 1, 1, MAX_THREADS)
    check_range(problems, sched, tm_key, 1, 1, MAX_THREAD_TILE)
    check_range(problems, sched, tn_key, 1, 1, MAX_THREAD_TILE)
    check_unroll(problems, sched, "unroll_k")
    staged_only = [(key, STAGED_DEFAULTS[key]) for key in ("block_m", "tile_k", "split_k")]
    check_neutral(problems, sched, [*staged_only, *other_keys], "stage=3")
    if problems:
        return t
    if t.bn % t.tn:
        problems.append(f"schedule {tn_key}={t.tn} must divide block_n={t.bn}")
        return t
    if t.tm * t.tn > MAX_THREAD_TILE:
        problems.append(f"register tile {t.tm}x{t.tn} exceeds {MAX_THREAD_TILE} accumulators per thread")
    if t.rk > k_len:
        problems.append(f"schedule threads_k={t.rk} exceeds the reduction's {k_len} elements")
    if t.threads > MAX_THREADS:
        problems.append(f"{t.lanes} lanes x threads_k={t.rk} make {t.threads} threads (at most {MAX_THREADS})")
    if sched.get("wg", 0) != t.threads:
        problems.append(f"schedule wg={sched.get('wg', 0)} must be the {t.threads} threads of block_n={t.bn} / "
                        f"{tn_key}={t.tn} lanes x threads_k={t.rk}")
    if t.unroll == 0 and _ceil_div(k_len, t.rk) > MAX_FULL_UNROLL:
        problems.append(f"unroll_k=0 unrolls slices of {_ceil_div(k_len, t.rk)} (at most {MAX_FULL_UNROLL})")
    size = t.local_elements() * elt_bytes
    if size > MAX_LOCAL_BYTES:
        problems.append(f"partial sums need {size} bytes of work-group memory (at most {MAX_LOCAL_BYTES})")
    return t


@dataclass
class SplitReductionGemm:
    """One ``stage = 3`` GEMM kernel: sizes, tiles, element type and the callers' accessors
    (those of `visc.passes.lowering.staged_gemm`)."""

    m: int
    n: int
    k: int
    batch: Sequence[int]
    tiles: SplitTiles
    elt: Attribute
    load_a: LoadA
    load_b: LoadB
    store: StoreC

    def build(self, fl: FunctionLowering, name_hint: str) -> None:
        t = self.tiles
        grid = [*self.batch, _ceil_div(self.m, t.tm), _ceil_div(self.n, t.bn)]
        group_kernel(fl, name_hint, grid, t.threads, self._body)

    def _body(self, k: GroupBuilder, ivs: list[Idx]) -> None:
        t = self.tiles
        *bidx, mb, nb = ivs
        lanes, nacc = t.lanes, t.tm * t.tn
        outs = nacc * lanes  # outputs of the work-group (and partials per slice)
        part = k.local(outs * t.rk, self.elt)
        zero = k.const(0.0, self.elt)
        m0, n0 = k.mul(mb, t.tm), k.mul(nb, t.bn)
        per, step = t.slice_and_step(self.k)
        ragged_m = _ceil_div(self.m, t.tm) * t.tm > self.m
        ragged_n = _ceil_div(self.n, t.bn) * t.bn > self.n
        ragged_k = per * t.rk > self.k

        def partial(tid: SSAValue) -> None:
            lane, r = k.rem(tid, lanes), k.div(tid, lanes)
            rows = [k.add(m0, i) for i in range(t.tm)]
            cols = [k.add(n0, k.add(lane, j * lanes)) for j in range(t.tn)]
            rows = [k.min(v, self.m - 1) for v in rows] if ragged_m else rows
            cols = [k.min(v, self.n - 1) for v in cols] if ragged_n else cols
            first = k.mul(r, per)

            def body(i: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                for u in range(step):
                    kk = k.add(k.add(first, i), u)
                    kc = k.min(kk, self.k - 1) if ragged_k else kk
                    av = [self.load_a(k, bidx, row, kc) for row in rows]
                    bv = [self.load_b(k, bidx, kc, col) for col in cols]
                    if ragged_k:
                        ok = k.cmp("slt", kk, self.k)
                        av = [k.select(ok, v, zero) for v in av]
                        bv = [k.select(ok, v, zero) for v in bv]
                    accs = [k.fma(av[q // t.tn], bv[q % t.tn], accs[q]) for q in range(nacc)]
                return accs

            accs = k.loop(0, per, [zero] * nacc, body, step=step)
            base = k.add(k.mul(r, outs), lane)
            for q, v in enumerate(accs):
                k.store(v, part, [k.add(base, q * lanes)])

        k.threads(t.threads, partial)
        k.barrier()

        def finish(tid: SSAValue) -> None:
            for rep in range(_ceil_div(outs, t.threads)):
                o = k.add(tid, rep * t.threads)

                def put(o: Idx = o) -> list[SSAValue]:
                    total = k.read(part, [o])
                    for s in range(1, t.rk):
                        total = k.fadd(total, k.read(part, [k.add(o, s * outs)]))
                    q, lane = k.div(o, lanes), k.rem(o, lanes)
                    row = k.add(m0, k.div(q, t.tn))
                    col = k.add(n0, k.add(lane, k.mul(k.rem(q, t.tn), lanes)))
                    inside = k.and_(k.cmp("slt", row, self.m) if ragged_m else True,
                                    k.cmp("slt", col, self.n) if ragged_n else True)

                    def keep() -> list[SSAValue]:
                        self.store(k, bidx, row, col, total)
                        return []

                    k.if_(inside, keep)
                    return []

                if (rep + 1) * t.threads > outs:
                    k.if_(k.cmp("slt", o, outs), put)
                else:
                    put()

        k.threads(t.threads, finish)


__all__ = ["SPLIT_STAGE", "SplitReductionGemm", "SplitTiles", "check_split", "split_tiles"]
