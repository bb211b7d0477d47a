"""`vision-fold-batch-norm`: inference batch-norm becomes weight arithmetic, not a kernel.

With s = scale / sqrt(var + eps), bn(y) = y * s + (beta - mean * s) per channel. When y is
a conv2d / conv2d_transpose / matmul of constant weights, s scales the weight's output
channels and the shift joins the bias; the arithmetic is emitted as `vision.map`s over the
weights, which `vision-const-eval` turns into new weights. Any other batch_norm becomes one
elementwise map x * a + c. Only IR is rewritten here; no values are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.builder import Builder
from xdsl.context import Context
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, ModuleOp, TensorType, f32
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from visc.dialects.vision import (
    BatchNormOp,
    Conv2dOp,
    Conv2dTransposeOp,
    MatmulOp,
    element_type_of,
    get_float,
    get_int,
    shape_of,
)
from visc.errors import CompileError
from visc.passes.graph.helpers import (
    convert_float,
    float_const,
    is_constant,
    is_float,
    is_tensor_op,
    make_map,
    make_reshape,
    merged_attributes,
    node_name,
    sole_user,
)


@dataclass
class _Params:
    """The batch_norm's per-channel operands and the IR that derives s and its shift."""

    bn: BatchNormOp
    ops: list[Operation]

    @property
    def elt(self) -> Attribute:
        return element_type_of(self.bn.res[0])

    @property
    def attrs(self) -> dict[str, Attribute]:
        return {k: v for k, v in self.bn.attributes.items() if k in ("onnx_node", "onnx_op")}

    def add(self, op: Operation) -> SSAValue:
        self.ops.append(op)
        return op.results[0]

    def channel_type(self) -> TensorType:
        return TensorType(self.elt, [shape_of(self.bn.ins[1])[0]])

    def scale(self) -> SSAValue:
        """s = scale / sqrt(var + eps), in the output's element type."""
        _, scale, _, _, var = self.bn.ins
        eps = get_float(self.bn, "epsilon", 1e-5)
        elt = self.elt

        def body(b: Builder, args: Sequence[SSAValue]) -> SSAValue:
            g, v = (convert_float(b, a, elt) for a in args)
            shifted = b.insert(arith.AddfOp(v, float_const(b, eps, elt))).result
            root = b.insert(math.SqrtOp(shifted)).result
            return b.insert(arith.DivfOp(g, root)).result

        return self.add(make_map([scale, var], self.channel_type(), body, self.attrs))

    def shift(self, s: SSAValue, bias: SSAValue | None, bias_scale: float = 1.0) -> SSAValue:
        """(bias_scale * bias - mean) * s + beta, or beta - mean * s without a bias."""
        _, _, beta, mean, _ = self.bn.ins
        elt = self.elt
        ins = [mean, s, beta] if bias is None else [bias, mean, s, beta]
        if bias is None:
            out_type: Attribute = self.channel_type()
        else:
            out_type = TensorType(elt, _broadcast(shape_of(bias), shape_of(s)))

        def body(b: Builder, args: Sequence[SSAValue]) -> SSAValue:
            vals = [convert_float(b, a, elt) for a in args]
            if bias is None:
                m, sv, bt = vals
                prod = b.insert(arith.MulfOp(m, sv)).result
                return b.insert(arith.SubfOp(bt, prod)).result
            bi, m, sv, bt = vals
            if bias_scale != 1.0:
                bi = b.insert(arith.MulfOp(bi, float_const(b, bias_scale, elt))).result
            diff = b.insert(arith.SubfOp(bi, m)).result
            prod = b.insert(arith.MulfOp(diff, sv)).result
            return b.insert(arith.AddfOp(prod, bt)).result

        return self.add(make_map(ins, out_type, body, self.attrs))

    def scaled(self, w: SSAValue, s: SSAValue, s_shape: Sequence[int]) -> SSAValue:
        """w * reshape(s, s_shape), in w's type."""
        s_r = self.add(make_reshape(s, s_shape, self.attrs))
        w_elt = element_type_of(w)

        def body(b: Builder, args: Sequence[SSAValue]) -> SSAValue:
            x, sv = args
            return b.insert(arith.MulfOp(x, convert_float(b, sv, w_elt))).result

        return self.add(make_map([w, s_r], w.type, body, self.attrs))


def _broadcast(a: Sequence[int], b: Sequence[int]) -> list[int]:
    n = max(len(a), len(b))
    pa, pb = [1] * (n - len(a)) + list(a), [1] * (n - len(b)) + list(b)
    return [max(x, y) for x, y in zip(pa, pb, strict=True)]


def _all_constant(values: Sequence[SSAValue]) -> bool:
    return all(is_constant(v) for v in values)


def _check(bn: BatchNormOp) -> None:
    x = shape_of(bn.ins[0])
    if len(x) < 2:
        raise CompileError(f"BatchNormalization node '{node_name(bn)}': input must have at least 2 dims, got {list(x)}")
    if not all(is_float(element_type_of(v)) for v in bn.ins):
        raise CompileError(f"BatchNormalization node '{node_name(bn)}': operands must be floating point")


