"""`lower-vision-to-loops`: bufferized vision (docs/ir.md Stage 3) -> loops (Stage 4).

Every compute op becomes one or more top-level `scf.parallel` kernels built directly with
`KernelBuilder` (see loops.py); `vision.weight`, `vision.buffer` and `vision.reshape` views stay.
The pass makes no choice of its own: every tile size, unroll hint and work-group size comes
from the op's `schedule` attribute (filled by `vision-default-schedule` or a tuner record).
All problems (missing or illegal schedules, ops not bufferized) are reported together, naming
the ONNX nodes, before any IR changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, scf
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from visc.dialects.vision import ReshapeOp, VisionOp
from visc.errors import CompileError
from visc.passes.lowering import (
    arg_reduce,
    conv,
    data_movement,
    elementwise,
    matmul,
    nms,
    normalize,
    pool,
    reduce,
    resize,
    roi_align,
    row_norm,
    scan,
    sort,
)
from visc.passes.lowering.common import Lowering, Schedule, describe
from visc.passes.lowering.loops import FunctionLowering

LOWERINGS: dict[type[VisionOp], Lowering] = {
    **conv.LOWERINGS,
    **matmul.LOWERINGS,
    **pool.LOWERINGS,
    **elementwise.LOWERINGS,
    **normalize.LOWERINGS,
    **data_movement.LOWERINGS,
    **reduce.LOWERINGS,
    **resize.LOWERINGS,
    **sort.LOWERINGS,
    **scan.LOWERINGS,
    **arg_reduce.LOWERINGS,
    **nms.LOWERINGS,
    **roi_align.LOWERINGS,
    **row_norm.LOWERINGS,
}


def schedule_keys(op: VisionOp) -> frozenset[str]:
    """The schedule keys the lowering of `op` reads (empty for views and unknown ops)."""
    lowering = LOWERINGS.get(type(op))
    return lowering.keys if lowering is not None else frozenset()


def _problems(op: VisionOp) -> list[str]:
    lowering = LOWERINGS.get(type(op))
    if lowering is None:
        return ["has no loop lowering"]
    if not op.outs:
        return ["is not bufferized (run vision-bufferize first)"]
    sched = Schedule.of(op)
    if sched is None:
        return ["has no schedule attribute (run vision-default-schedule first)"]
    unknown = sorted(set(sched.values) - lowering.keys)
    if unknown:
        return [f"schedule key(s) {', '.join(unknown)} are not read by its lowering "
                f"(it reads {', '.join(sorted(lowering.keys))})"]
    return lowering.check(op, sched)


def _compute_ops(fn: func.FuncOp) -> list[VisionOp]:
    return [op for op in fn.body.walk() if isinstance(op, VisionOp) and not isinstance(op, ReshapeOp)]


def lower_function(fn: func.FuncOp, names: set[str] | None = None) -> None:
    """Lower every compute op of `fn` in program order (checked beforehand); `names` are the
    kernel names already taken in the module."""
    fl = FunctionLowering(fn.body.block, names)
    for op in _compute_ops(fn):
        sched = Schedule.of(op)
        assert sched is not None and op.parent_block() is fn.body.block
        fl.anchor = op
        before = set(fn.body.block.ops)
        LOWERINGS[type(op)].lower(op, sched, fl)
        placement = op.attributes.get("placement")
        if placement is not None:  # vision-placement's tag travels to the op's kernels
            for new in fn.body.block.ops:
                if isinstance(new, scf.ParallelOp) and new not in before:
                    new.attributes["placement"] = placement
        op.detach()
        op.erase(safe_erase=False)


@dataclass(frozen=True)
class LowerVisionToLoopsPass(ModulePass):
    name = "lower-vision-to-loops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        funcs = [f for f in op.walk() if isinstance(f, func.FuncOp) and f.body.blocks]
        problems: list[str] = []
        for fn in funcs:
            for vop in _compute_ops(fn):
                if vop.parent_block() is not fn.body.block:
                    problems.append(f"{describe(vop)}: must be at the top level of @{fn.sym_name.data}")
                    continue
                problems += [f"{describe(vop)}: {p}" for p in _problems(vop)]
        if problems:
            raise CompileError("cannot lower to loops: " + "; ".join(problems))
        names: set[str] = set()
        for fn in funcs:
            lower_function(fn, names)
