"""`vision-fuse-elementwise`: fewer kernels and fewer round trips through memory.

* map -> map: a producer map whose result only feeds one consumer map (at the same number
  of elements, so no work is repeated) is merged into it;
* conv2d/matmul -> map: a map that only post-processes a conv/matmul result becomes that
  op's epilogue body; the map's other inputs become `fuse` operands (this is how
  conv + residual add + relu becomes one kernel). The conv is re-created at the map's
  position, which is legal because it is pure and its operands dominate the map;
* a map that only adds a per-channel vector to a body-less conv2d (or adds anything to a
  matmul without `c`) is folded into the bias instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.builder import Builder
from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import FloatAttr, ModuleOp, f32
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from visc.dialects.vision import (
    Conv2dOp,
    MapOp,
    MatmulOp,
    YieldOp,
    element_type_of,
    shape_of,
)
from visc.passes.graph.canonicalize import dedupe_map_inputs
from visc.passes.graph.const_eval import fold_constants
from visc.passes.graph.helpers import (
    clone_body,
    is_tensor_op,
    make_map,
    make_reshape,
    merged_attributes,
    sole_user,
)
from visc.weights import current_weights


def _unique(values: Sequence[SSAValue]) -> list[SSAValue]:
    out: list[SSAValue] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _numel(value: SSAValue) -> int:
    return math.prod(shape_of(value))


def _fuse_maps(producer: MapOp, consumer: MapOp, rewriter: PatternRewriter) -> None:
    """One map computing consumer(producer(...)); producer inputs take its place in order."""
    link = producer.res[0]
    new_ins: list[SSAValue] = []
    for v in consumer.ins:
        for u in (producer.ins if v is link else [v]):
            if u not in new_ins:
                new_ins.append(u)
    block = Block(arg_types=[element_type_of(v) for v in new_ins])
    arg = dict(zip(new_ins, block.args, strict=True))
    b = Builder(InsertPoint.at_end(block))
    (inner,) = clone_body(producer.body.block, [arg[v] for v in producer.ins], b)
    mapped = [inner if v is link else arg[v] for v in consumer.ins]
    results = clone_body(consumer.body.block, mapped, b)
    b.insert(YieldOp(*results))
    attrs = merged_attributes(consumer, [producer, consumer])
    new = MapOp(new_ins, [consumer.res[0].type], attrs, body=Region(block))
    rewriter.replace(consumer, new)
    rewriter.erase(producer)


def _is_channel_vector(value: SSAValue, out: Sequence[int]) -> bool:
    """Whether `value` broadcasts to NC... `out` varying only along dim 1."""
    s = shape_of(value)
    if len(s) > len(out) or len(out) < 2:
        return False
    padded = [1] * (len(out) - len(s)) + list(s)
    return all(d == 1 for i, d in enumerate(padded) if i != 1) and padded[1] == out[1]


def _single_add(op: MapOp) -> bool:
    """The body is exactly `yield addf(arg0, arg1)` (in either order)."""
    ops = list(op.body.block.ops)
    if len(ops) != 2 or not isinstance(ops[0], arith.AddfOp) or not isinstance(ops[1], YieldOp):
        return False
    add, ret = ops[0], ops[1]
    return set(add.operands) == set(op.body.block.args) and tuple(ret.values) == (add.result,)


def _fold_bias(prod: Conv2dOp | MatmulOp, m: MapOp, rewriter: PatternRewriter) -> bool:
    """conv/matmul + per-channel add -> the same op with a (new) bias; False if not that case."""
    if prod.body.blocks or prod.fuse or len(m.ins) != 2 or not _single_add(m):
        return False
    (vec,) = [v for v in m.ins if v is not prod.res[0]]
    if element_type_of(vec) != element_type_of(prod.res[0]):
        return False
    new_ops: list[Operation] = []
    attrs = merged_attributes(prod, [prod, m])
    names = {k: v for k, v in attrs.items() if k in ("onnx_node", "onnx_op")}
    if isinstance(prod, Conv2dOp):
        out = shape_of(prod.res[0])
        if not _is_channel_vector(vec, out):
            return False
        flat: SSAValue = vec
        if shape_of(vec) != (out[1],):
            new_ops.append(make_reshape(vec, [out[1]], names))
            flat = new_ops[-1].results[0]
        if len(prod.ins) == 3:
            bias = prod.ins[2]

            def add(b: Builder, args: Sequence[SSAValue]) -> SSAValue:
                return b.insert(arith.AddfOp(args[0], args[1])).result

            new_ops.append(make_map([bias, flat], bias.type, add, names))
            flat = new_ops[-1].results[0]
        new: Operation = Conv2dOp([prod.ins[0], prod.ins[1], flat], [m.res[0].type], attrs)
    else:
        if len(prod.ins) == 3:
            return False
        old_beta = prod.attributes.get("beta")
        attrs["beta"] = FloatAttr(1.0, old_beta.type if isinstance(old_beta, FloatAttr) else f32)
        new = MatmulOp([prod.ins[0], prod.ins[1], vec], [m.res[0].type], attrs)
    rewriter.replace(m, [*new_ops, new], [new.results[0]])
    rewriter.erase(prod)
    return True


def _fuse_epilogue(prod: Conv2dOp | MatmulOp, m: MapOp, rewriter: PatternRewriter) -> None:
    """The map becomes (the end of) `prod`'s epilogue body; its other inputs become fuse operands."""
    link = prod.res[0]
    fuse = _unique([*prod.fuse, *[v for v in m.ins if v is not link]])
    acc_type = element_type_of(link)
    block = Block(arg_types=[acc_type, *[element_type_of(v) for v in fuse]])
    acc, fuse_args = block.args[0], dict(zip(fuse, block.args[1:], strict=True))
    b = Builder(InsertPoint.at_end(block))
    if prod.body.blocks:
        (value,) = clone_body(prod.body.block, [acc, *[fuse_args[v] for v in prod.fuse]], b)
    else:
        value = acc
    results = clone_body(m.body.block, [value if v is link else fuse_args[v] for v in m.ins], b)
    b.insert(YieldOp(*results))
    attrs = merged_attributes(prod, [prod, m])
    new = type(prod)(list(prod.ins), [m.res[0].type], attrs, fuse=fuse, body=Region(block))
    rewriter.replace(m, new)
    rewriter.erase(prod)


