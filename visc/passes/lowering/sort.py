"""Sorting rows on the GPU (the building block of sort, top-k and NMS), and the lowerings of
`vision.sort` and `vision.topk`.

Each row is sorted by a bitonic network in its "all comparators ascending" form: stage s
first compares element i with its mirror in the block of 2^s (a flip), then runs half
cleaners at distances 2^(s-2) .. 1. Every comparator puts the element that sorts first at
the lower position, so rows need no padding to a power of two: an element past the end
counts as sorting last and its comparators are skipped. Keys compare by value, then by index,
which makes the order total and the sort stable.

Two forms, chosen by the schedule key ``local``:

* 1 -- one work-group per row sorts (key, index) pairs in local memory, a barrier after each
  of the log2(P)(log2(P)+1)/2 comparator steps, and writes the first `count` positions;
* 0 -- rows too long for local memory: a scratch copy in global memory, one flat kernel per
  comparator step (one thread per comparator), then a kernel writing the results.

Both read ``wg`` (threads per work-group).
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
    if shift is None:  # flip: mirror pairs inside blocks of 2^stage
        half_log = k.sub(stage, 1)
        base = _shl(k, _shr(k, p, half_log), stage)
        off = _band(k, p, k.sub(_shl(k, 1, half_log), 1))
        return k.add(base, off), k.sub(k.add(base, k.sub(_shl(k, 1, stage), 1)), off)
    j = _shl(k, 1, shift)
    i = k.add(_shl(k, _shr(k, p, shift), k.add(shift, 1)), _band(k, p, k.sub(j, 1)))
    return i, k.add(i, j)


def _exchange(k: KernelBuilder, load: Callable[[Idx], tuple[SSAValue, SSAValue]],
              store: Callable[[Idx, SSAValue, SSAValue], None], i: Idx, j: Idx, n: int, descending: bool) -> None:
    """Comparator (i, j): the pair that sorts first ends at i. Skipped when j is past the row."""
    def body() -> list[SSAValue]:
        ki, ii = load(i)
        kj, ij = load(j)
        swap = sorts_before(k, descending, kj, ij, ki, ii)
        store(i, k.select(swap, kj, ki), k.select(swap, ij, ii))
        store(j, k.select(swap, ki, kj), k.select(swap, ii, ij))
        return []

    k.if_(True if n == next_pow2(n) else k.cmp("slt", j, n), body)


def bitonic_local(k: GroupBuilder, keys: SSAValue, idx: SSAValue, n: int, descending: bool) -> None:
    """Sort the work-group's local (key, index) arrays of length n in place; ends after a
    barrier. Stages and steps are uniform scf.for loops (the comparator count is static)."""
    log = next_pow2(n).bit_length() - 1
    half = next_pow2(n) // 2

    def load(i: Idx) -> tuple[SSAValue, SSAValue]:
        return k.read(keys, [i]), k.read(idx, [i])

    def store(i: Idx, key: SSAValue, index: SSAValue) -> None:
        k.store(key, keys, [i])
        k.store(index, idx, [i])

    def step(stage: Idx, shift: Idx | None) -> None:
        k.each(half, lambda p: _exchange(k, load, store, *_pair_ops(k, p, stage, shift), n, descending))
        k.barrier()

    def stage_body(stage: Idx, _: list[SSAValue]) -> list[SSAValue]:
        step(stage, None)

        def cleaner(u: Idx, __: list[SSAValue]) -> list[SSAValue]:
            step(stage, k.sub(k.sub(stage, 2), u))
            return []

        k.loop(0, k.sub(stage, 1), [], cleaner)
        return []

    k.loop(1, log + 1, [], stage_body)


@dataclass(frozen=True)
class RowSort:
    """Sorting `rows` (an iteration space) of `n` keys each, for `count` output positions."""

    name: str
    node: str
    rows: tuple[int, ...]
    n: int
    key_type: Attribute
    descending: bool
    wg: int
    local: bool


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


def sort_global(fl: FunctionLowering, spec: RowSort, key: KeyFn) -> tuple[SSAValue, SSAValue]:
    """Sort every row into scratch arrays [rows, n] of keys and indices, one kernel per step."""
    total = math.prod(spec.rows)
    keys = scratch(fl, [total, spec.n], spec.key_type, spec.node)
    idx = scratch(fl, [total, spec.n], INDEX_T, spec.node)

    def init(k: KernelBuilder, ivs: list[Idx]) -> None:
        row, i = ivs[:-1], ivs[-1]
        r = _flat_row(k, spec.rows, row)
        k.store(key(k, row, i), keys, [r, i])
        k.store(index_value(k, i), idx, [r, i])

    fl.kernel(f"{spec.name}_init", [*spec.rows, spec.n], spec.wg, init)
    log = next_pow2(spec.n).bit_length() - 1
    half = next_pow2(spec.n) // 2
    for stage in range(1, log + 1):
        for shift in _comparators(stage):
            def step(k: KernelBuilder, ivs: list[Idx], stage: int = stage, shift: int = shift) -> None:
                r, p = ivs

                def load(i: Idx) -> tuple[SSAValue, SSAValue]:
                    return k.load(keys, [r, i]), k.load(idx, [r, i])

                def store(i: Idx, kv: SSAValue, iv: SSAValue) -> None:
                    k.store(kv, keys, [r, i])
                    k.store(iv, idx, [r, i])

                lo, hi = _pair_ops(k, p, stage, None if shift < 0 else shift)
                _exchange(k, load, store, lo, hi, spec.n, spec.descending)

            fl.kernel(f"{spec.name}_s{stage}_{'flip' if shift < 0 else shift}", [total, half], spec.wg, step)
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


def check_sort_schedule(problems: Problems, sched: Schedule, n: int, key_type: Attribute, what: str = "") -> None:
    check_wg(problems, sched)
    local = check_range(problems, sched, "local", 1, 0, 1)
    need = sort_local_bytes(n, key_type)
    if local == 1 and need > LOCAL_MEMORY_BYTES:
        problems.append(f"schedule local=1 needs {need} bytes of local memory to sort {n} elements{what}, "
                        f"more than the portable {LOCAL_MEMORY_BYTES}; use local=0")


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
                   bool(sched.get("local", 1)))

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
    SortOp: Lowering(frozenset({"wg", "local"}), _check, _lower),
    TopKOp: Lowering(frozenset({"wg", "local"}), _check, _lower),
}
