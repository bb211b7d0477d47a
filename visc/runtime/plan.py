"""The runtime plan: everything an executor needs, read once from the stage-5 host function.

A plan is plain data (JSON-serializable) so a compiled model can be saved and run without
the compiler: the arena size, the graph inputs/outputs, the weights used, one entry per
buffer value of the host function, and the ordered kernel launches whose arguments are
indices into `buffers`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from xdsl.dialects import arith, func, gpu
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    StringAttr,
)
from xdsl.ir import Attribute, SSAValue

from visc.dialects.vision import BufferOp, ReshapeOp, SubBufferOp, WeightOp
from visc.errors import CompileError, InputShapeError

PLAN_VERSION = 1

BufferKind = Literal["arena", "weight", "input", "output", "view", "count"]


def numpy_dtype(element: Attribute) -> str:
    """The numpy dtype name of a memref element type as it lies in memory (docs/ir.md:
    signless integers are signed, i1 is one byte, index is 32-bit like the kernels' int)."""
    if isinstance(element, Float32Type):
        return "float32"
    if isinstance(element, Float64Type):
        return "float64"
    if isinstance(element, Float16Type):
        return "float16"
    if isinstance(element, IntegerType):
        width = element.width.data
        if width == 1:
            return "bool"
        if width in (8, 16, 32, 64):
            return f"int{width}"
    if isinstance(element, IndexType):
        return "int32"
    raise CompileError(f"element type {element} has no numpy equivalent")


@dataclass
class TensorSpec:
    """A graph input or output as the caller sees it. An output whose number of rows depends
    on the data (NonMaxSuppression) has ``shape`` as its upper bound and ``count``: the buffer
    (an int64 [1] of kind "count") holding how many rows of dim 0 are valid."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    count: int | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass
class BufferSpec:
    """One memref of the host function. ``kind`` says where its bytes live:
    arena (``offset`` into the arena; with ``base``, a slab of that arena buffer that must
    share its bytes: a `vision.subbuffer`), weight (``name``), input/output (``index``),
    view (the same bytes as buffer ``base``, seen with this shape and dtype), or count
    (a device buffer of its own holding an output's row count; ``index``: that output)."""

    kind: BufferKind
    shape: tuple[int, ...]
    dtype: str
    offset: int | None = None
    name: str | None = None
    index: int | None = None
    base: int | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass
class Launch:
    """One kernel launch: NDRange = grid * block work-items, args index `Plan.buffers`."""

    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    args: list[int]
    node: str = ""


@dataclass
class Plan:
    arena_size: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    weights: list[str]
    buffers: list[BufferSpec]
    launches: list[Launch]
    version: int = PLAN_VERSION
    weight_specs: dict[str, TensorSpec] = field(default_factory=dict)

    def root(self, buffer: int) -> int:
        """The buffer whose storage a (possibly chained) view uses."""
        while self.buffers[buffer].kind == "view":
            base = self.buffers[buffer].base
            assert base is not None
            buffer = base
        return buffer

    def check_inputs(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The inputs as C-contiguous arrays, after checking count, shapes and dtypes against the
        plan: every executor validates the same way before touching a device."""
        if len(inputs) != len(self.inputs):
            raise InputShapeError(f"expected {len(self.inputs)} inputs {[s.name for s in self.inputs]}, got {len(inputs)}")
        arrays = []
        for spec, arr in zip(self.inputs, inputs, strict=True):
            arr = np.asarray(arr)
            if tuple(arr.shape) != tuple(spec.shape):
                raise InputShapeError(f"input '{spec.name}' has shape {list(arr.shape)}, expected {list(spec.shape)}")
            if arr.dtype != np.dtype(spec.dtype):
                raise InputShapeError(f"input '{spec.name}' has dtype {arr.dtype}, expected {spec.dtype}")
            arrays.append(np.ascontiguousarray(arr))
        return arrays

    def trimmed(self, outputs: list[np.ndarray], count_of: Callable[[int], int]) -> list[np.ndarray]:
        """`outputs` with every counted output cut to its row count; `count_of(buffer)` reads
        a count buffer's value from the device."""
        return [out[: max(0, min(int(count_of(spec.count)), out.shape[0]))] if spec.count is not None else out
                for spec, out in zip(self.outputs, outputs, strict=True)]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> Plan:
        data: dict[str, Any] = json.loads(text)
        version = data.get("version", PLAN_VERSION)
        if version != PLAN_VERSION:
            raise CompileError(f"plan format {version} is not supported (this visc reads {PLAN_VERSION})")

        def tensor(d: dict[str, Any]) -> TensorSpec:
            return TensorSpec(d["name"], tuple(d["shape"]), d["dtype"], d.get("count"))

        return Plan(
            arena_size=int(data["arena_size"]),
            inputs=[tensor(d) for d in data["inputs"]],
            outputs=[tensor(d) for d in data["outputs"]],
            weights=list(data["weights"]),
            buffers=[BufferSpec(**{**d, "shape": tuple(d["shape"])}) for d in data["buffers"]],
            launches=[Launch(d["kernel"], tuple(d["grid"]), tuple(d["block"]), list(d["args"]), d.get("node", ""))
                      for d in data["launches"]],
            version=version,
            weight_specs={k: tensor(v) for k, v in data.get("weight_specs", {}).items()},
        )


def _entry_function(module: ModuleOp) -> func.FuncOp:
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp) and op.body.blocks]
    for f in funcs:
        if f.sym_name.data == "main":
            return f
    if len(funcs) == 1:
        return funcs[0]
    raise CompileError("the module has no @main function to read a runtime plan from")


def _strings(fn: func.FuncOp, key: str) -> list[str] | None:
    attr = fn.attributes.get(key)
    if isinstance(attr, ArrayAttr):
        return [a.data for a in attr.data if isinstance(a, StringAttr)]
    return None


def _int_attr(fn: func.FuncOp, key: str) -> int | None:
    attr = fn.attributes.get(key)
    return int(attr.value.data) if isinstance(attr, IntegerAttr) else None


def _memref(value: SSAValue, what: str) -> MemRefType:
    if not isinstance(value.type, MemRefType):
        raise CompileError(f"runtime plan: {what} is {value.type}, expected a memref")
    return value.type


def _output_counts(fn: func.FuncOp, num_outputs: int) -> list[int]:
    """`vision.output_counts` (docs/ir.md): per output, -1 or the output holding its row count."""
    attr = fn.attributes.get("vision.output_counts")
    if attr is None:
        return [-1] * num_outputs
    if not isinstance(attr, DenseArrayBase):
        raise CompileError("runtime plan: vision.output_counts must be an array<i64>")
    counts = [int(v) for v in attr.get_values()]
    if len(counts) != num_outputs or any(c >= num_outputs or counts[c] >= 0 for c in counts if c >= 0):
        raise CompileError(f"runtime plan: vision.output_counts {counts} does not fit the {num_outputs} outputs "
                           "(one entry each: -1, or the index of an uncounted output holding the count)")
    return counts


def extract_plan(module: ModuleOp) -> Plan:
    """Read the stage-5 host function (docs/ir.md) into a `Plan`."""
    fn = _entry_function(module)
    args = list(fn.body.block.args)
    input_names = _strings(fn, "vision.input_names")
    num_inputs = _int_attr(fn, "vision.num_inputs")
    if num_inputs is None:
        num_inputs = len(input_names) if input_names is not None else len(args)
    output_names = _strings(fn, "vision.output_names")
    in_dtypes = _strings(fn, "vision.input_dtypes")
    out_dtypes = _strings(fn, "vision.output_dtypes")

    buffers: list[BufferSpec] = []
    ids: dict[SSAValue, int] = {}
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    counts = _output_counts(fn, len(args) - num_inputs)
    hidden = {c for c in counts if c >= 0}
    visible = [j for j in range(len(args) - num_inputs) if j not in hidden]
    for i, arg in enumerate(args):
        typ = _memref(arg, f"function argument {i}")
        is_input = i < num_inputs
        j = i if is_input else i - num_inputs
        names, dtypes = (input_names, in_dtypes) if is_input else (output_names, out_dtypes)
        name = names[j] if names is not None and j < len(names) else (arg.name_hint or f"{'input' if is_input else 'output'}{j}")
        dtype = dtypes[j] if dtypes is not None and j < len(dtypes) else numpy_dtype(typ.element_type)
        spec = TensorSpec(name, typ.get_shape(), dtype)
        ids[arg] = len(buffers)
        if not is_input and j in hidden:  # a row count: not an output of its own
            buffers.append(BufferSpec("count", spec.shape, dtype, index=counts.index(j)))
            continue
        (inputs if is_input else outputs).append(spec)
        buffers.append(BufferSpec("input" if is_input else "output", spec.shape, dtype,
                                  index=j if is_input else visible.index(j)))
    for j, c in enumerate(counts):
        if c >= 0:
            outputs[visible.index(j)].count = ids[args[num_inputs + c]]

    weights: list[str] = []
    weight_specs: dict[str, TensorSpec] = {}
    weight_ids: dict[str, int] = {}
    constants: dict[SSAValue, int] = {}
    launches: list[Launch] = []

    def size(value: SSAValue) -> int:
        if value not in constants:
            raise CompileError("runtime plan: launch sizes must be arith.constant values of the host function")
        return constants[value]

    for op in fn.body.block.ops:
        if isinstance(op, arith.ConstantOp):
            if isinstance(op.value, IntegerAttr):
                constants[op.result] = int(op.value.value.data)
        elif isinstance(op, WeightOp):
            typ = _memref(op.result, f"weight @{op.weight_name}")
            name = op.weight_name
            if name not in weight_ids:
                weight_ids[name] = len(buffers)
                weights.append(name)
                weight_specs[name] = TensorSpec(name, typ.get_shape(), numpy_dtype(typ.element_type))
                buffers.append(BufferSpec("weight", typ.get_shape(), numpy_dtype(typ.element_type), name=name))
            ids[op.result] = weight_ids[name]
        elif isinstance(op, BufferOp):
            typ = _memref(op.result, "vision.buffer")
            ids[op.result] = len(buffers)
            buffers.append(BufferSpec("arena", typ.get_shape(), numpy_dtype(typ.element_type), offset=op.byte_offset))
        elif isinstance(op, SubBufferOp):
            typ = _memref(op.result, "vision.subbuffer")
            parent = ids.get(op.source)
            if parent is None or buffers[parent].kind != "arena":
                raise CompileError("runtime plan: vision.subbuffer of a value that is not an arena buffer")
            ids[op.result] = len(buffers)
            buffers.append(BufferSpec("arena", typ.get_shape(), numpy_dtype(typ.element_type),
                                      offset=(buffers[parent].offset or 0) + op.byte_offset, base=parent))
        elif isinstance(op, ReshapeOp):
            typ = _memref(op.res[0], "vision.reshape")
            source = op.ins[0]
            if source not in ids:
                raise CompileError("runtime plan: vision.reshape of a value that is not a host buffer")
            ids[op.res[0]] = len(buffers)
            buffers.append(BufferSpec("view", typ.get_shape(), numpy_dtype(typ.element_type), base=ids[source]))
        elif isinstance(op, gpu.LaunchFuncOp):
            operands = []
            for v in op.kernelOperands:
                if v not in ids:
                    raise CompileError(f"runtime plan: launch of {op.kernel.string_value()} passes a value that "
                                       "is not a host buffer (only memrefs cross into kernels)")
                operands.append(ids[v])
            node = op.attributes.get("onnx_node")
            launches.append(Launch(
                kernel=op.kernel.nested_references.data[-1].data if op.kernel.nested_references.data
                else op.kernel.root_reference.data,
                grid=(size(op.gridSizeX), size(op.gridSizeY), size(op.gridSizeZ)),
                block=(size(op.blockSizeX), size(op.blockSizeY), size(op.blockSizeZ)),
                args=operands,
                node=node.data if isinstance(node, StringAttr) else "",
            ))
        elif isinstance(op, func.ReturnOp):
            break
        else:
            node = op.attributes.get("onnx_node")
            where = f" (ONNX node '{node.data}')" if isinstance(node, StringAttr) else ""
            raise CompileError(f"runtime plan: the host function still contains {op.name}{where}; "
                               "run lower-vision-to-loops and map-loops-to-gpu first")

    arena = _int_attr(fn, "vision.arena_size")
    if arena is None:
        arena = max((b.offset or 0) + b.nbytes for b in buffers if b.kind == "arena") if any(
            b.kind == "arena" for b in buffers) else 0
    for b in buffers:
        if b.kind == "arena" and (b.offset or 0) + b.nbytes > arena:
            raise CompileError(f"runtime plan: a {b.nbytes}-byte buffer at offset {b.offset} does not fit "
                               f"the {arena}-byte arena")
    return Plan(arena_size=arena, inputs=inputs, outputs=outputs, weights=weights, buffers=buffers,
                launches=launches, weight_specs=weight_specs)


__all__ = ["Plan", "TensorSpec", "BufferSpec", "Launch", "extract_plan", "numpy_dtype", "PLAN_VERSION"]
