"""`vision-placement`: tag every compute op of the entry function with the device it runs on.

Tags come from three sources, in order (docs/architecture.md):

1. the user: ONNX op types listed in ``fallback`` (`visc compile --fallback NonMaxSuppression,TopK`);
   a fused op runs on the CPU when any of the ONNX ops it merges is listed;
2. ops without a GPU lowering for ``target`` (`NO_GPU_LOWERING`, plus ops with no loop lowering
   at all, which the CPU then reports);
3. a cost rule: a connected group of tiny ops (at most ``tiny`` result elements each, no
   conv/matmul) whose producers and users outside the group are all CPU-placed runs on the CPU
   too, since a device round trip would cost more than the ops.

Everything else runs on the GPU. Views (`vision.reshape`) follow their source and are not tagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, ShapedType, StringAttr
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from visc.dialects.vision import Conv2dOp, Conv2dTransposeOp, MatmulOp, VisionOp
from visc.errors import CompileError

# target -> vision op names its kernels cannot run (none today: every loop lowering maps to
# both GPU targets); a new op with CPU-only lowering is listed here
NO_GPU_LOWERING: dict[str, frozenset[str]] = {"opencl": frozenset(), "cuda": frozenset()}

HEAVY_OPS = (Conv2dOp, Conv2dTransposeOp, MatmulOp)


def placement_of(op: Operation) -> str | None:
    attr = op.attributes.get("placement")
    return attr.data if isinstance(attr, StringAttr) else None


def onnx_ops(op: Operation) -> list[str]:
    attr = op.attributes.get("onnx_op")
    return attr.data.split("+") if isinstance(attr, StringAttr) else []


def compute_ops(fn: func.FuncOp) -> list[VisionOp]:
    return [op for op in fn.body.block.ops if isinstance(op, VisionOp) and not op.IS_VIEW]


def source_op(value: SSAValue) -> Operation | None:
    """The compute op producing ``value``, looking through views; None for inputs and weights."""
    owner = value.owner
    while isinstance(owner, VisionOp) and owner.IS_VIEW:
        owner = owner.operands[0].owner
    return owner if isinstance(owner, VisionOp) else None


def _elements(op: VisionOp) -> int:
    values = list(op.results) or list(op.outs)
    return sum(math.prod(v.type.get_shape()) for v in values if isinstance(v.type, ShapedType))


def _users(op: Operation) -> list[Operation]:
    found: list[Operation] = []
    pending = list(op.results)
    while pending:
        for use in pending.pop().uses:
            user = use.operation
            if isinstance(user, VisionOp) and user.IS_VIEW:
                pending.extend(user.results)
            elif isinstance(user, VisionOp):
                found.append(user)
    return found


def entry(module: ModuleOp) -> func.FuncOp:
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp) and op.body.blocks]
    for fn in funcs:
        if fn.sym_name.data == "main":
            return fn
    if len(funcs) == 1:
        return funcs[0]
    raise CompileError("vision-placement: the module has no @main function")


@dataclass(frozen=True)
class VisionPlacementPass(ModulePass):
    """Tag ops ``placement = "cpu" | "gpu"`` for a GPU ``target`` (see the module docstring)."""

    name = "vision-placement"

    target: str = "opencl"
    fallback: tuple[str, ...] = field(default=())
    tiny: int = 4096

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from visc.passes.lowering.vision_to_loops import LOWERINGS

        if self.target not in NO_GPU_LOWERING:
            raise CompileError(f"vision-placement: unknown GPU target '{self.target}' "
                               f"(known: {', '.join(NO_GPU_LOWERING)})")
        fn = entry(op)
        ops = compute_ops(fn)
        user = set(self.fallback)
        for vop in ops:
            on_cpu = (bool(user.intersection(onnx_ops(vop))) or vop.name in NO_GPU_LOWERING[self.target]
                      or type(vop) not in LOWERINGS)
            vop.attributes["placement"] = StringAttr("cpu" if on_cpu else "gpu")
        self._cost_rule(ops)

    def _cost_rule(self, ops: list[VisionOp]) -> None:
        """Move each connected group of tiny GPU ops whose outside neighbours are all on the
        CPU (and which has some) to the CPU."""
        tiny = {op for op in ops if placement_of(op) == "gpu" and not isinstance(op, HEAVY_OPS)
                and _elements(op) <= self.tiny}
        neighbours = {op: [p for v in op.operands if (p := source_op(v)) is not None] + _users(op) for op in tiny}
        seen: set[Operation] = set()
        for start in tiny:
            if start in seen:
                continue
            group, pending, outside = {start}, [start], []
            while pending:
                for n in neighbours[pending.pop()]:
                    if n in tiny and n not in group:
                        group.add(n)
                        pending.append(n)
                    elif n not in tiny:
                        outside.append(n)
            seen |= group
            if outside and all(placement_of(n) == "cpu" for n in outside):
                for op in group:
                    op.attributes["placement"] = StringAttr("cpu")

__all__ = ["VisionPlacementPass", "NO_GPU_LOWERING", "placement_of", "compute_ops", "source_op"]
