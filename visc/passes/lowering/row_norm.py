"""layer_norm, group_norm -> one kernel each: every row's mean and variance, then the output.

A row is what one pair of statistics covers: the elements of the normalized ``axes`` at one
index of the other dims (layer_norm), or one group's channels with all their spatial dims
(group_norm). Kernels read x through a view that merges adjacent dims of the same kind
(normalized or not): rows of the dims from an axis on are contiguous, layer norm over NCHW
channels reads (N, C, HW) with rows strided by HW (consecutive threads, consecutive
addresses). Statistics accumulate in float32 (float64 for float64 data): the mean first, then
the mean of squared deviations from it (two passes: no cancellation, unlike E[x^2] - E[x]^2),
and a third pass writes y = (x - mean) * inv_std * scale + bias, inv_std = 1 / sqrt(var + eps).

Schedule keys:

* ``coop`` -- 0: one thread per row, three loops over its n elements (many short rows: layer
  norm over channels); 1: one work-group per row (few long rows: group and instance norm over
  whole feature maps): each pass strides over the row with the group's threads and their
  partial sums meet in a tree reduction in local memory;
* ``partials`` -- with ``coop`` = 0, the independent partial sums a thread keeps over
  consecutive elements (1..16): CPUs, whose thread per row would otherwise wait on one add
  chain, want about a vector's worth;
* ``wg`` -- threads per work-group (a power of two with ``coop`` = 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import Float64Type, f32, f64
from xdsl.ir import Attribute, SSAValue

from visc.dialects.vision import (
    GroupNormOp,
    LayerNormOp,
    VisionOp,
    get_float,
    get_int,
    get_ints,
    shape_of,
)
from visc.passes.lowering.common import (
    Lowering,
    Problems,
    Schedule,
    check_range,
    check_wg,
    chunked_reduce,
    elt,
    kernel_hint,
    node_name,
)
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder, broadcast_index
from visc.passes.lowering.workgroup import GroupBuilder, group_kernel

# (builder, row indices, element index in the row) -> a value
RowFn = Callable[[KernelBuilder, list[Idx], Idx], SSAValue]


def stat_type(typ: Attribute) -> Attribute:
    """The type row statistics accumulate in (visc.reference_norm.stat_dtype)."""
    return f64 if isinstance(typ, Float64Type) else f32


@dataclass(frozen=True)
class _Layout:
    """x's dims of size > 1 merged into runs of normalized or row dims, in order."""

    shape: tuple[int, ...]
    groups: tuple[tuple[bool, tuple[int, ...]], ...]  # (normalized?, the original dims)

    @staticmethod
    def of(shape: Sequence[int], axes: Sequence[int]) -> _Layout:
        groups: list[tuple[bool, list[int]]] = []
        for d, size in enumerate(shape):
            if size == 1:
                continue
            if groups and groups[-1][0] == (d in axes):
                groups[-1][1].append(d)
            else:
                groups.append((d in axes, [d]))
        return _Layout(tuple(shape), tuple((norm, tuple(dims)) for norm, dims in groups))

    def size(self, group: int) -> int:
        return math.prod(self.shape[d] for d in self.groups[group][1])

    @property
    def merged(self) -> tuple[int, ...]:
        return tuple(self.size(g) for g in range(len(self.groups)))

    @property
    def rows(self) -> tuple[int, ...]:
        return tuple(self.size(g) for g, (norm, _) in enumerate(self.groups) if not norm) or (1,)

    @property
    def norm(self) -> tuple[int, ...]:
        return tuple(self.size(g) for g, (norm, _) in enumerate(self.groups) if norm)

    def index(self, k: KernelBuilder, row: Sequence[Idx], i: Idx) -> list[Idx]:
        """The merged index of element i of a row (i unflattened over the normalized runs)."""
        parts: list[Idx] = []
        rest = i
        for j, size in reversed(list(enumerate(self.norm))):
            parts.insert(0, k.rem(rest, size) if j else rest)
            rest = k.div(rest, size) if j else rest
        rows, norms = iter(row), iter(parts)
        return [next(norms) if norm else next(rows) for norm, _ in self.groups]


def row_shape(op: VisionOp) -> tuple[tuple[int, ...], int]:
    """(the row dims, the elements per row) of a row normalization."""
    x = shape_of(op.ins[0])
    if isinstance(op, GroupNormOp):
        g = get_int(op, "groups")
        return (x[0], g), math.prod(x[1:]) // g
    layout = _Layout.of(x, get_ints(op, "axes"))
    return layout.rows, math.prod(layout.norm)


