"""What every per-op lowering shares: its registry entry, schedule access, names and epilogues.

A `Lowering` declares the schedule keys it reads; `vision-default-schedule` fills exactly those
keys and the pass rejects any other key, so a tuning record can never be silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute, SSAValue

from visc.dialects.vision import ScheduleAttr, VisionOp, element_type_of, shape_of
from visc.passes.lowering.loops import (
    Cond,
    FunctionLowering,
    Idx,
    KernelBuilder,
    broadcast_index,
    vectorizable_body,
)

Problems = list[str]


@dataclass(frozen=True)
class ColumnGroup:
    """One register column group of a thread (conv2d output columns, matmul N columns): its
    first column, whether the group exists for this thread, the static range of its first
    column, and whether it is the shifted last group that ends at the last column."""

    col: Idx
    ok: Cond
    lo: int
    hi: int
    last: Cond = False


@dataclass(frozen=True)
class Schedule:
    """The integer knobs of one op's `schedule` attribute."""

    values: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def of(op: VisionOp) -> Schedule | None:
        attr = op.attributes.get("schedule")
        return Schedule(attr.as_dict()) if isinstance(attr, ScheduleAttr) else None

    def get(self, key: str, default: int) -> int:
        return self.values.get(key, default)

    @property
    def wg(self) -> int:
        return self.values["wg"]


@dataclass(frozen=True)
class Lowering:
    """One op family's lowering: the schedule keys it reads, a legality check of their values
    for the op's shapes (returns problems, empty when legal), and the builder of its kernels."""

    keys: frozenset[str]
    check: Callable[[VisionOp, Schedule], Problems]
    lower: Callable[[VisionOp, Schedule, FunctionLowering], None]


def node_name(op: VisionOp) -> str:
    attr = op.attributes.get("onnx_node")
    return attr.data if isinstance(attr, StringAttr) else op.name.split(".")[-1]


def describe(op: VisionOp) -> str:
    """How errors name an op: its kind and the model's node name."""
    attr = op.attributes.get("onnx_node")
    where = f" (ONNX node '{attr.data}')" if isinstance(attr, StringAttr) else ""
    return f"{op.name}{where}"


def kernel_hint(op: VisionOp, suffix: str = "") -> str:
    """Readable kernel name: the op kind then its node name(s); fused names joined by '_'."""
    kind = op.name.split(".")[-1]
    node = node_name(op).replace("+", "_")
    return f"{kind}_{node}{'_' + suffix if suffix else ''}"


def check_range(problems: Problems, sched: Schedule, key: str, default: int, lo: int, hi: int | None,
                why: str = "") -> int:
    """Read `key`, recording a problem unless lo <= value <= hi."""
    v = sched.get(key, default)
    if v < lo or (hi is not None and v > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        problems.append(f"schedule {key}={v} is illegal here (needs {bound}{'; ' + why if why else ''})")
    return v


def check_wg(problems: Problems, sched: Schedule) -> None:
    if "wg" not in sched.values:
        problems.append("schedule has no 'wg' (work-group size)")
    else:
        check_range(problems, sched, "wg", 1, 1, 1024)


def check_unroll(problems: Problems, sched: Schedule, key: str) -> None:
    check_range(problems, sched, key, 1, 0, None, "0 means fully")


def check_neutral(problems: Problems, sched: Schedule, keys: Sequence[tuple[str, int]], kernel: str) -> None:
    """Record a problem for each key `kernel` does not read that is not at its neutral value
    (a schedule means exactly one kernel)."""
    for key, neutral in keys:
        if sched.get(key, neutral) != neutral:
            problems.append(f"schedule {key}={sched.get(key, neutral)} is not used by {kernel} (it needs {key}={neutral})")


def only_wg(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    check_wg(problems, sched)
    return problems


def load_broadcast(k: KernelBuilder, ref: SSAValue, out_idx: Sequence[Idx]) -> SSAValue:
    """Read a numpy-broadcast operand at an output index."""
    return k.load(ref, broadcast_index(shape_of(ref), out_idx))


def epilogue(k: KernelBuilder, op: VisionOp, value: SSAValue, out_idx: Sequence[Idx],
             fuse: Sequence[SSAValue] | None = None) -> SSAValue:
    """Apply a conv/matmul epilogue body (if any) to one output element; `fuse` replaces the
    op's fuse operands (e.g. by views of them)."""
    if not op.body.blocks:
        return value
    fused = [load_broadcast(k, f, out_idx) for f in (op.fuse if fuse is None else fuse)]
    (res,) = k.inline_body(op.body, [value, *fused])
    return res


def epilogue_vector(k: KernelBuilder, op: VisionOp, value: SSAValue, out_idx: Sequence[Idx], lanes: int,
                    out_last: int, fuse: Sequence[SSAValue] | None = None) -> SSAValue | None:
    """The epilogue applied to `lanes` outputs contiguous along the innermost dim (starting at
    `out_idx`, all inside the output, whose innermost size is `out_last`), as vector code;
    None when the body is not plain float arithmetic."""
    if not op.body.blocks:
        return value
    if not vectorizable_body(op.body):
        return None
    fused = []
    for f in op.fuse if fuse is None else fuse:
        shape = shape_of(f)
        idx = broadcast_index(shape, out_idx)
        if shape and shape[-1] == out_last and out_last != 1:
            fused.append(k.vload(f, idx, lanes))
        else:
            fused.append(k.vbroadcast(k.load(f, idx), lanes))
    (res,) = k.inline_body_vector(op.body, [value, *fused], lanes)
    return res


def elt(v: SSAValue) -> Attribute:
    """The element type of a memref value."""
    return element_type_of(v)


def chunked_reduce(k: KernelBuilder, n: int, init: SSAValue, term: Callable[[Idx], SSAValue],
                   combine: Callable[[SSAValue, SSAValue], SSAValue], partials: int) -> SSAValue:
    """combine over term(0) .. term(n - 1) in one thread, as `partials` independent chains of
    consecutive elements: one dependent chain runs at one add per FPU latency, independent
    ones pipeline (and LLVM packs them into one vector op). The chains meet pairwise, like
    the lanes of a vector reduction, then meet the tail's chain."""
    whole = n // partials if partials > 1 else 0

    def step(j: Idx, c: list[SSAValue]) -> list[SSAValue]:
        base = k.mul(j, partials)
        return [combine(c[p], term(k.add(base, p))) for p in range(partials)]

    chains = k.loop(0, whole, [init] * partials, step) if whole else []
    (tail,) = k.loop(whole * partials, n, [init], lambda i, c: [combine(c[0], term(i))])
    while len(chains) > 1:
        chains = [combine(chains[i], chains[i + 1]) if i + 1 < len(chains) else chains[i]
                  for i in range(0, len(chains), 2)]
    return combine(chains[0], tail) if chains else tail
