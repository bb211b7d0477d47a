"""Runs a bufferized (stage 3) module with numpy, through the same arena a device would use.

Each `vision.buffer` is a typed view into one byte arena at its planned offset, reshapes
are views of their source, and every op writes its results into its `outs`. The arena
starts filled with 0xFF bytes (NaN for floats), so reading memory that the plan let
another buffer overwrite, or that nothing wrote, shows up in the results: comparing with
`visc.reference.evaluate` on the tensor module validates the memory plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, MemRefType, ModuleOp, StringAttr
from xdsl.ir import SSAValue

from visc.dialects.vision import BufferOp, ReshapeOp, SubBufferOp, VisionOp, WeightOp
from visc.errors import CompileError, InputShapeError
from visc.passes.graph.helpers import node_name, numpy_dtype


def _entry(module: ModuleOp) -> func.FuncOp:
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    for f in funcs:
        if f.sym_name.data == "main":
            return f
    if len(funcs) == 1:
        return funcs[0]
    raise CompileError("module has no @main function")


def _int_attr(entry: func.FuncOp, key: str) -> int:
    attr = entry.attributes.get(key)
    if not isinstance(attr, IntegerAttr):
        raise CompileError(f"@{entry.sym_name.data} is not bufferized: it has no {key}")
    return int(attr.value.data)


def _dtype_names(entry: func.FuncOp, key: str) -> list[str] | None:
    attr = entry.attributes.get(key)
    if isinstance(attr, ArrayAttr):
        return [a.data for a in attr.data if isinstance(a, StringAttr)]
    return None


def _memref_dtype(value: SSAValue, name: str | None = None) -> np.dtype:
    typ = value.type
    if not isinstance(typ, MemRefType):
        raise CompileError(f"expected a memref, got {typ}")
    return numpy_dtype(typ, like=np.dtype(name) if name else None)


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, MemRefType)
    return tuple(typ.get_shape())


def run_bufferized(
    module: ModuleOp,
    weights: Mapping[str, np.ndarray],
    inputs: Sequence[np.ndarray],
    *,
    poison: bool = True,
) -> list[np.ndarray]:
    """Executes the bufferized entry function on `inputs`; returns its outputs."""
    from visc.reference import eval_op

    entry = _entry(module)
    block = entry.body.block
    num_inputs = _int_attr(entry, "vision.num_inputs")
    arena_size = _int_attr(entry, "vision.arena_size")
    if len(inputs) != num_inputs:
        raise InputShapeError(f"expected {num_inputs} inputs, got {len(inputs)}")
    in_names = _dtype_names(entry, "vision.input_dtypes") or [None] * num_inputs
    out_args = block.args[num_inputs:]
    out_names = _dtype_names(entry, "vision.output_dtypes") or [None] * len(out_args)

    arena = np.full(arena_size, 0xFF if poison else 0, dtype=np.uint8)
    env: dict[SSAValue, np.ndarray] = {}
    for i, (arg, arr) in enumerate(zip(block.args[:num_inputs], inputs, strict=True)):
        arr = np.asarray(arr)
        if arr.shape != _shape(arg):
            raise InputShapeError(f"input {i}: expected shape {list(_shape(arg))}, got {list(arr.shape)}")
        env[arg] = np.ascontiguousarray(arr, dtype=_memref_dtype(arg, in_names[i]))
    outputs = [np.zeros(_shape(a), _memref_dtype(a, out_names[j])) for j, a in enumerate(out_args)]
    for out in outputs:
        if poison and out.dtype.kind == "f":
            out.fill(np.nan)
    env.update(zip(out_args, outputs, strict=True))

    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            break
        if isinstance(op, BufferOp):
            dtype = _memref_dtype(op.result)
            shape = _shape(op.result)
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            lo = op.byte_offset
            if lo < 0 or lo + nbytes > arena_size:
                raise CompileError(f"buffer at offset {lo} ({nbytes} bytes) leaves the {arena_size}-byte arena")
            env[op.result] = arena[lo:lo + nbytes].view(dtype).reshape(shape)
        elif isinstance(op, SubBufferOp):
            src = env[op.source]
            dtype = _memref_dtype(op.result)
            nbytes = int(np.prod(_shape(op.result), dtype=np.int64)) * dtype.itemsize
            raw = src.reshape(-1).view(np.uint8)[op.byte_offset:op.byte_offset + nbytes]
            env[op.result] = raw.view(dtype).reshape(_shape(op.result))
        elif isinstance(op, WeightOp):
            if op.weight_name not in weights:
                raise CompileError(f"weight '{op.weight_name}' is not in the weight store")
            value = np.asarray(weights[op.weight_name])
            shape = _shape(op.result)
            env[op.result] = value.reshape(shape).astype(_memref_dtype(op.result, value.dtype.name), copy=False)
        elif isinstance(op, ReshapeOp):
            src = env[op.ins[0]]
            view = src.reshape(_shape(op.res[0]))
            if src.size and not np.shares_memory(view, src):
                raise CompileError(f"reshape '{node_name(op)}' of a non-contiguous buffer is not a view")
            env[op.res[0]] = view
        elif isinstance(op, VisionOp):
            if not op.outs:
                raise CompileError(f"ONNX node '{node_name(op)}' ({op.name}) is not bufferized")
            results = eval_op(op, [env[v] for v in op.ins], [env[v] for v in op.fuse])
            for dest, value in zip(op.outs, results, strict=True):
                target = env[dest]
                np.copyto(target, np.asarray(value).reshape(target.shape), casting="unsafe")
        else:
            raise CompileError(f"the buffer interpreter cannot run {op.name} at the top level")
    return [np.array(o) for o in outputs]


__all__ = ["run_bufferized"]