@dataclass
class _Rows:
    """What the kernels of one op read and write, as functions of (row, i)."""

    dims: tuple[int, ...]
    n: int
    acc: Attribute
    epsilon: float
    load: RowFn  # x, converted to `acc`
    affine: Callable[[KernelBuilder, list[Idx], Idx, SSAValue], SSAValue]  # normalized -> y (acc)
    store: Callable[[KernelBuilder, list[Idx], Idx, SSAValue], None]
    stats: Callable[[KernelBuilder, list[Idx], SSAValue, SSAValue], None] | None = None


def _param(fl: FunctionLowering, ref: SSAValue, layout: _Layout, acc: Attribute, node: str) -> Callable[
        [KernelBuilder, list[Idx]], SSAValue]:
    """A layer_norm scale/bias (broadcast to x) read at a merged index of x: through a view
    merged like x where each run of its dims is all 1 or all x's, else at the original index."""
    rank = len(layout.shape)
    padded = (1,) * (rank - len(shape_of(ref))) + shape_of(ref)
    runs = [tuple(padded[d] for d in dims) for _, dims in layout.groups]
    if all(all(n == 1 for n in run) or run == tuple(layout.shape[d] for d in dims)
           for run, (_, dims) in zip(runs, layout.groups, strict=True)):
        merged = [math.prod(run) for run in runs]
        view = fl.view(ref, merged or [1], node)
        return lambda k, idx: k.fconvert(k.load(view, [0 if m == 1 else j for m, j in zip(merged, idx, strict=True)]
                                                or [0]), acc)

    def at(k: KernelBuilder, idx: list[Idx]) -> SSAValue:
        full: list[Idx] = [0] * rank
        for j, (_, dims) in zip(idx, layout.groups, strict=True):
            rest = j
            for d in reversed(dims[1:]):
                full[d] = k.rem(rest, layout.shape[d])
                rest = k.div(rest, layout.shape[d])
            full[dims[0]] = rest
        return k.fconvert(k.load(ref, broadcast_index(shape_of(ref), full)), acc)

    return at


def _layer_norm_rows(op: VisionOp, fl: FunctionLowering) -> _Rows:
    x, out = op.ins[0], op.outs[0]
    node = node_name(op)
    typ, acc = elt(out), stat_type(elt(x))
    layout = _Layout.of(shape_of(x), get_ints(op, "axes"))
    merged = layout.merged or (1,)
    xv, yv = fl.view(x, merged, node + ":rows_in"), fl.view(out, merged, node + ":rows_out")

    def at(k: KernelBuilder, row: list[Idx], i: Idx) -> list[Idx]:
        return layout.index(k, row, i) or [0]

    scale = _param(fl, op.ins[1], layout, acc, node + ":scale")
    bias = _param(fl, op.ins[2], layout, acc, node + ":bias") if len(op.ins) > 2 else None

    def affine(k: KernelBuilder, row: list[Idx], i: Idx, v: SSAValue) -> SSAValue:
        idx = layout.index(k, row, i)
        return k.fma(v, scale(k, idx), bias(k, idx)) if bias is not None else k.fmul(v, scale(k, idx))

    stats = None
    if len(op.outs) == 3:
        views = [fl.view(o, layout.rows, node + f":stat{j}") for j, o in enumerate(op.outs[1:])]

        def stats(k: KernelBuilder, row: list[Idx], mean: SSAValue, inv: SSAValue) -> None:
            for v, ref in zip((mean, inv), views, strict=True):
                k.store(k.fconvert(v, elt(ref)), ref, row)

    return _Rows(layout.rows, math.prod(layout.norm), acc, get_float(op, "epsilon", 1e-5),
                 lambda k, row, i: k.fconvert(k.load(xv, at(k, row, i)), acc), affine,
                 lambda k, row, i, v: k.store(k.fconvert(v, typ), yv, at(k, row, i)), stats)


def _group_norm_rows(op: VisionOp, fl: FunctionLowering) -> _Rows:
    x, out = op.ins[0], op.outs[0]
    node = node_name(op)
    typ, acc = elt(out), stat_type(elt(x))
    dims, n = row_shape(op)
    xv, yv = fl.view(x, (*dims, n), node + ":rows_in"), fl.view(out, (*dims, n), node + ":rows_out")
    cg = shape_of(x)[1] // get_int(op, "groups")
    spatial = n // cg
    scale, bias = op.ins[1], op.ins[2]

    def channel_affine(k: KernelBuilder, row: list[Idx], i: Idx, v: SSAValue) -> SSAValue:
        c = [k.add(k.mul(row[1], cg), k.div(i, spatial))]
        return k.fma(v, k.fconvert(k.load(scale, c), acc), k.fconvert(k.load(bias, c), acc))

    return _Rows(dims, n, acc, get_float(op, "epsilon", 1e-5),
                 lambda k, row, i: k.fconvert(k.load(xv, [*row, i]), acc), channel_affine,
                 lambda k, row, i, v: k.store(k.fconvert(v, typ), yv, [*row, i]))


