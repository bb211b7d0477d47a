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
from io import StringIO

from xdsl.context import Context
from xdsl.dialects import func, scf
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.printer import Printer

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
from visc.passes.lowering.common import Lowering, Schedule, describe, kernel_hint, node_name
from visc.passes.lowering.loops import FunctionLowering, is_weight

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


def _lowering_key(op: VisionOp) -> tuple[object, ...] | None:
    """What the lowering of `op` depends on besides its operands' identity: its kind,
    attributes but the node name, operand types, which operands are the same value, which
    are weights (a status check skips those) and its body. Ops with equal keys lower to the
    same kernels over other buffers (ResNet-50: 57 compute ops, 32 keys). None: not shared."""
    if op.results:
        return None
    operands = list(op.operands)
    body = ""
    if op.regions:
        stream = StringIO()
        printer = Printer(stream)
        for region in op.regions:
            printer.print_region(region)
        body = stream.getvalue()
    return (op.name, tuple(sorted((k, str(v)) for k, v in op.attributes.items() if k != "onnx_node")),
            tuple(sorted((k, str(v)) for k, v in op.properties.items())),
            tuple(str(v.type) for v in operands), tuple(operands.index(v) for v in operands),
            tuple(is_weight(v) for v in operands), body)


@dataclass
class _Lowered:
    """A lowered op whose kernels later ops with the same key copy."""

    op: VisionOp
    operands: list[SSAValue]
    ops: list[Operation]  # what its lowering put in the function, in order
    hints: list[str]  # the names its kernels asked for, in order


def _retag(attr: Attribute | None, first: str, node: str) -> Attribute | None:
    """An `onnx_node` of the first op's lowering, told of `node` instead."""
    if isinstance(attr, StringAttr) and attr.data.startswith(first):
        return StringAttr(node + attr.data[len(first):])
    return attr


def _copy_lowering(done: _Lowered, op: VisionOp, fl: FunctionLowering) -> None:
    """Put copies of `done`'s lowering before `op`, over `op`'s operands, named for its node."""
    mapper: dict[SSAValue, SSAValue] = dict(zip(done.operands, op.operands, strict=True))
    first, node = node_name(done.op), node_name(op)
    first_hint, hint = kernel_hint(done.op), kernel_hint(op)
    hints = iter(done.hints)
    block = fl.block
    for old in done.ops:
        new = old.clone(mapper)
        tag = _retag(old.attributes.get("onnx_node"), first, node)
        if tag is not None:
            new.attributes["onnx_node"] = tag
        if "onnx_op" in op.attributes and "onnx_op" in old.attributes:
            new.attributes["onnx_op"] = op.attributes["onnx_op"]
        if "kernel_name" in old.attributes:
            asked = next(hints)
            asked = hint + asked[len(first_hint):] if asked.startswith(first_hint) else asked
            new.attributes["kernel_name"] = StringAttr(fl.unique_name(asked))
        block.insert_op_before(new, op)


def lower_function(fn: func.FuncOp, names: set[str] | None = None) -> None:
    """Lower every compute op of `fn` in program order (checked beforehand); `names` are the
    kernel names already taken in the module. An op with the same key as one lowered before
    (`_lowering_key`) gets copies of that lowering instead: cloning is several times faster
    than building the kernel again."""
    fl = FunctionLowering(fn.body.block, names)
    block = fn.body.block
    lowered: dict[tuple[object, ...], _Lowered] = {}
    for op in _compute_ops(fn):
        sched = Schedule.of(op)
        assert sched is not None and op.parent_block() is block
        fl.anchor = op
        key = _lowering_key(op)
        done = lowered.get(key) if key is not None else None
        if done is not None:
            _copy_lowering(done, op, fl)
        else:
            before = set(block.ops)
            fl.hints = []
            LOWERINGS[type(op)].lower(op, sched, fl)
            placement = op.attributes.get("placement")
            new = [o for o in block.ops if o not in before]
            if placement is not None:  # vision-placement's tag travels to the op's kernels
                for k in new:
                    if isinstance(k, scf.ParallelOp):
                        k.attributes["placement"] = placement
            if key is not None:  # the shared index constants dominate every later op: not copied
                shared = set(fl.constants())
                kept = [o for o in new if o not in shared]
                lowered[key] = _Lowered(op, list(op.operands), kept, fl.hints)
            fl.hints = None
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
