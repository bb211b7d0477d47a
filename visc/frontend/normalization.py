"""LayerNormalization, GroupNormalization and InstanceNormalization -> one row-normalization
op each (`vision.layer_norm`, `vision.group_norm`; instance norm is a group norm with one
group per channel), so each runs as one kernel."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, f32, i64

from visc.dialects import vision
from visc.frontend.context import ImportContext, Node, ShapeFault, Tensor, Unsupported
from visc.frontend.dtypes import is_float
from visc.frontend.registry import attr_of, converter
from visc.frontend.tensor_ops import expand, norm_axis


def _check_stash(node: NodeProto, opset: int) -> list[str]:
    stash = attr_of(node, "stash_type", 1)
    if stash != 1:
        return [f"{node.op_type} stash_type={stash} is not supported (statistics are float32)"]
    return []


def _float_input(x: Tensor) -> None:
    if not is_float(x.dtype):
        raise Unsupported(f"element type {x.dtype} is not supported (floating point only)")


def _epsilon(node: Node) -> FloatAttr:
    return FloatAttr(float(node.attr("epsilon", 1e-5)), f32)


def _fit_param(ctx: ImportContext, p: Tensor, x: Tensor, what: str) -> Tensor:
    """A LayerNormalization scale/bias broadcasting to x (leading dims of size 1 beyond x's
    rank dropped)."""
    extra = p.rank - x.rank
    if extra > 0 and all(d == 1 for d in p.shape[:extra]):
        p = ctx.reshape(p, p.shape[extra:])
    if p.rank > x.rank or any(a not in (1, b) for a, b in zip(reversed(p.shape), reversed(x.shape), strict=False)):
        raise ShapeFault(f"{what} shape {p.shape} does not broadcast to the input {x.shape}")
    return p


@converter("LayerNormalization", check=_check_stash)
def _layer_norm(ctx: ImportContext, node: Node) -> list[Tensor | None]:
    x, scale, bias = node.x(0), node.x(1), node.input(2)
    _float_input(x)
    if x.rank == 0:
        raise ShapeFault("a scalar input has no dims to normalize")
    axis = norm_axis(int(node.attr("axis", -1)), x.rank)
    ins = [x, _fit_param(ctx, scale, x, "scale")]
    if bias is not None:
        ins.append(_fit_param(ctx, bias, x, "bias"))
    attrs = {"axes": vision.ints(range(axis, x.rank)), "epsilon": _epsilon(node)}
    results = [(x.shape, x.dtype)]
    if any(node.used_outputs[1:]):
        stats = x.shape[:axis] + (1,) * (x.rank - axis)
        results += [(stats, np.dtype(np.float32))] * 2
    outs = ctx.emit(vision.LayerNormOp, ins, results, attrs)
    return [*outs, *[None] * (node.num_outputs - len(outs))][: node.num_outputs]


def _group_norm(ctx: ImportContext, node: Node, x: Tensor, groups: int, scale: Tensor, bias: Tensor) -> Tensor:
    _float_input(x)
    if x.rank < 2:
        raise ShapeFault(f"input {x.shape} needs a channel dim")
    c = x.shape[1]
    if groups < 1 or c % groups:
        raise ShapeFault(f"{c} channels do not split into {groups} groups")
    for p in (scale, bias):
        if p.shape != (c,):
            raise ShapeFault(f"scale/bias shape {p.shape} is not ({c},)")
    attrs = {"groups": IntegerAttr(groups, i64), "epsilon": _epsilon(node)}
    return ctx.emit1(vision.GroupNormOp, [x, scale, bias], x.shape, x.dtype, attrs)


@converter("InstanceNormalization")
def _instance_norm(ctx: ImportContext, node: Node) -> list[Tensor]:
    x = node.x(0)
    return [_group_norm(ctx, node, x, x.shape[1] if x.rank >= 2 else 0, node.x(1), node.x(2))]


def _per_channel(ctx: ImportContext, p: Tensor, groups: int, channels: int) -> Tensor:
    """An opset-18 per-group scale/bias repeated for each channel of its group."""
    if p.shape != (groups,):
        raise ShapeFault(f"scale/bias shape {p.shape} is not ({groups},) (one value per group before opset 21)")
    if p.const is not None:
        return Tensor.constant(np.repeat(p.const, channels // groups), p.hint)
    wide = expand(ctx, ctx.reshape(p, (groups, 1)), (groups, channels // groups))
    return ctx.reshape(wide, (channels,))


@converter("GroupNormalization", check=_check_stash)
def _group_norm_op(ctx: ImportContext, node: Node) -> list[Tensor]:
    x, scale, bias = node.x(0), node.x(1), node.x(2)
    groups = int(node.attr("num_groups"))
    if node.opset < 21 and x.rank >= 2 and groups >= 1 and x.shape[1] % groups == 0:
        scale, bias = (_per_channel(ctx, p, groups, x.shape[1]) for p in (scale, bias))
    return [_group_norm(ctx, node, x, groups, scale, bias)]