def _fold_conv(bn: BatchNormOp, conv: Conv2dOp | Conv2dTransposeOp, p: _Params) -> Operation:
    x, w = conv.ins[0], conv.ins[1]
    bias = conv.ins[2] if len(conv.ins) == 3 else None
    s = p.scale()
    wshape = shape_of(w)
    if isinstance(conv, Conv2dOp):
        new_w = p.scaled(w, s, [wshape[0], 1, 1, 1])
    else:
        groups = get_int(conv, "groups", 1)
        cin, opg = wshape[0], wshape[1]
        if groups == 1:
            new_w = p.scaled(w, s, [1, opg, 1, 1])
        else:
            split = [groups, cin // groups, opg, *wshape[2:]]
            w5 = p.add(make_reshape(w, split, p.attrs))
            m = p.scaled(w5, s, [groups, 1, opg, 1, 1])
            new_w = p.add(make_reshape(m, wshape, p.attrs))
    new_b = p.shift(s, bias)
    attrs = merged_attributes(conv, [conv, bn])
    return type(conv)([x, new_w, new_b], [bn.res[0].type], attrs)


def _fold_matmul(bn: BatchNormOp, mm: MatmulOp, p: _Params) -> Operation:
    a, b = mm.ins[0], mm.ins[1]
    c = mm.ins[2] if len(mm.ins) == 3 else None
    s = p.scale()
    feat = shape_of(bn.res[0])[-1]
    new_b = p.scaled(b, s, [feat, 1] if get_int(mm, "transpose_b", 0) else [feat])
    new_c = p.shift(s, c, get_float(mm, "beta", 1.0) if c is not None else 1.0)
    attrs = merged_attributes(mm, [mm, bn])
    old_beta = mm.attributes.get("beta")
    attrs["beta"] = FloatAttr(1.0, old_beta.type if isinstance(old_beta, FloatAttr) else f32)
    return MatmulOp([a, new_b, new_c], [bn.res[0].type], attrs)


def _foldable(bn: BatchNormOp) -> Operation | None:
    """The conv2d / conv2d_transpose / matmul that `bn` can fold into, if any."""
    prod = bn.ins[0].owner
    if not isinstance(prod, Conv2dOp | Conv2dTransposeOp | MatmulOp) or not is_tensor_op(prod):
        return None
    if prod.body.blocks or prod.fuse or sole_user(prod.res[0]) is not bn or bn.ins[0] in bn.ins[1:]:
        return None
    if prod.res[0].type != bn.res[0].type or not _all_constant(list(bn.ins[1:])):
        return None
    if not _all_constant(list(prod.ins[1:])):
        return None
    if isinstance(prod, MatmulOp):
        # batch_norm normalizes dim 1: the matmul's feature (last) dim only for 2-D outputs
        if len(shape_of(prod.res[0])) != 2 or len(shape_of(prod.ins[1])) != 2:
            return None
    return prod


class FoldIntoProducer(RewritePattern):
    """conv2d/conv2d_transpose/matmul + batch_norm -> the producer with rescaled weights."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: BatchNormOp, rewriter: PatternRewriter) -> None:
        if not is_tensor_op(op):
            return
        _check(op)
        prod = _foldable(op)
        if prod is None:
            return
        p = _Params(op, [])
        if isinstance(prod, MatmulOp):
            new = _fold_matmul(op, prod, p)
        else:
            assert isinstance(prod, Conv2dOp | Conv2dTransposeOp)
            new = _fold_conv(op, prod, p)
        rewriter.replace(op, [*p.ops, new], [new.results[0]])
        rewriter.erase(prod)


class BatchNormToMap(RewritePattern):
    """Any other batch_norm -> x * a + c with per-channel a, c (shape C,1,...,1)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: BatchNormOp, rewriter: PatternRewriter) -> None:
        if not is_tensor_op(op):
            return
        _check(op)
        p = _Params(op, [])
        s = p.scale()
        c = p.shift(s, None)
        rank = len(shape_of(op.ins[0]))
        chan = shape_of(op.ins[1])[0]
        if rank > 2:
            s = p.add(make_reshape(s, [chan] + [1] * (rank - 2), p.attrs))
            c = p.add(make_reshape(c, [chan] + [1] * (rank - 2), p.attrs))
        elt = p.elt

        def body(b: Builder, args: Sequence[SSAValue]) -> SSAValue:
            x, a, sh = (convert_float(b, v, elt) for v in args)
            prod = b.insert(arith.MulfOp(x, a)).result
            return b.insert(arith.AddfOp(prod, sh)).result

        new = make_map([op.ins[0], s, c], op.res[0].type, body, p.attrs)
        rewriter.replace(op, [*p.ops, new], [new.res[0]])


@dataclass(frozen=True)
class FoldBatchNormPass(ModulePass):
    name = "vision-fold-batch-norm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FoldIntoProducer(), apply_recursively=False).rewrite_module(op)
        PatternRewriteWalker(BatchNormToMap(), apply_recursively=False).rewrite_module(op)
