"""`vision-partition`: cut the tensor-level entry function into pipeline stage functions.

It runs after the graph passes (fusion is done, so a cut never separates ops that one kernel
would run) and before bufferization. The compute ops of `@main`, in block order, are split
into contiguous ranges; range ``i`` becomes ``func.func @stage<i>`` and `@main` becomes the
calls of the stages in order, keeping its signature and attributes (docs/ir.md, "Pipeline
stages"). Each stage carries `@main`'s name/dtype attributes for its own edges, so that
`split_stages` can hand it, as a module of its own, to the unchanged rest of the pipeline.

Cutting modes (exactly one):

* ``cuts``: ONNX node names; cut after the last op (in block order) whose `onnx_node`
  names that node (fused ops join names with '+'). Cuts are sorted by block position,
  so their order in the option does not matter.
* ``by_placement``: cut wherever the `placement` tag of vision-placement changes; a stage of
  "cpu" ops runs on "cpu", one of "gpu" ops on ``target``.
* ``stages``: N stages minimizing the slowest stage's cost (`vision.costs` of its ops for
  its device, plus ``edge_cost`` microseconds per MiB it receives): an exact dynamic program.

Values cross stages as whole tensors: weights, constants and views (`vision.reshape`) are
cloned into every stage that uses them, so a view at a cut travels as its source tensor and
is applied again by the stage that reads it (no copy kernel, the same kernels as uncut).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from visc.dialects.vision import VisionOp
from visc.errors import CompileError
from visc.passes.graph.helpers import byte_size, node_name, numpy_dtype, string_list
from visc.passes.placement.placement import compute_ops, entry, placement_of, source_op
from visc.reference import output_counts

STAGE_ATTR = "vision.stage"
DEVICE_ATTR = "vision.device"
COSTS_ATTR = "vision.costs"
MIB = float(1 << 20)


def _fail(message: str) -> CompileError:
    return CompileError(f"vision-partition: {message}")


def _root(value: SSAValue) -> SSAValue:
    """The tensor a chain of views reads: what crosses a cut in place of the view."""
    owner = value.owner
    while isinstance(owner, VisionOp) and owner.IS_VIEW:
        value = owner.operands[0]
        owner = value.owner
    return value


def _outside_operands(op: Operation) -> list[SSAValue]:
    """Operands of ``op`` and of the ops nested in it that are defined outside ``op``."""
    found: dict[SSAValue, None] = {}
    for inner in op.walk():
        for v in inner.operands:
            if not op.is_ancestor(v.owner):
                found.setdefault(v)
    return list(found)


def _costs(op: Operation, device: str) -> float:
    attr = op.attributes.get(COSTS_ATTR)
    if attr is None:
        return 0.0
    if not isinstance(attr, DictionaryAttr):
        raise _fail(f"'{COSTS_ATTR}' of '{node_name(op)}' must be a dictionary device -> microseconds")
    value = attr.data.get(device)
    if not isinstance(value, FloatAttr | IntegerAttr):
        raise _fail(f"op '{node_name(op)}' has '{COSTS_ATTR}' but no cost for device '{device}' "
                    f"(it has {', '.join(sorted(attr.data)) or 'none'})")
    return float(value.value.data)


def min_max_partition(op_costs: Sequence[Sequence[float]], received: Sequence[Sequence[float]],
                      stages: int) -> list[int]:
    """Start index of each stage minimizing the most expensive stage, exactly.

    ``op_costs[s][k]``: op k's cost on stage s's device; ``received[i][j]``: the edge cost of a
    stage holding ops [i, j). Every stage gets at least one op. O(stages * ops^2)."""
    n = len(op_costs[0])
    prefix = [[0.0, *[0.0] * n] for _ in range(stages)]
    for s in range(stages):
        for k in range(n):
            prefix[s][k + 1] = prefix[s][k] + op_costs[s][k]

    def cost(s: int, i: int, j: int) -> float:
        return prefix[s][j] - prefix[s][i] + received[i][j]

    inf = math.inf
    best = [[inf] * (n + 1) for _ in range(stages)]
    choice = [[0] * (n + 1) for _ in range(stages)]
    for j in range(1, n + 1):
        best[0][j] = cost(0, 0, j)
    for s in range(1, stages):
        for j in range(s + 1, n + 1):
            for i in range(s, j):
                value = max(best[s - 1][i], cost(s, i, j))
                if value < best[s][j]:
                    best[s][j], choice[s][j] = value, i
    starts, j = [0] * stages, n
    for s in range(stages - 1, 0, -1):
        j = choice[s][j]
        starts[s] = j
    return starts


@dataclass(frozen=True)
class VisionPartitionPass(ModulePass):
    """Outline the entry function into ``@stage0..@stage<N-1>`` called by `@main` (see the
    module docstring for the modes)."""

    name = "vision-partition"

    cuts: tuple[str, ...] = field(default=())
    by_placement: bool = False
    stages: int = 0
    devices: tuple[str, ...] = field(default=())
    target: str = "opencl"
    edge_cost: float = 0.0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fn = entry(op)
        if any(isinstance(f, func.FuncOp) and STAGE_ATTR in f.attributes for f in op.ops):
            raise _fail("the module is partitioned already")
        if any(not isinstance(t, TensorType) for t in fn.function_type.inputs.data):
            raise _fail("runs on the tensor-level entry function, before vision-bufferize")
        ops = compute_ops(fn)
        starts, devices = self._plan(fn, ops)
        stage_of = {vop: s for s, (lo, hi) in enumerate(zip(starts, [*starts[1:], len(ops)], strict=True))
                    for vop in ops[lo:hi]}
        _outline(op, fn, stage_of, devices)

    # -- choosing the cuts ---------------------------------------------------------------

    def _plan(self, fn: func.FuncOp, ops: list[VisionOp]) -> tuple[list[int], list[str]]:
        modes = [m for m, on in (("cuts", bool(self.cuts)), ("by_placement", self.by_placement),
                                 ("stages", self.stages != 0)) if on]
        if len(modes) != 1:
            raise _fail(f"choose exactly one of cuts, by_placement, stages (got {', '.join(modes) or 'none'})")
        if not ops:
            raise _fail("the entry function has no compute op to partition")
        if self.by_placement:
            if self.devices:
                raise _fail("by_placement chooses the devices itself; devices is for cuts or stages")
            return self._by_placement(ops)
        if self.cuts:
            starts = self._from_cuts(fn, ops)
        else:
            if self.stages < 2:
                raise _fail(f"stages must be at least 2, got {self.stages}")
            if self.stages > len(ops):
                raise _fail(f"cannot cut {len(ops)} compute ops into {self.stages} non-empty stages")
            starts = []
        count = len(starts) if self.cuts else self.stages
        devices = list(self.devices) if self.devices else [self.target] * count
        if len(devices) != count:
            raise _fail(f"devices names {len(devices)} devices for {count} stages")
        if not self.cuts:
            starts = self._balanced(fn, ops, devices)
        return starts, devices

    def _from_cuts(self, fn: func.FuncOp, ops: list[VisionOp]) -> list[int]:
        """Stage starts: a cut after node X starts a stage after the last op naming X."""
        after: dict[str, int] = {}
        seen = 0
        for o in fn.body.block.ops:
            if isinstance(o, VisionOp):
                seen += not o.IS_VIEW
                for part in [*node_name(o).split("+"), node_name(o)]:  # a part, or the fused name
                    after[part] = seen
        unknown = [c for c in self.cuts if c not in after]
        if unknown:
            known = ", ".join(list(after)[:8]) + (", ..." if len(after) > 8 else "")
            raise _fail(f"no op comes from ONNX node '{unknown[0]}' (nodes: {known})")
        ordered = sorted(self.cuts, key=lambda c: after[c])
        starts = [0, *(after[c] for c in ordered)]
        bounds = [*starts, len(ops)]
        for s in range(len(starts)):
            if bounds[s + 1] > bounds[s]:
                continue
            if s == 0:
                why = f"cut '{ordered[0]}' comes before the first compute op"
            elif s == len(ordered):
                why = f"cut '{ordered[-1]}' comes after the last compute op"
            else:
                why = f"cuts '{ordered[s - 1]}' and '{ordered[s]}' fall at the same place"
            raise _fail(f"stage {s} would hold no compute op: {why}")
        return starts

    def _by_placement(self, ops: list[VisionOp]) -> tuple[list[int], list[str]]:
        tags: list[str] = []
        for vop in ops:
            tag = placement_of(vop)
            if tag not in ("cpu", "gpu"):
                raise _fail(f"op '{node_name(vop)}' has no placement tag; run vision-placement first")
            tags.append(tag)
        starts = [k for k in range(len(ops)) if k == 0 or tags[k] != tags[k - 1]]
        return starts, ["cpu" if tags[k] == "cpu" else self.target for k in starts]

    def _balanced(self, fn: func.FuncOp, ops: list[VisionOp], devices: list[str]) -> list[int]:
        n = len(ops)
        index = {vop: k for k, vop in enumerate(ops)}
        op_costs = [[_costs(vop, d) for vop in ops] for d in devices]
        # per op: the tensors it reads (roots of views) and the op index producing each (-1: input)
        reads: list[list[tuple[SSAValue, int]]] = []
        for vop in ops:
            found: list[tuple[SSAValue, int]] = []
            for v in _outside_operands(vop):
                root = _root(v)
                if isinstance(root, BlockArgument):
                    found.append((root, -1))
                elif root.owner in index:
                    found.append((root, index[root.owner]))  # type: ignore[index]
            reads.append(found)
        received = [[0.0] * (n + 1) for _ in range(n + 1)]
        if self.edge_cost:
            for i in range(n):
                got: set[SSAValue] = set()
                total = 0.0
                for j in range(i, n):
                    for root, producer in reads[j]:
                        if producer < i and root not in got:
                            got.add(root)
                            total += byte_size(root.type) / MIB * self.edge_cost
                    received[i][j + 1] = total
        return min_max_partition(op_costs, received, len(devices))


# -- outlining ----------------------------------------------------------------------------


@dataclass
class _Stage:
    ops: set[Operation] = field(default_factory=set)
    inputs: list[SSAValue] = field(default_factory=list)
    # (value, name, graph output position or -1)
    outputs: list[tuple[SSAValue, str, int]] = field(default_factory=list)


def _outline(module: ModuleOp, fn: func.FuncOp, stage_of: dict[VisionOp, int], devices: list[str]) -> None:
    block = fn.body.block
    ret = block.last_op
    if not isinstance(ret, func.ReturnOp):
        raise _fail(f"@{fn.sym_name.data} does not end with func.return")
    stages = [_Stage() for _ in devices]
    for vop, s in stage_of.items():
        stages[s].ops.add(vop)
    order: dict[SSAValue, tuple[int, int]] = {a: (-1, a.index) for a in block.args}
    for k, o in enumerate(block.ops):
        order.update({r: (k, r.index) for r in o.results})

    def need(value: SSAValue, s: int) -> None:
        """Stage ``s`` reads ``value``: an input, or a free op cloned into the stage."""
        owner = value.owner
        stage = stages[s]
        if isinstance(value, BlockArgument) or (owner in stage_of and stage_of[owner] != s):  # type: ignore[operator]
            if value not in stage.inputs:
                stage.inputs.append(value)
        elif owner not in stage_of and owner not in stage.ops:
            assert isinstance(owner, Operation)
            stage.ops.add(owner)
            for v in _outside_operands(owner):
                need(v, s)

    for vop, s in stage_of.items():
        for v in _outside_operands(vop):
            need(v, s)
    out_names, in_names = string_list(fn, "vision.output_names"), string_list(fn, "vision.input_names")
    returned = list(ret.arguments)
    for j, v in enumerate(returned):
        src = source_op(v)
        s = stage_of[src] if src in stage_of else len(stages) - 1  # type: ignore[index]
        need(v, s)
        stages[s].outputs.append((v, out_names[j] if j < len(out_names) else f"output{j}", j))

    # edges: each value a later stage reads leaves its producing stage once, by name
    taken = set(in_names) | set(out_names)
    edge_names: dict[SSAValue, str] = {}
    for stage in stages:
        stage.inputs.sort(key=lambda v: order[v])
        for v in stage.inputs:
            if isinstance(v, BlockArgument):
                continue
            producer = stages[stage_of[v.owner]]  # type: ignore[index]
            if any(u is v for u, _, _ in producer.outputs):
                continue
            name = edge_names.get(v)
            if name is None:
                base = f"{node_name(v.owner)}:{v.index}"  # type: ignore[arg-type, attr-defined]
                name, k = base, 1
                while name in taken:
                    name, k = f"{base}.{k}", k + 1
                taken.add(name)
                edge_names[v] = name
            producer.outputs.append((v, name, -1))
    for stage in stages:  # graph outputs first (in graph order), then edges by definition
        stage.outputs.sort(key=lambda o: (o[2] < 0, o[2] if o[2] >= 0 else order[o[0]]))

    names: dict[SSAValue, str] = {}
    for stage in stages:
        for v, name, _ in stage.outputs:
            names.setdefault(v, name)
    funcs = [_stage_function(fn, s, devices[s], stage, [o for o in block.ops if o in stage.ops], names)
             for s, stage in enumerate(stages)]
    module.body.block.insert_ops_before(funcs, fn)
    _call_stages(fn, stages, funcs)


def _stage_function(fn: func.FuncOp, s: int, device: str, stage: _Stage, ops: list[Operation],
                    names: dict[SSAValue, str]) -> func.FuncOp:
    """``@stage<s>``: ``ops`` cloned in block order, with `@main`'s name and dtype attributes
    for its edges. Dtypes are the ONNX ones where an edge is a graph input or output, else
    the element type's numpy name (IR integers are signless; the bytes agree)."""
    f = func.FuncOp(f"stage{s}", ([v.type for v in stage.inputs], [v.type for v, _, _ in stage.outputs]))
    mapping: dict[SSAValue, SSAValue] = dict(zip(stage.inputs, f.body.block.args, strict=True))
    for v, arg in mapping.items():
        arg.name_hint = v.name_hint
    for o in ops:
        f.body.block.add_op(o.clone(mapping))
    f.body.block.add_op(func.ReturnOp(*[mapping[v] for v, _, _ in stage.outputs]))

    in_names, in_dtypes = string_list(fn, "vision.input_names"), string_list(fn, "vision.input_dtypes")
    out_dtypes = string_list(fn, "vision.output_dtypes")

    def recorded(values: list[str], i: int, v: SSAValue) -> str:
        return values[i] if 0 <= i < len(values) else numpy_dtype(v.type).name

    graph_in = [isinstance(v, BlockArgument) for v in stage.inputs]
    attrs = {
        "vision.input_names": [recorded(in_names, v.index, v) if arg else names[v]  # type: ignore[attr-defined]
                               for v, arg in zip(stage.inputs, graph_in, strict=True)],
        "vision.output_names": [n for _, n, _ in stage.outputs],
        "vision.input_dtypes": [recorded(in_dtypes, v.index if arg else -1, v)  # type: ignore[attr-defined]
                                for v, arg in zip(stage.inputs, graph_in, strict=True)],
        "vision.output_dtypes": [recorded(out_dtypes, j, v) for v, _, j in stage.outputs],
    }
    f.attributes[STAGE_ATTR] = IntegerAttr(s, i64)
    f.attributes[DEVICE_ATTR] = StringAttr(device)
    for key, values in attrs.items():
        f.attributes[key] = ArrayAttr([StringAttr(x) for x in values])
    counts = output_counts(fn) or []
    if any(c >= 0 for c in counts):
        position = {j: k for k, (_, _, j) in enumerate(stage.outputs) if j >= 0}
        mine = []
        for _, name, j in stage.outputs:
            c = counts[j] if 0 <= j < len(counts) else -1
            if c >= 0 and c not in position:
                raise _fail(f"output '{name}' and its row count would leave different stages")
            mine.append(position[c] if c >= 0 else -1)
        if any(c >= 0 for c in mine):
            f.attributes["vision.output_counts"] = DenseArrayBase.from_list(i64, mine)
    return f


