"""Sorting rows on the GPU (the building block of sort, top-k and NMS), and the lowerings of
`vision.sort` and `vision.topk`.

Each row is sorted by a bitonic network in its "all comparators ascending" form: stage s
first compares element i with its mirror in the block of 2^s (a flip), then runs half
cleaners at distances 2^(s-2) .. 1. Every comparator puts the element that sorts first at
the lower position, so rows need no padding to a power of two: an element past the end
counts as sorting last and its comparators are skipped. Keys compare by value, then by index,
which makes the order total and the sort stable (NaN keys have no defined place).

Two forms, chosen by the schedule key ``local``:

* 1 -- one work-group per row sorts (key, index) pairs in local memory, a barrier after each
  of the log2(P)(log2(P)+1)/2 comparator steps, and writes the first `count` positions;
* 0 -- rows too long for local memory: blocks of ``block`` elements sort in local memory,
  then each later stage runs its long-distance steps as flat kernels over a scratch copy in
  global memory (one thread per comparator) and its short ones per block in local memory
  again; a last kernel writes the results.

Both read ``wg`` (threads per work-group); the global form reads ``block`` (a power of two
whose (key, index) pairs fit the portable local memory).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerType, i32, i64
from xdsl.ir import Attribute, SSAValue

from visc.dialects.vision import SortOp, TopKOp, VisionOp, get_int, shape_of
from visc.passes.lowering.common import (
    Lowering,
    Problems,
    Schedule,
    check_range,
    check_wg,
    elt,
    kernel_hint,
    node_name,
)
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder, is_float
from visc.passes.lowering.workgroup import (
    LOCAL_MEMORY_BYTES,
    GroupBuilder,
    byte_size,
    group_kernel,
    next_pow2,
    scratch,
)

INDEX_T = i32  # element indices inside sorted rows (rows are far shorter than 2^31)

KeyFn = Callable[[KernelBuilder, list[Idx], Idx], SSAValue]
EmitFn = Callable[[KernelBuilder, list[Idx], Idx, SSAValue, SSAValue], None]


def sort_local_bytes(n: int, key_type: Attribute) -> int:
    """Local memory of the work-group sort of an n-element row."""
    return n * (byte_size(key_type) + byte_size(INDEX_T))


def sorts_before(k: KernelBuilder, descending: bool, ka: SSAValue, ia: SSAValue, kb: SSAValue,
                 ib: SSAValue) -> SSAValue:
    """Whether (key a, index a) comes before (key b, index b): better key, or equal key and
    lower index."""
    if is_float(ka.type):
        better = k.fcmp("ogt" if descending else "olt", ka, kb)
        equal = k.fcmp("oeq", ka, kb)
    else:
        better = k.cmp("sgt" if descending else "slt", ka, kb)
        equal = k.cmp("eq", ka, kb)
    return k.or_(better, k.and_(equal, k.cmp("slt", ia, ib)))  # type: ignore[return-value]


def index_value(k: KernelBuilder, i: Idx) -> SSAValue:
    """An index as the i32 stored in index arrays."""
    if isinstance(i, int):
        return k.const(i, INDEX_T)
    return k.pure(arith.IndexCastOp, i, INDEX_T, key="i32")


def _comparators(stage: int) -> list[int]:
    """Comparator steps of one stage as shifts: -1 is the flip, t >= 0 a half cleaner at 2^t."""
    return [-1, *range(stage - 2, -1, -1)]


def _shl(k: KernelBuilder, a: Idx, b: Idx) -> Idx:
    if isinstance(a, int) and isinstance(b, int):
        return a << b
    return k.pure(arith.ShLIOp, k.idx(a), k.idx(b))


def _shr(k: KernelBuilder, a: Idx, b: Idx) -> Idx:
    if isinstance(a, int) and isinstance(b, int):
        return a >> b
    return k.pure(arith.ShRSIOp, k.idx(a), k.idx(b))


def _band(k: KernelBuilder, a: Idx, b: Idx) -> Idx:
    if isinstance(a, int) and isinstance(b, int):
        return a & b
    return k.pure(arith.AndIOp, k.idx(a), k.idx(b))


def _pair_ops(k: KernelBuilder, p: Idx, stage: Idx, shift: Idx | None) -> tuple[Idx, Idx]:
    """Positions (i, j), i < j, of comparator p of a step of `stage` (shift None: the flip)."""
    if shift is None:  # flip: mirror pairs inside blocks of 2^stage
        half_log = k.sub(stage, 1)
        base = _shl(k, _shr(k, p, half_log), stage)
        off = _band(k, p, k.sub(_shl(k, 1, half_log), 1))
        return k.add(base, off), k.sub(k.add(base, k.sub(_shl(k, 1, stage), 1)), off)
    j = _shl(k, 1, shift)
    i = k.add(_shl(k, _shr(k, p, shift), k.add(shift, 1)), _band(k, p, k.sub(j, 1)))
    return i, k.add(i, j)


def _exchange(k: KernelBuilder, load: Callable[[Idx], tuple[SSAValue, SSAValue]],
              store: Callable[[Idx, SSAValue, SSAValue], None], i: Idx, j: Idx, limit: Idx | None,
              descending: bool) -> None:
    """Comparator (i, j): the pair that sorts first ends at i. Skipped when j >= limit (past
    the row's end; None: never)."""
    def body() -> list[SSAValue]:
        ki, ii = load(i)
        kj, ij = load(j)
        swap = sorts_before(k, descending, kj, ij, ki, ii)
        store(i, k.select(swap, kj, ki), k.select(swap, ij, ii))
        store(j, k.select(swap, ki, kj), k.select(swap, ii, ij))
        return []

    k.if_(True if limit is None else k.cmp("slt", j, limit), body)


def _local_step(k: GroupBuilder, keys: SSAValue, idx: SSAValue, comparators: int, stage: Idx,
                shift: Idx | None, limit: Idx | None, descending: bool) -> None:
    """One comparator step over the work-group's local arrays, then a barrier."""
    def load(i: Idx) -> tuple[SSAValue, SSAValue]:
        return k.read(keys, [i]), k.read(idx, [i])

    def store(i: Idx, key: SSAValue, index: SSAValue) -> None:
        k.store(key, keys, [i])
        k.store(index, idx, [i])

    k.each(comparators, lambda p: _exchange(k, load, store, *_pair_ops(k, p, stage, shift), limit, descending))
    k.barrier()


def bitonic_local(k: GroupBuilder, keys: SSAValue, idx: SSAValue, n: int, descending: bool,
                  limit: Idx | None = None) -> None:
    """Sort the work-group's local (key, index) arrays of length n in place (elements from
    `limit` on, default n, count as past the end); ends after a barrier. Stages and steps are
    uniform scf.for loops (the comparator count is static)."""
    log = next_pow2(n).bit_length() - 1
    half = next_pow2(n) // 2
    if limit is None and n != next_pow2(n):
        limit = n

    def stage_body(stage: Idx, _: list[SSAValue]) -> list[SSAValue]:
        _local_step(k, keys, idx, half, stage, None, limit, descending)

        def cleaner(u: Idx, __: list[SSAValue]) -> list[SSAValue]:
            _local_step(k, keys, idx, half, stage, k.sub(k.sub(stage, 2), u), limit, descending)
            return []

        k.loop(0, k.sub(stage, 1), [], cleaner)
        return []

    k.loop(1, log + 1, [], stage_body)


def cleaners_local(k: GroupBuilder, keys: SSAValue, idx: SSAValue, size: int, descending: bool,
                   limit: Idx | None) -> None:
    """The half-cleaner steps at distances size/2 .. 1 over local arrays of a power-of-two
    `size`: the tail of a stage whose longer steps ran in global memory."""
    log = size.bit_length() - 1
    k.loop(0, log, [], lambda u, _: (_local_step(k, keys, idx, size // 2, 0, k.sub(log - 1, u), limit,
                                                 descending), [])[1])


@dataclass(frozen=True)
class RowSort:
    """How to sort: `rows` (an iteration space) of `n` keys each, kernels named after `name`,
    scratch tagged with ONNX node `node`, and the schedule's work-group size and form."""

    name: str
    node: str
    rows: tuple[int, ...]
    n: int
    key_type: Attribute
    descending: bool
    wg: int
    local: bool
    block: int = 0  # elements per local-memory block of the global form (0: `block_size`)


def load_rows_local(k: GroupBuilder, spec: RowSort, row: list[Idx], key: KeyFn) -> tuple[SSAValue, SSAValue]:
    """Load one row's keys (and indices 0..n-1) into local arrays and sort them there."""
    keys, idx = k.local(spec.n, spec.key_type), k.local(spec.n, INDEX_T)

    def put(i: Idx) -> None:
        k.store(key(k, row, i), keys, [i])
        k.store(index_value(k, i), idx, [i])

    k.each(spec.n, put)
    k.barrier()
    bitonic_local(k, keys, idx, spec.n, spec.descending)
    return keys, idx


def _flat_row(k: KernelBuilder, rows: Sequence[int], ivs: Sequence[Idx]) -> Idx:
    flat: Idx = 0
    for extent, iv in zip(rows, ivs, strict=True):
        flat = k.add(k.mul(flat, extent), iv)
    return flat


def block_size(n: int, key_type: Attribute) -> int:
    """Elements per block of the global sort: the largest power of two whose (key, index)
    pairs fit the portable local memory, at most the padded row."""
    fit = 1 << max(1, (LOCAL_MEMORY_BYTES // sort_local_bytes(1, key_type)).bit_length() - 1)
    return min(next_pow2(n), fit)


def sort_global(fl: FunctionLowering, spec: RowSort, key: KeyFn) -> tuple[SSAValue, SSAValue]:
    """Sort every row into scratch arrays [rows, n] of keys and indices.

    Blocks of B elements (`block_size`) are sorted in local memory by one work-group each
    (stages 1 .. log2 B). Every later stage runs its flip and its half cleaners at distances
    >= B as flat kernels over global memory (one thread per comparator), and its remaining
    half cleaners, which stay inside blocks, as one more local-memory kernel per block."""
    total = math.prod(spec.rows)
    keys = scratch(fl, [total, spec.n], spec.key_type, spec.node)
    idx = scratch(fl, [total, spec.n], INDEX_T, spec.node)
    size = min(spec.block or block_size(spec.n, spec.key_type), next_pow2(spec.n))
    blocks = -(-spec.n // size)
    log, log_block = next_pow2(spec.n).bit_length() - 1, size.bit_length() - 1

    def load_block(k: GroupBuilder, row: list[Idx], r: Idx, start: Idx, from_input: bool) -> tuple[SSAValue, SSAValue]:
        lk, li = k.local(size, spec.key_type), k.local(size, INDEX_T)

        def put(i: Idx) -> list[SSAValue]:
            g = k.add(start, i)
            if from_input:
                k.store(key(k, row, g), lk, [i])
                k.store(index_value(k, g), li, [i])
            else:
                k.store(k.read(keys, [r, g]), lk, [i])
                k.store(k.read(idx, [r, g]), li, [i])
            return []

        k.each(size, lambda i: k.if_(k.cmp("slt", k.add(start, i), spec.n), lambda: put(i)))
        k.barrier()
        return lk, li

    def store_block(k: GroupBuilder, r: Idx, start: Idx, lk: SSAValue, li: SSAValue) -> None:
        def put(i: Idx) -> list[SSAValue]:
            g = k.add(start, i)
            k.store(k.read(lk, [i]), keys, [r, g])
            k.store(k.read(li, [i]), idx, [r, g])
            return []

        k.each(size, lambda i: k.if_(k.cmp("slt", k.add(start, i), spec.n), lambda: put(i)))

    def presort(k: GroupBuilder, ivs: list[Idx]) -> None:
        row, start = ivs[:-1], k.mul(ivs[-1], size)
        r = _flat_row(k, spec.rows, row)
        lk, li = load_block(k, row, r, start, True)
        bitonic_local(k, lk, li, size, spec.descending, None if spec.n % size == 0 else k.sub(spec.n, start))
        store_block(k, r, start, lk, li)

    group_kernel(fl, f"{spec.name}_blocks", [*spec.rows, blocks], spec.wg, presort)
    half = next_pow2(spec.n) // 2
    for stage in range(log_block + 1, log + 1):
        for shift in [-1, *range(stage - 2, log_block - 1, -1)]:
            def step(k: KernelBuilder, ivs: list[Idx], stage: int = stage, shift: int = shift) -> None:
                r, p = ivs

                def load(i: Idx) -> tuple[SSAValue, SSAValue]:
                    return k.load(keys, [r, i]), k.load(idx, [r, i])

                def store(i: Idx, kv: SSAValue, iv: SSAValue) -> None:
                    k.store(kv, keys, [r, i])
                    k.store(iv, idx, [r, i])

                lo, hi = _pair_ops(k, p, stage, None if shift < 0 else shift)
                _exchange(k, load, store, lo, hi, None if spec.n == next_pow2(spec.n) else spec.n, spec.descending)

            fl.kernel(f"{spec.name}_s{stage}_{'flip' if shift < 0 else shift}", [total, half], spec.wg, step)

        def merge(k: GroupBuilder, ivs: list[Idx]) -> None:
            r, start = ivs[0], k.mul(ivs[1], size)
            lk, li = load_block(k, [], r, start, False)
            cleaners_local(k, lk, li, size, spec.descending, None if spec.n % size == 0 else k.sub(spec.n, start))
            store_block(k, r, start, lk, li)

        group_kernel(fl, f"{spec.name}_s{stage}_blocks", [total, blocks], spec.wg, merge)
    return keys, idx


def sort_rows(fl: FunctionLowering, spec: RowSort, count: int, key: KeyFn, emit: EmitFn) -> None:
    """Sort every row and call `emit(k, row, position, key, index)` for the first `count`
    positions (index: i32)."""
    if spec.local:
        def body(k: GroupBuilder, row: list[Idx]) -> None:
            keys, idx = load_rows_local(k, spec, row, key)
            k.each(count, lambda pos: emit(k, row, pos, k.read(keys, [pos]), k.read(idx, [pos])))

        group_kernel(fl, spec.name, list(spec.rows), spec.wg, body)
        return
    keys, idx = sort_global(fl, spec, key)

    def out(k: KernelBuilder, ivs: list[Idx]) -> None:
        row, pos = ivs[:-1], ivs[-1]
        r = _flat_row(k, spec.rows, row)
        emit(k, row, pos, k.load(keys, [r, pos]), k.load(idx, [r, pos]))

    fl.kernel(f"{spec.name}_out", [*spec.rows, count], spec.wg, out)


# -- vision.sort / vision.topk ---------------------------------------------------------------


def check_sort_schedule(problems: Problems, sched: Schedule, n: int, key_type: Attribute,
                        local_bytes: int | None = None) -> None:
    """Legality of ``wg``, ``local`` and ``block`` for sorting rows of n keys; `local_bytes`:
    what the local form needs (default: the sort alone)."""
    check_wg(problems, sched)
    local = check_range(problems, sched, "local", 1, 0, 1)
    need = sort_local_bytes(n, key_type) if local_bytes is None else local_bytes
    if local == 1 and need > LOCAL_MEMORY_BYTES:
        problems.append(f"schedule local=1 needs {need} bytes of local memory for {n} elements, "
                        f"more than the portable {LOCAL_MEMORY_BYTES}; use local=0")
    if "block" in sched.values:
        block = sched.values["block"]
        fit = block_size(1 << 30, key_type)
        if local != 0:
            problems.append("schedule key block is read only with local=0")
        elif block < 2 or block & (block - 1) or block > fit:
            problems.append(f"schedule block={block} is illegal here (needs a power of two in 2..{fit})")


def _check(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    x = shape_of(op.ins[0])
    check_sort_schedule(problems, sched, x[get_int(op, "axis")], elt(op.ins[0]))
    key = elt(op.ins[0])
    if isinstance(key, IntegerType) and key.width.data == 1:
        problems.append("bool keys are not supported")
    return problems


def _lower(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    x = op.ins[0]
    values, indices = op.outs
    shape = shape_of(x)
    axis = get_int(op, "axis")
    rows = tuple(d for a, d in enumerate(shape) if a != axis)
    if isinstance(op, TopKOp):
        count, descending = get_int(op, "k"), bool(get_int(op, "largest", 1))
    else:
        count, descending = shape[axis], bool(get_int(op, "descending", 0))
    spec = RowSort(kernel_hint(op), node_name(op), rows, shape[axis], elt(x), descending, sched.wg,
                   bool(sched.get("local", 1)), sched.get("block", 0))

    def at(row: Sequence[Idx], i: Idx) -> list[Idx]:
        return [*row[:axis], i, *row[axis:]]

    def key(k: KernelBuilder, row: list[Idx], i: Idx) -> SSAValue:
        return k.load(x, at(row, i))

    def emit(k: KernelBuilder, row: list[Idx], pos: Idx, kv: SSAValue, iv: SSAValue) -> None:
        k.store(kv, values, at(row, pos))
        k.store(k.pure(arith.ExtSIOp, iv, i64), indices, at(row, pos))

    if count and shape[axis]:
        sort_rows(fl, spec, count, key, emit)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    SortOp: Lowering(frozenset({"wg", "local", "block"}), _check, _lower),
    TopKOp: Lowering(frozenset({"wg", "local", "block"}), _check, _lower),
}
