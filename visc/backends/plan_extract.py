"""Reading the runtime `Plan` from the stage-5 host function (docs/ir.md): the compiler side
of the plan, kept out of `visc.runtime` so the runtime needs no xDSL.

`extract_plan` also records per launch its device (the CPU backend's host functions live in
`gpu.module @cpu_kernels`) and the arguments its kernel may write (`kernel_writes`: any use
of a kernel argument but a load counts as a write), which a mixed plan's executor uses to
copy only stale buffers.
"""

from __future__ import annotations

from collections.abc import Mapping

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

from visc.dialects.vision import STATUS_TYPE, BufferOp, ReshapeOp, StatusOp, SubBufferOp, WeightOp
from visc.errors import CompileError
from visc.passes.cpu import CPU_KERNEL_MODULE
from visc.runtime.plan import CPU_DEVICE, BufferSpec, Check, Launch, Plan, TensorSpec

KernelWrites = Mapping[tuple[str, str], list[int]]

_READS = ("memref.load", "vector.load")


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


def extract_plan(module: ModuleOp, writes: KernelWrites | None = None) -> Plan:
    """Read the stage-5 host function (docs/ir.md) into a `Plan`. ``writes``: `kernel_writes`
    read earlier, when the kernels are no longer `gpu.func`s in ``module``."""
    fn = _entry_function(module)
    writes = kernel_writes(module) if writes is None else writes
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
    checks: list[Check] = []

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
        elif isinstance(op, StatusOp):
            node, op_type = op.attributes.get("onnx_node"), op.attributes.get("onnx_op")
            ids[op.result] = len(buffers)
            checks.append(Check(len(buffers), node.data if isinstance(node, StringAttr) else "",
                                op_type.data if isinstance(op_type, StringAttr) else "", op.message.data))
            buffers.append(BufferSpec("status", STATUS_TYPE.get_shape(), "int64"))
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
            ref = op.kernel
            kernel = ref.nested_references.data[-1].data if ref.nested_references.data else ref.root_reference.data
            written = writes.get((ref.root_reference.data, kernel))
            launches.append(Launch(
                kernel=kernel,
                grid=(size(op.gridSizeX), size(op.gridSizeY), size(op.gridSizeZ)),
                block=(size(op.blockSizeX), size(op.blockSizeY), size(op.blockSizeZ)),
                args=operands,
                node=node.data if isinstance(node, StringAttr) else "",
                device=CPU_DEVICE if ref.root_reference.data == CPU_KERNEL_MODULE else "",
                # a host function's range bounds follow its memrefs: they are no arguments here
                writes=None if written is None else [i for i in written if i < len(operands)],
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
                launches=launches, weight_specs=weight_specs, checks=checks)


def kernel_writes(module: ModuleOp) -> dict[tuple[str, str], list[int]]:
    """(gpu.module name, kernel name) -> the positions of the arguments the kernel may write
    (any use but a load counts as a write). Read it before the kernels are lowered to LLVM
    or dropped (`finish_module` does), since only `gpu.func` bodies show the uses."""
    written: dict[tuple[str, str], list[int]] = {}
    for op in module.walk():
        if isinstance(op, gpu.FuncOp):
            mod = op.parent_op()
            args = op.body.blocks.first.args if op.body.blocks.first is not None else ()
            key = (mod.sym_name.data if isinstance(mod, gpu.ModuleOp) else "", op.sym_name.data)
            written[key] = [i for i, a in enumerate(args) if any(u.operation.name not in _READS for u in a.uses)]
    return written


def launch_writes(module: ModuleOp) -> list[list[int]]:
    """Per `gpu.launch_func` of the host function, in order: the positions of the arguments
    its kernel may write (`Launch.writes` with unknown kernels as all arguments)."""
    return [launch.written for launch in extract_plan(module).launches]


__all__ = ["extract_plan", "kernel_writes", "launch_writes", "numpy_dtype"]