class FuseIntoMap(RewritePattern):
    """Pulls a single-use producer (map, conv2d or matmul) into the map that consumes it."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MapOp, rewriter: PatternRewriter) -> None:
        if not is_tensor_op(op) or len(op.res) != 1 or op.fuse:
            return
        if len(set(op.ins)) != len(op.ins):
            dedupe_map_inputs(op, rewriter)
            return
        for v in op.ins:
            prod = v.owner
            if (isinstance(prod, MapOp) and is_tensor_op(prod) and len(prod.res) == 1
                    and not prod.fuse and sole_user(v) is op and _numel(v) == _numel(op.res[0])):
                _fuse_maps(prod, op, rewriter)
                return
        for v in reversed(op.ins):
            prod = v.owner
            if (isinstance(prod, Conv2dOp | MatmulOp) and is_tensor_op(prod)
                    and sole_user(v) is op and v.type == op.res[0].type):
                if not _fold_bias(prod, op, rewriter):
                    _fuse_epilogue(prod, op, rewriter)
                return


def fuse_elementwise(module: ModuleOp) -> None:
    PatternRewriteWalker(FuseIntoMap()).rewrite_module(module)


@dataclass(frozen=True)
class FuseElementwisePass(ModulePass):
    name = "vision-fuse-elementwise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuse_elementwise(op)
        store = current_weights()
        if store is not None:
            # bias folding may leave arithmetic on weights; evaluate it now
            fold_constants(op, store)