def _call_stages(fn: func.FuncOp, stages: list[_Stage], funcs: list[func.FuncOp]) -> None:
    """`@main`'s body becomes the stage calls in order, then the graph outputs."""
    block = fn.body.block
    old = list(block.ops)
    env: dict[SSAValue, SSAValue] = {a: a for a in block.args}
    by_position: dict[int, SSAValue] = {}
    calls: list[Operation] = []
    for stage, f in zip(stages, funcs, strict=True):
        call = func.CallOp(f.sym_name.data, [env[v] for v in stage.inputs], [v.type for v, _, _ in stage.outputs])
        for (v, _, j), r in zip(stage.outputs, call.res, strict=True):
            env.setdefault(v, r)
            if j >= 0:
                by_position[j] = r
        calls.append(call)
    calls.append(func.ReturnOp(*[by_position[j] for j in range(len(by_position))]))
    Rewriter.insert_op(calls, InsertPoint.at_start(block))
    for o in reversed(old):
        o.detach()
        o.erase()


# -- the driver's view --------------------------------------------------------------------


@dataclass
class StageModule:
    """One stage as a model of its own: `module`'s entry `@main` is the stage function."""

    index: int
    device: str
    module: ModuleOp
    input_names: list[str]
    output_names: list[str]


def split_stages(module: ModuleOp) -> list[StageModule]:
    """The stages of a module after `vision-partition`, each in a fresh module whose `@main`
    the rest of the pipeline (vision-bufferize ... map-loops-to-gpu) compiles as a whole model."""
    found = sorted(((int(f.attributes[STAGE_ATTR].value.data), f) for f in module.ops  # type: ignore[attr-defined]
                    if isinstance(f, func.FuncOp) and isinstance(f.attributes.get(STAGE_ATTR), IntegerAttr)),
                   key=lambda p: p[0])
    if not found:
        raise CompileError("split_stages: the module has no stage functions (run vision-partition first)")
    if [i for i, _ in found] != list(range(len(found))):
        raise CompileError(f"split_stages: stage indices {[i for i, _ in found]} are not 0..{len(found) - 1}")
    result = []
    for index, f in found:
        clone = f.clone()
        clone.sym_name = StringAttr("main")
        device = f.attributes.get(DEVICE_ATTR)
        result.append(StageModule(index, device.data if isinstance(device, StringAttr) else "",
                                  ModuleOp([clone]), string_list(f, "vision.input_names"),
                                  string_list(f, "vision.output_names")))
    return result


__all__ = ["VisionPartitionPass", "StageModule", "split_stages", "min_max_partition", "STAGE_ATTR",
           "DEVICE_ATTR", "COSTS_ATTR"]