def _inv_std(k: KernelBuilder, r: _Rows, sum_sq: SSAValue) -> SSAValue:
    var = k.fdiv(sum_sq, k.const(r.n, r.acc))
    return k.fdiv(k.const(1.0, r.acc), k.sqrt(k.fadd(var, k.const(r.epsilon, r.acc))))


def _row_sum(k: KernelBuilder, r: _Rows, row: list[Idx], term: Callable[[SSAValue], SSAValue],
             partials: int) -> SSAValue:
    """The sum of term(x) over a row in one thread, in `partials` independent chains."""
    return chunked_reduce(k, r.n, k.const(0.0, r.acc), lambda i: term(r.load(k, row, i)), k.fadd, partials)


def _thread_per_row(op: VisionOp, sched: Schedule, fl: FunctionLowering, r: _Rows) -> None:
    partials = sched.get("partials", 1)

    def body(k: KernelBuilder, row: list[Idx]) -> None:
        mean = k.fdiv(_row_sum(k, r, row, lambda v: v, partials), k.const(r.n, r.acc))

        def square(v: SSAValue) -> SSAValue:
            d = k.fsub(v, mean)
            return k.fmul(d, d)

        inv = _inv_std(k, r, _row_sum(k, r, row, square, partials))
        if r.stats is not None:
            r.stats(k, row, mean, inv)

        def write(i: Idx, c: list[SSAValue]) -> list[SSAValue]:
            r.store(k, row, i, r.affine(k, row, i, k.fmul(k.fsub(r.load(k, row, i), mean), inv)))
            return []

        k.loop(0, r.n, [], write)

    fl.kernel(kernel_hint(op), list(r.dims), sched.wg, body)


def _group_sum(k: GroupBuilder, r: _Rows, row: list[Idx], term: Callable[[SSAValue], SSAValue]) -> SSAValue:
    """The sum of term(x) over the row by the whole work-group, read by every thread."""
    wg = k.wg
    partial = k.local(wg, r.acc)

    def strided(t: SSAValue) -> None:
        (s,) = k.loop(t, r.n, [k.const(0.0, r.acc)], lambda i, c: [k.fadd(c[0], term(r.load(k, row, i)))], step=wg)
        k.store(s, partial, [t])

    k.threads(wg, strided)
    k.barrier()
    half = wg // 2
    while half >= 1:
        def fold(t: SSAValue, half: int = half) -> None:
            k.store(k.fadd(k.read(partial, [t]), k.read(partial, [k.add(t, half)])), partial, [t])

        k.threads(half, fold)
        k.barrier()
        half //= 2
    return k.read(partial, [0])


def _group_per_row(op: VisionOp, sched: Schedule, fl: FunctionLowering, r: _Rows) -> None:
    def body(k: GroupBuilder, row: list[Idx]) -> None:
        mean = k.fdiv(_group_sum(k, r, row, lambda v: v), k.const(r.n, r.acc))

        def square(v: SSAValue) -> SSAValue:
            d = k.fsub(v, mean)
            return k.fmul(d, d)

        inv = _inv_std(k, r, _group_sum(k, r, row, square))  # its own local array: no barrier needed
        stats = r.stats
        if stats is not None:
            k.single(lambda: stats(k, row, mean, inv))
        k.each(r.n, lambda i: r.store(k, row, i, r.affine(k, row, i, k.fmul(k.fsub(r.load(k, row, i), mean), inv))))

    group_kernel(fl, kernel_hint(op), list(r.dims), sched.wg, body)


def check_row_norm(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    coop = check_range(problems, sched, "coop", 0, 0, 1)
    partials = check_range(problems, sched, "partials", 1, 1, 16)
    if coop and partials != 1:
        problems.append(f"schedule partials={partials} is read only with coop=0 (the work-group splits rows itself)")
    wg = sched.get("wg", 1)
    if coop and wg & (wg - 1):
        problems.append(f"schedule wg={wg} must be a power of two with coop=1 (tree reduction)")
    return problems


def lower_row_norm(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    r = (_group_norm_rows if isinstance(op, GroupNormOp) else _layer_norm_rows)(op, fl)
    if r.n == 0:
        return
    (_group_per_row if sched.get("coop", 0) else _thread_per_row)(op, sched, fl, r)


LOWERINGS: dict[type[VisionOp], Lowering] = {
    LayerNormOp: Lowering(frozenset({"wg", "coop", "partials"}), check_row_norm, lower_row_norm),
    GroupNormOp: Lowering(frozenset({"wg", "coop", "partials"}), check_row_norm, lower_row_norm),
}
