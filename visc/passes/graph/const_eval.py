"""`vision-const-eval`: ops computed only from weights are evaluated once, at compile time.

Values come from the weight store of the current compilation (`current_weights()`) and are
computed with the reference semantics (`visc.reference.eval_op`), so a folded weight is
exactly what the op would have produced at run time. Without a store nothing changes: the
weight arithmetic stays in the IR and stays correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from visc.dialects.vision import VisionOp, WeightOp, shape_of
from visc.errors import CompileError
from visc.passes.graph.helpers import is_tensor_op, node_name, numpy_dtype, weight_of
from visc.weights import WeightStore, current_weights


def _foldable(op: Operation) -> bool:
    return (is_tensor_op(op) and isinstance(op, VisionOp)
            and all(weight_of(v) is not None for v in (*op.ins, *op.fuse)))


def _evaluate(op: VisionOp, store: WeightStore) -> list[np.ndarray]:
    def value(v) -> np.ndarray:
        w = weight_of(v)
        assert w is not None
        if w.weight_name not in store:
            raise CompileError(f"weight '{w.weight_name}' used by ONNX node '{node_name(op)}' "
                               "is not in the weight store")
        return store[w.weight_name]

    args = [value(v) for v in op.ins]
    fuse = [value(v) for v in op.fuse]
    from visc.reference import eval_op

    results = eval_op(op, args, fuse)
    if len(results) != len(op.res):
        raise CompileError(f"ONNX node '{node_name(op)}': evaluation gave {len(results)} values "
                           f"for {len(op.res)} results")
    out: list[np.ndarray] = []
    for r, arr in zip(op.res, results, strict=True):
        arr = np.asarray(arr)
        shape = shape_of(r)
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise CompileError(f"ONNX node '{node_name(op)}': evaluated shape {arr.shape} "
                               f"does not match {list(shape)}")
        want = numpy_dtype(r.type, like=arr.dtype)
        out.append(np.ascontiguousarray(arr.reshape(shape).astype(want, copy=False)))
    return out


def fold_constants(module: ModuleOp, store: WeightStore) -> int:
    """Replaces every op whose operands are all weights by new weights; returns how many."""
    folded = 0
    for op in list(module.walk()):
        if op.parent is None or not _foldable(op):
            continue
        assert isinstance(op, VisionOp)
        values = _evaluate(op, store)
        hint = node_name(op) if "onnx_node" in op.attributes else "folded"
        inputs = {w for v in (*op.ins, *op.fuse) if (w := weight_of(v)) is not None}
        new_ops: list[WeightOp] = []
        for i, (r, arr) in enumerate(zip(op.res, values, strict=True)):
            name = store.add(hint if len(values) == 1 else f"{hint}_{i}", arr)
            new_ops.append(WeightOp(name, r.type))
        Rewriter.insert_op(new_ops, InsertPoint.before(op))
        for r, w in zip(op.res, new_ops, strict=True):
            r.replace_all_uses_with(w.result)
        Rewriter.erase_op(op)
        for w in inputs:
            if not w.result.uses and w.parent is not None:
                Rewriter.erase_op(w)
        folded += 1
    return folded


@dataclass(frozen=True)
class VisionConstEvalPass(ModulePass):
    name = "vision-const-eval"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        store = current_weights()
        if store is not None:
            fold_constants(op, store)
