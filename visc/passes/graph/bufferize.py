"""`vision-bufferize`: tensors -> memrefs in one statically planned arena (docs/ir.md, stage 3).

The entry function takes the graph inputs, then one destination memref per output, and
returns nothing. Each compute op writes `outs`: an output argument when its result is a
graph output (written once, directly), otherwise a `vision.buffer` whose offset the memory
plan (memory_plan.py) assigns. Reshapes stay views. Outputs that no compute op can write
directly (an input, a weight, a view, or a value returned twice) are written by a copying
`vision.map`, so every output argument is written exactly once by a compute op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FunctionType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass

from visc.dialects.vision import BufferOp, MapOp, ReshapeOp, VisionOp, WeightOp
from visc.errors import CompileError
from visc.passes.graph.helpers import node_name, scalar_body
from visc.passes.graph.memory_plan import ARENA_ALIGN, assign_offsets


def _memref(typ: Attribute, what: str) -> MemRefType:
    if isinstance(typ, MemRefType):
        return typ
    if not isinstance(typ, TensorType):
        raise CompileError(f"cannot bufferize {what} of type {typ}: expected a tensor")
    shape = list(typ.get_shape())
    if any(d < 0 for d in shape):
        raise CompileError(f"cannot bufferize {what}: shape {typ} is not static")
    return MemRefType(typ.element_type, shape)


def _output_names(entry: func.FuncOp, count: int) -> list[str]:
    attr = entry.attributes.get("vision.output_names")
    if isinstance(attr, ArrayAttr) and len(attr.data) == count:
        return [a.data if isinstance(a, StringAttr) else f"output{i}" for i, a in enumerate(attr.data)]
    return [f"output{i}" for i in range(count)]


def _copy(src: SSAValue, dest: SSAValue, name: str) -> MapOp:
    assert isinstance(src.type, MemRefType)
    body = scalar_body([src.type.element_type], lambda b, args: args[0])
    attrs: dict[str, Attribute] = {"onnx_node": StringAttr(name), "onnx_op": StringAttr("Identity")}
    return MapOp([src], [], attrs, outs=[dest], body=body)


class _Bufferizer:
    """Rebuilds one function body on memrefs."""

    def __init__(self, entry: func.FuncOp):
        self.entry = entry
        self.old = entry.body.block
        ret = self.old.last_op
        if not isinstance(ret, func.ReturnOp):
            raise CompileError(f"function @{entry.sym_name.data} does not end with func.return")
        self.results: tuple[SSAValue, ...] = tuple(ret.arguments)
        in_types = [_memref(a.type, f"input {i}") for i, a in enumerate(self.old.args)]
        out_types = [_memref(v.type, f"output {i}") for i, v in enumerate(self.results)]
        self.new = Block(arg_types=[*in_types, *out_types])
        self.num_inputs = len(in_types)
        for old_arg, new_arg in zip(self.old.args, self.new.args, strict=False):
            new_arg.name_hint = old_arg.name_hint
        for j, out_arg in enumerate(self.new.args[self.num_inputs:]):
            out_arg.name_hint = f"out{j}"
        self.values: dict[SSAValue, SSAValue] = dict(zip(self.old.args, self.new.args, strict=False))
        # value -> the new op after which its data is complete (None: a function input)
        self.writer: dict[SSAValue, Operation | None] = {a: None for a in self.new.args[: self.num_inputs]}
        self.direct: dict[SSAValue, SSAValue] = {}
        for j, v in enumerate(self.results):
            owner = v.owner
            if (v not in self.direct and isinstance(owner, VisionOp) and not owner.IS_VIEW
                    and isinstance(v.type, TensorType)):
                self.direct[v] = self.new.args[self.num_inputs + j]

    def add(self, op: Operation) -> Operation:
        self.new.add_op(op)
        return op

    def run(self) -> None:
        for op in list(self.old.ops):
            if isinstance(op, func.ReturnOp):
                continue
            if isinstance(op, WeightOp):
                self._weight(op)
            elif isinstance(op, ReshapeOp):
                self._reshape(op)
            elif isinstance(op, VisionOp):
                self._compute(op)
            else:
                self._other(op)
        self._outputs()
        self.add(func.ReturnOp())
        self._swap_body()

    def _weight(self, op: WeightOp) -> None:
        new = WeightOp(op.weight_name, _memref(op.result.type, f"weight @{op.weight_name}"))
        new.attributes.update(op.attributes)
        self.add(new)
        new.result.name_hint = op.result.name_hint
        self.values[op.result] = new.result
        self.writer[new.result] = new

    def _reshape(self, op: ReshapeOp) -> None:
        src = self._get(op.ins[0], op)
        new = ReshapeOp([src], [_memref(op.res[0].type, f"reshape '{node_name(op)}'")], dict(op.attributes))
        self.add(new)
        new.res[0].name_hint = op.res[0].name_hint
        self.values[op.res[0]] = new.res[0]
        self.writer[new.res[0]] = new

    def _compute(self, op: VisionOp) -> None:
        if op.outs:
            raise CompileError(f"ONNX node '{node_name(op)}' ({op.name}) is already bufferized")
        ins = [self._get(v, op) for v in op.ins]
        fuse = [self._get(v, op) for v in op.fuse]
        dests: list[SSAValue] = []
        for r in op.res:
            dest = self.direct.get(r)
            if dest is None:
                buf = self.add(BufferOp(0, _memref(r.type, f"result of '{node_name(op)}'")))
                buf.results[0].name_hint = r.name_hint
                dest = buf.results[0]
            dests.append(dest)
        body = op.detach_region(op.body)
        new = type(op)(ins, [], dict(op.attributes), fuse=fuse, outs=dests, body=body)
        self.add(new)
        for r, d in zip(op.res, dests, strict=True):
            self.values[r] = d
            self.writer[d] = new

    def _other(self, op: Operation) -> None:
        types = [*(v.type for v in op.operands), *(r.type for r in op.results)]
        if any(isinstance(t, TensorType) for t in types):
            raise CompileError(f"cannot bufferize {op.name} ('{node_name(op)}'): only vision ops may "
                               "take or produce tensors in the entry function")
        new = op.clone(self.values)
        self.add(new)
        for r, n in zip(op.results, new.results, strict=True):
            self.values[r] = n
            self.writer[n] = new

    def _get(self, value: SSAValue, user: Operation) -> SSAValue:
        if value not in self.values:
            raise CompileError(f"ONNX node '{node_name(user)}' ({user.name}): operand is not "
                               "defined before it in the entry function")
        return self.values[value]

    def _outputs(self) -> None:
        """Copies into the output arguments that no producer writes directly."""
        names = _output_names(self.entry, len(self.results))
        for j, v in enumerate(self.results):
            dest = self.new.args[self.num_inputs + j]
            if self.direct.get(v) is dest:
                continue
            src = self.values[v]
            after = self.writer.get(src)
            copy = _copy(src, dest, f"{names[j]}:copy")
            first = self.new.first_op
            if after is None and first is not None:
                self.new.insert_op_before(copy, first)
            elif after is None:
                self.add(copy)
            else:
                self.new.insert_op_after(copy, after)

    def _swap_body(self) -> None:
        entry, old = self.entry, self.old
        inputs = [a.type for a in self.new.args]
        entry.properties["function_type"] = FunctionType.from_lists(inputs, [])
        arg_attrs = entry.arg_attrs
        if arg_attrs is not None:
            extra = [DictionaryAttr({})] * (len(inputs) - len(arg_attrs.data))
            entry.properties["arg_attrs"] = ArrayAttr([*arg_attrs.data, *extra])
        entry.properties.pop("res_attrs", None)
        entry.body.add_block(self.new)
        entry.body.erase_block(old, safe_erase=False)
        entry.attributes["vision.num_inputs"] = IntegerAttr(self.num_inputs, i64)


def bufferize_function(entry: func.FuncOp, align: int = ARENA_ALIGN) -> None:
    if len(entry.body.blocks) != 1:
        raise CompileError(f"function @{entry.sym_name.data} must have exactly one block")
    _Bufferizer(entry).run()
    assign_offsets(entry, align)


def _is_tensor_function(f: func.FuncOp) -> bool:
    types: Sequence[Attribute] = [*f.function_type.inputs.data, *f.function_type.outputs.data]
    return bool(f.body.blocks) and (bool(f.function_type.outputs.data) or any(isinstance(t, TensorType) for t in types))


@dataclass(frozen=True)
class VisionBufferizePass(ModulePass):
    name = "vision-bufferize"

    align: int = ARENA_ALIGN

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.align <= 0:
            raise CompileError(f"vision-bufferize: align must be positive, got {self.align}")
        for f in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            if _is_tensor_function(f):
                bufferize_function(f, self.align)

