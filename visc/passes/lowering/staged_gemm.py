"""The work-group GEMM engine behind the staged conv2d and matmul lowerings (``stage >= 1``).

One work-group computes a ``block_m x block_n`` block of ``C[m, n] = sum_k A[m, k] B[k, n]``
(block/thread form, docs/ir.md stage 5); each of its ``(block_m / TM) * (block_n / TN)``
threads owns a ``TM x TN`` register tile. A uniform loop over K steps by ``tile_k``: the
threads copy the ``A`` tile (``block_m x tile_k``) and the ``B`` tile (``tile_k x block_n``) from
global to work-group memory, barrier, accumulate from work-group memory, barrier. The callers
say how an element of ``A`` or ``B`` is read (conv2d: weights and an on-the-fly im2col of the
input with zero padding) and how an output element is finished and stored (bias, epilogue).

Layout choices, all for GPUs:

* copies: consecutive threads take consecutive elements along the operand's contiguous global
  dimension (coalesced reads); tiles are stored k-major (``[k][m]``, ``[k][n]``), and when the
  contiguous global dimension is k the row is padded by one element so that the transposing
  stores of a warp hit distinct banks;
* compute: thread ``t`` owns rows ``tm + i * (block_m / TM)`` and columns
  ``tn + j * (block_n / TN)`` with ``tn = t mod (block_n / TN)``: within a warp the ``B`` reads
  are consecutive words (no bank conflicts), the ``A`` reads broadcasts, and the final stores
  of consecutive threads consecutive columns (coalesced);
* ragged edges: rows/columns past M or N read clamped (real) addresses and are never stored;
  the K tail reads zeros, so uninitialized work-group memory never reaches a sum.

Split-K (``split_k = S > 1``): when M x N alone gives too few work-groups to fill a GPU (ResNet's
7x7 stages at batch 1 have 8-16 blocks of 64x64 for 132 SMs), the grid gets a dimension of S
K-slices, each work-group sums its slice into a scratch buffer ``[S, M, N]`` (global memory
beyond the arena) and a second kernel, one thread per output, adds the S partial sums in a
fixed order and finishes the output (bias, epilogue) as the unsplit kernel would.

Accumulators must survive the barriers between thread loops:

* ``stage = 2``: a private array of ``TM * TN`` per thread, indexed by constants only, which
  device compilers keep in registers. Only GPU targets give each thread its own private
  array: the CPU backend runs a group's threads one after another through one stack frame, so
  a conv/matmul placed on the CPU falls back to ``stage = 1``.
* ``stage = 1``: a work-group array ``[TM * TN][threads]`` (one word per thread and
  accumulator, conflict-free), loaded into registers for each K tile and stored back. Valid
  on every backend, including the CPU one, at the cost of that extra traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects import memref
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute, Operation, SSAValue

from visc.passes.lowering.common import Problems, Schedule, check_neutral, check_range, check_unroll
from visc.passes.lowering.loops import Cond, FunctionLowering, Idx, KernelBuilder
from visc.passes.lowering.workgroup import GroupBuilder, byte_size, group_kernel, scratch

STAGED_KEYS = frozenset({"stage", "block_m", "block_n", "tile_k", "split_k"})
MAX_SPLIT_K = 64
# What a staged schedule that leaves out these keys gets (the tuner pins them to these values
# where the kernel does not read them)
STAGED_DEFAULTS = {"block_m": 64, "block_n": 64, "tile_k": 16, "split_k": 1}
# The largest static work-group memory of any target (CUDA's 48 KiB); the tuner's spaces apply
# each device's own limit (visc.tuner.space.DeviceLimits.local_memory_bytes).
MAX_LOCAL_BYTES = 48 * 1024
MAX_THREAD_TILE = 64  # accumulators per thread


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Tiles:
    """The staged schedule of one GEMM: block, K step and per-thread register tile."""

    stage: int
    bm: int
    bn: int
    bk: int
    tm: int
    tn: int
    unroll_k: int = 0
    split: int = 1  # K-slices summed by a second kernel (split_k)

    @property
    def threads(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)

    def lda(self, a_k_fast: bool) -> int:
        return self.bm + (1 if a_k_fast else 0)

    def ldb(self, b_n_fast: bool) -> int:
        return self.bn + (0 if b_n_fast else 1)

    def local_elements(self, a_k_fast: bool = True, b_n_fast: bool = True) -> int:
        """Elements of work-group memory the kernel allocates."""
        n = self.bk * (self.lda(a_k_fast) + self.ldb(b_n_fast))
        return n + (self.tm * self.tn * self.threads if self.stage == 1 else 0)


def staged_tiles(sched: Schedule, tm_key: str, tn_key: str, op: Operation | None = None) -> Tiles:
    """The tiles `sched` asks for; an `op` placed on the CPU backend keeps the accumulators
    in work-group memory (stage 1), as one stack frame runs all its threads."""
    placement = op.attributes.get("placement") if op is not None else None
    on_cpu = isinstance(placement, StringAttr) and placement.data == "cpu"
    stage = sched.get("stage", 0)
    d = STAGED_DEFAULTS
    return Tiles(1 if on_cpu and stage == 2 else stage, sched.get("block_m", d["block_m"]),
                 sched.get("block_n", d["block_n"]), sched.get("tile_k", d["tile_k"]), sched.get(tm_key, 4),
                 sched.get(tn_key, 4), sched.get("unroll_k", 0), sched.get("split_k", d["split_k"]))


def local_bytes(tiles: Tiles, elt_bytes: int, a_k_fast: bool = True, b_n_fast: bool = True) -> int:
    return tiles.local_elements(a_k_fast, b_n_fast) * elt_bytes


def check_staged(problems: Problems, sched: Schedule, tm_key: str, tn_key: str, elt_bytes: int,
                 a_k_fast: bool = True, b_n_fast: bool = True,
                 other_keys: Sequence[tuple[str, int]] = ()) -> Tiles:
    """Legality of a staged schedule (stage >= 1); `other_keys` must keep these neutral values."""
    t = staged_tiles(sched, tm_key, tn_key)
    for key, top in (("block_m", 256), ("block_n", 256), ("tile_k", 256), ("split_k", MAX_SPLIT_K)):
        check_range(problems, sched, key, STAGED_DEFAULTS[key], 1, top)
    tm = check_range(problems, sched, tm_key, 4, 1, None)
    tn = check_range(problems, sched, tn_key, 4, 1, None)
    check_unroll(problems, sched, "unroll_k")
    check_neutral(problems, sched, other_keys, f"a staged schedule (stage={t.stage})")
    if problems:
        return t
    if t.bm % tm or t.bn % tn:
        problems.append(f"schedule {tm_key}={tm} and {tn_key}={tn} must divide block_m={t.bm} and block_n={t.bn}")
        return t
    if tm * tn > MAX_THREAD_TILE:
        problems.append(f"register tile {tm}x{tn} exceeds {MAX_THREAD_TILE} accumulators per thread")
    if sched.get("wg", 0) != t.threads:
        problems.append(f"schedule wg={sched.get('wg', 0)} must be the {t.threads} threads of a "
                        f"{t.bm}x{t.bn} block of {tm}x{tn} tiles")
    size = local_bytes(t, elt_bytes, a_k_fast, b_n_fast)
    if size > MAX_LOCAL_BYTES:
        problems.append(f"staged tiles need {size} bytes of work-group memory (at most {MAX_LOCAL_BYTES})")
    return t


# One element of A at (batch index, row m, contraction k) / of B at (batch index, k, column n);
# the indices are inside the operand (the engine clamps them), the result is its value.
LoadA = Callable[[GroupBuilder, list[Idx], Idx, Idx], SSAValue]
LoadB = Callable[[GroupBuilder, list[Idx], Idx, Idx], SSAValue]
# Finish and store one output (batch index, row m, column n, accumulated value); called only
# for m < M and n < N, from the GEMM kernel or (split-K) the kernel that adds the slices.
StoreC = Callable[[KernelBuilder, list[Idx], Idx, Idx, SSAValue], None]


@dataclass
class StagedGemm:
    """One staged GEMM kernel: sizes, tiles, element type and the callers' accessors."""

    m: int
    n: int
    k: int
    batch: Sequence[int]
    tiles: Tiles
    elt: Attribute
    load_a: LoadA
    load_b: LoadB
    store: StoreC
    a_k_fast: bool = True  # A's contiguous global dim is k (else m)
    b_n_fast: bool = True  # B's contiguous global dim is n (else k)

    def build(self, fl: FunctionLowering, name_hint: str) -> None:
        t = self.tiles
        blocks = [_ceil_div(self.m, t.bm), _ceil_div(self.n, t.bn)]
        if t.split == 1:
            group_kernel(fl, name_hint, [*self.batch, *blocks], t.threads, self._body)
            return
        partial = scratch(fl, [*self.batch, t.split, self.m, self.n], self.elt, name_hint + ":split_k")

        def body(k: GroupBuilder, ivs: list[Idx]) -> None:
            *bidx, s, mb, nb = ivs
            self._body(k, [*bidx, mb, nb], (s, partial))

        group_kernel(fl, name_hint, [*self.batch, t.split, *blocks], t.threads, body)

        def add_slices(k: KernelBuilder, ivs: list[Idx]) -> None:
            *bidx, m, n = ivs
            total = k.load(partial, [*bidx, 0, m, n])
            for s in range(1, t.split):
                total = k.fadd(total, k.load(partial, [*bidx, s, m, n]))
            self.store(k, bidx, m, n, total)

        fl.kernel(name_hint + "_split_k", [*self.batch, self.m, self.n], min(t.threads, 256), add_slices)

    # -- pieces of the work-group body ----------------------------------------------------

    def _copy(self, k: GroupBuilder, tid: SSAValue, rows: int, cols: int, fast_is_rows: bool,
              ld: int, tile: SSAValue, value: Callable[[Idx, Idx], SSAValue]) -> None:
        """Fill `tile[kk * ld + x]` for kk < rows (the K step), x < cols, element (kk, x) =
        value(kk, x); consecutive threads walk the fast dim (x if not fast_is_rows, else kk)."""
        wg = self.tiles.threads
        total = rows * cols
        fast = rows if fast_is_rows else cols
        for r in range(_ceil_div(total, wg)):
            if wg % fast == 0:
                f: Idx = k.rem(tid, fast)
                s: Idx = k.add(k.div(tid, fast), r * (wg // fast))
            else:
                e = k.add(tid, r * wg)
                f, s = k.rem(e, fast), k.div(e, fast)
            kk, x = (f, s) if fast_is_rows else (s, f)

            def put(kk: Idx = kk, x: Idx = x) -> list[SSAValue]:
                k.store(value(kk, x), tile, [k.add(k.mul(kk, ld), x)])
                return []

            if (r + 1) * wg > total:
                k.if_(k.cmp("slt", k.add(tid, r * wg), total), put)
            else:
                put()

    def _body(self, k: GroupBuilder, ivs: list[Idx], slice_: tuple[Idx, SSAValue] | None = None) -> None:
        """One work-group; with ``slice_`` = (K-slice index, partial-sum buffer), only that
        slice of K is summed and the sums go to the buffer unfinished."""
        t = self.tiles
        *bidx, mb, nb = ivs
        wg, tm, tn, bk = t.threads, t.tm, t.tn, t.bk
        lda, ldb = t.lda(self.a_k_fast), t.ldb(self.b_n_fast)
        a_tile = k.local(bk * lda, self.elt)
        b_tile = k.local(bk * ldb, self.elt)
        nacc = tm * tn
        zero = k.const(0.0, self.elt)
        if t.stage == 1:
            acc_ref = k.local(nacc * wg, self.elt)

            def acc_at(tid: SSAValue, q: int) -> list[Idx]:
                return [k.add(tid, q * wg)]
        else:
            op = memref.AllocaOp.get(self.elt, shape=[nacc])
            k.emit(op)
            acc_ref = op.memref

            def acc_at(tid: SSAValue, q: int) -> list[Idx]:
                return [q]

        m0, n0 = k.mul(mb, t.bm), k.mul(nb, t.bn)
        col_threads = t.bn // tn
        m_step, n_step = t.bm // tm, t.bn // tn
        kt_count = _ceil_div(_ceil_div(self.k, bk), t.split)  # K tiles per slice
        kt_first: Idx = 0 if slice_ is None else k.mul(slice_[0], kt_count)

        def init(tid: SSAValue) -> None:
            for q in range(nacc):
                k.store(zero, acc_ref, acc_at(tid, q))

        k.threads(wg, init)

        def clamp(v: Idx, size: int) -> tuple[Idx, Cond]:
            """(v clamped below `size`, whether v < size), v >= 0."""
            return k.min(v, size - 1), k.cmp("slt", v, size)

        ragged_m = _ceil_div(self.m, t.bm) * t.bm > self.m
        ragged_n = _ceil_div(self.n, t.bn) * t.bn > self.n

        ragged_k = kt_count * t.split * bk > self.k  # slices past K read zeros

        def k_step(kt: Idx, _: list[SSAValue]) -> list[SSAValue]:
            k0 = k.mul(k.add(kt_first, kt), bk)

            def operand(origin: Idx, size: int, ragged: bool,
                        load: Callable[[Idx, Idx], SSAValue]) -> Callable[[Idx, Idx], SSAValue]:
                """Element (kk, x) of the K step's tile of A (x along m) or B (x along n):
                `load(index along m or n, k)`, clamped rows/columns, zeros past K."""

                def value(kk: Idx, x: Idx) -> SSAValue:
                    i = k.add(origin, x)
                    if ragged:
                        i = k.min(i, size - 1)
                    kg = k.add(k0, kk)
                    if not ragged_k:
                        return load(i, kg)
                    kc, kok = clamp(kg, self.k)
                    return k.select(kok, load(i, kc), zero)

                return value

            a_value = operand(m0, self.m, ragged_m, lambda m, kg: self.load_a(k, bidx, m, kg))
            b_value = operand(n0, self.n, ragged_n, lambda n, kg: self.load_b(k, bidx, kg, n))

            def copy(tid: SSAValue) -> None:
                self._copy(k, tid, bk, t.bm, self.a_k_fast, lda, a_tile, a_value)
                self._copy(k, tid, bk, t.bn, not self.b_n_fast, ldb, b_tile, b_value)

            k.threads(wg, copy)
            k.barrier()

            def compute(tid: SSAValue) -> None:
                tmi, tni = k.div(tid, col_threads), k.rem(tid, col_threads)
                accs = [k.read(acc_ref, acc_at(tid, q)) for q in range(nacc)]

                def step(kk: Idx, accs: list[SSAValue]) -> list[SSAValue]:
                    av = [k.read(a_tile, [k.add(k.mul(kk, lda), k.add(tmi, i * m_step))]) for i in range(tm)]
                    bv = [k.read(b_tile, [k.add(k.mul(kk, ldb), k.add(tni, j * n_step))]) for j in range(tn)]
                    return [k.fma(av[i], bv[j], accs[i * tn + j]) for i in range(tm) for j in range(tn)]

                if t.unroll_k == 0:  # unrolled here: the PTX path has no unroll metadata
                    for kk in range(bk):
                        accs = step(kk, accs)
                else:
                    accs = k.loop(0, bk, accs, step, unroll=t.unroll_k)
                for q, v in enumerate(accs):
                    k.store(v, acc_ref, acc_at(tid, q))

            k.threads(wg, compute)
            k.barrier()
            return []

        k.loop(0, kt_count, [], k_step)

        def finish(tid: SSAValue) -> None:
            tmi, tni = k.div(tid, col_threads), k.rem(tid, col_threads)
            for i in range(tm):
                m = k.add(m0, k.add(tmi, i * m_step))
                m_ok = k.cmp("slt", m, self.m) if ragged_m else True
                for j in range(tn):
                    n = k.add(n0, k.add(tni, j * n_step))
                    n_ok = k.cmp("slt", n, self.n) if ragged_n else True

                    def put(i: int = i, j: int = j, m: Idx = m, n: Idx = n) -> list[SSAValue]:
                        acc = k.read(acc_ref, acc_at(tid, i * tn + j))
                        if slice_ is None:
                            self.store(k, bidx, m, n, acc)
                        else:
                            k.store(acc, slice_[1], [*bidx, slice_[0], m, n])
                        return []

                    k.if_(k.and_(m_ok, n_ok), put)

        k.threads(wg, finish)


def elt_bytes(elt: Attribute) -> int:
    return byte_size(elt)


__all__ = ["MAX_SPLIT_K", "STAGED_DEFAULTS", "STAGED_KEYS", "StagedGemm", "Tiles", "check_staged", "local_bytes", "staged_tiles", "MAX_LOCAL_BYTES"]
