"""`vision-canonicalize`: local simplifications that leave fewer, simpler ops for later passes.

Every rewrite here removes work without changing values, so it is safe to run after any
graph pass; the other graph passes rely on it to clean up what they leave behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from visc.dialects.vision import (
    ConcatOp,
    LayerNormOp,
    MapOp,
    ReshapeOp,
    SliceOp,
    TransposeOp,
    VisionOp,
    WeightOp,
    YieldOp,
    element_type_of,
    get_ints,
    ints,
    shape_of,
)
from visc.passes.graph.helpers import is_tensor_op, make_reshape, merged_attributes, sole_user


def _forward(rewriter: PatternRewriter, op: Operation, value: SSAValue) -> None:
    """Replace `op`'s only result by `value` (an op that computes nothing new)."""
    rewriter.replace_all_uses_with(op.results[0], value)
    rewriter.erase(op)


class IdentityMap(RewritePattern):
    """A map whose body yields one of its arguments unchanged, at the same type, is that input."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MapOp, rewriter: PatternRewriter) -> None:
        if not is_tensor_op(op) or len(op.res) != 1:
            return
        last = op.body.block.last_op
        if not isinstance(last, YieldOp) or len(last.values) != 1:
            return
        value = last.values[0]
        if value.owner is not op.body.block:
            return
        src = op.ins[op.body.block.args.index(value)]
        if src.type == op.res[0].type:
            _forward(rewriter, op, src)


class ReshapeChain(RewritePattern):
    """reshape(reshape(x)) -> reshape(x); a reshape to the same shape -> its input."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ReshapeOp, rewriter: PatternRewriter) -> None:
        if not is_tensor_op(op):
            return
        src = op.ins[0]
        if src.type == op.res[0].type:
            _forward(rewriter, op, src)
            return
        inner = src.owner
        if isinstance(inner, ReshapeOp):
            new = ReshapeOp([inner.ins[0]], [op.res[0].type], merged_attributes(op, [inner, op]))
            rewriter.replace(op, new)


class TransposeChain(RewritePattern):
    """transpose(transpose(x)) -> one transpose; an identity permutation -> the input."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TransposeOp, rewriter: PatternRewriter) -> None:
        if not is_tensor_op(op):
            return
        perm = get_ints(op, "perm")
        if perm == tuple(range(len(perm))):
            _forward(rewriter, op, op.ins[0])
            return
        inner = op.ins[0].owner
        if isinstance(inner, TransposeOp) and is_tensor_op(inner):
            first = get_ints(inner, "perm")
            composed = [first[p] for p in perm]
            if composed == list(range(len(composed))):
                _forward(rewriter, op, inner.ins[0])
                return
            attrs = merged_attributes(op, [inner, op])
            attrs["perm"] = ints(composed)
            rewriter.replace(op, TransposeOp([inner.ins[0]], [op.res[0].type], attrs))


def _permuted(value: SSAValue, perm: tuple[int, ...], attrs: dict[str, Attribute]) -> tuple[list[Operation], SSAValue]:
    """`value`, broadcasting to a rank-len(perm) tensor, transposed by `perm` (a reshape where
    only its dims of size 1 move)."""
    shape = shape_of(value)
    padded = (1,) * (len(perm) - len(shape)) + shape
    target = [padded[p] for p in perm]
    moved = [p for p in perm if padded[p] != 1]
    ops: list[Operation] = []
    if moved == sorted(moved):
        if tuple(target) != shape:
            ops.append(make_reshape(value, target, attrs))
    else:
        if padded != shape:
            ops.append(make_reshape(value, padded, attrs))
        src = ops[-1].results[0] if ops else value
        ops.append(TransposeOp([src], [TensorType(element_type_of(value), target)], {**attrs, "perm": ints(perm)}))
    return ops, ops[-1].results[0] if ops else value


class TransposedLayerNorm(RewritePattern):
    """transpose(p) -> layer_norm -> the inverse transpose, each used once and no statistics
    used -> one layer_norm of the untransposed tensor over the dims p maps the normalized ones
    to: ConvNeXt's channels-first LayerNorm (permute to NHWC, normalize the last dim, permute
    back) becomes one kernel over NCHW channels instead of three."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TransposeOp, rewriter: PatternRewriter) -> None:
        ln = op.ins[0].owner
        if not (is_tensor_op(op) and isinstance(ln, LayerNormOp) and is_tensor_op(ln) and len(ln.res) == 1
                and sole_user(ln.res[0]) is op):
            return
        inner = ln.ins[0].owner
        if not (isinstance(inner, TransposeOp) and is_tensor_op(inner) and sole_user(inner.res[0]) is ln):
            return
        p, q = get_ints(inner, "perm"), get_ints(op, "perm")
        if [p[j] for j in q] != list(range(len(p))):
            return
        attrs = merged_attributes(ln, [inner, ln, op])
        names = {k: v for k, v in attrs.items() if k in ("onnx_node", "onnx_op")}
        new_ops: list[Operation] = []
        params = []
        for v in ln.ins[1:]:
            ops, moved = _permuted(v, q, names)
            new_ops += ops
            params.append(moved)
        attrs["axes"] = ints(sorted(p[a] for a in get_ints(ln, "axes")))
        new = LayerNormOp([inner.ins[0], *params], [op.res[0].type], attrs)
        rewriter.replace(op, [*new_ops, new], [new.res[0]])
        rewriter.erase(ln)
        rewriter.erase(inner)


class NoOpSlice(RewritePattern):
    """A slice that starts at 0 with step 1 and keeps every element is its input."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: SliceOp, rewriter: PatternRewriter) -> None:
        if not is_tensor_op(op):
            return
        starts, steps = get_ints(op, "starts"), get_ints(op, "steps")
        if (all(s == 0 for s in starts) and all(s == 1 for s in steps)
                and op.ins[0].type == op.res[0].type):
            _forward(rewriter, op, op.ins[0])


class SingleConcat(RewritePattern):
    """A concat of one input is that input."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ConcatOp, rewriter: PatternRewriter) -> None:
        if is_tensor_op(op) and len(op.ins) == 1 and op.ins[0].type == op.res[0].type:
            _forward(rewriter, op, op.ins[0])


class DeadTensorOp(RewritePattern):
    """Vision ops on tensors are pure: with no result used they go (weights are Pure already)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if is_tensor_op(op) and all(not r.uses for r in op.results):
            rewriter.erase(op)


class DuplicateMapInputs(RewritePattern):
    """A map reading the same value twice reads it once (one block argument fewer)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MapOp, rewriter: PatternRewriter) -> None:
        if not is_tensor_op(op) or op.fuse or len(set(op.ins)) == len(op.ins):
            return
        dedupe_map_inputs(op, rewriter)


def dedupe_map_inputs(op: MapOp, rewriter: PatternRewriter) -> MapOp:
    """Replaces `op` by an equivalent map whose inputs are distinct; returns the new map."""
    block = op.body.block
    first: dict[SSAValue, int] = {}
    keep: list[int] = []
    for i, v in enumerate(op.ins):
        if v in first:
            block.args[i].replace_all_uses_with(block.args[first[v]])
        else:
            first[v] = i
            keep.append(i)
    for i in reversed(range(len(op.ins))):
        if i not in keep:
            block.erase_arg(block.args[i])
    body = op.detach_region(op.body)
    new = MapOp([op.ins[i] for i in keep], [r.type for r in op.res], dict(op.attributes), body=body)
    rewriter.replace(op, new)
    return new


def dedupe_body_constants(block: Block, rewriter: PatternRewriter) -> bool:
    """Merges identical arith.constant ops of one body block into the first of them."""
    seen: dict[tuple[object, object], SSAValue] = {}
    changed = False
    for op in list(block.ops):
        if not isinstance(op, arith.ConstantOp):
            continue
        key = (op.value, op.result.type)
        if key in seen:
            rewriter.replace_all_uses_with(op.result, seen[key])
            rewriter.erase(op)
            changed = True
        else:
            seen[key] = op.result
    return changed


class BodyConstants(RewritePattern):
    """Duplicate constants in a map or epilogue body become one."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, VisionOp) or not op.body.blocks:
            return
        dedupe_body_constants(op.body.block, rewriter)


def dedupe_weights(module: ModuleOp) -> None:
    """Weight ops naming the same entry (and type) in one block become the first of them."""
    seen: dict[tuple[Block, str, object], WeightOp] = {}
    for op in list(module.walk()):
        if not isinstance(op, WeightOp) or op.parent_block() is None:
            continue
        key = (op.parent_block(), op.weight_name, op.result.type)
        kept = seen.get(key)
        if kept is None:  # the walk meets the first one in program order
            seen[key] = op
            continue
        op.result.replace_all_uses_with(kept.result)
        op.detach()
        op.erase()


def canonicalize_module(module: ModuleOp) -> None:
    dedupe_weights(module)
    PatternRewriteWalker(
        GreedyRewritePatternApplier([
            DeadTensorOp(),
            IdentityMap(),
            DuplicateMapInputs(),
            ReshapeChain(),
            TransposeChain(),
            TransposedLayerNorm(),
            NoOpSlice(),
            SingleConcat(),
            BodyConstants(),
        ]),
        walk_reverse=True,
    ).rewrite_module(module)


@dataclass(frozen=True)
class VisionCanonicalizePass(ModulePass):
    name = "vision-canonicalize"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        canonicalize_module(op)


__all__ = ["VisionCanonicalizePass", "canonicalize_module", "dedupe_map_inputs", "dedupe_body_constants"]
