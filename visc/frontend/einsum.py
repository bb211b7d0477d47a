"""Einsum -> existing vision ops, decided at import time from the equation.

Each operand first loses its repeated labels (a diagonal: the two dims flattened and sliced
with stride n + 1) and the labels no other operand or the output has (a sum). Operands then
combine left to right: labels shared and still needed are batch dims, shared labels no longer
needed are contracted by one `vision.matmul` (its transpose flags absorb operands laid out
as (batch, K, M) or (batch, N, K)); with nothing to contract the product is a broadcast
multiply. The last step sums what the output lacks and transposes to its order. So the forms
exporters emit ("bij,bjk->bik", "bhid,bhjd->bhij", "bchw,bkc->bkhw", "ij->ji") become one
matmul or one transpose, plus views.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

from visc.dialects import vision
from visc.frontend.context import ImportContext, Node, ShapeFault, Tensor, Unsupported
from visc.frontend.registry import converter
from visc.frontend.scalars import emit_map
from visc.frontend.tensor_ops import transpose

_TERM = re.compile(r"^[A-Za-z]*(\.\.\.)?[A-Za-z]*$")


@dataclass
class _Operand:
    """A tensor with one label per dim."""

    t: Tensor
    labels: list[str]


def _parse(equation: str, ranks: Sequence[int]) -> tuple[list[list[str]], list[str]]:
    """Per-operand labels and the output labels; "..." dims become labels "..0", "..1", ...
    aligned to the right (numpy broadcasting)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ShapeFault(f"the equation names {len(terms)} operands, the node has {len(ranks)}")
    for term in [*terms, *([rhs] if arrow else [])]:
        if not _TERM.match(term):
            raise Unsupported(f"cannot parse the term {term!r}")
    dots = max((r - len(t.replace("...", "")) for t, r in zip(terms, ranks, strict=True) if "..." in t), default=0)

    def expand(term: str, rank: int) -> list[str]:
        head, has, tail = term.partition("...")
        n = rank - len(head) - len(tail) if has else 0
        if n < 0 or (not has and len(term) != rank):
            raise ShapeFault(f"the term {term!r} does not fit a rank-{rank} operand")
        return [*head, *[f"..{dots - n + i}" for i in range(n)], *tail]

    labels = [expand(t, r) for t, r in zip(terms, ranks, strict=True)]
    if arrow:
        if "..." in rhs:
            head, _, tail = rhs.partition("...")
            out = [*head, *[f"..{i}" for i in range(dots)], *tail]
        else:
            out = list(rhs)
    else:  # implicit output: the broadcast dims, then the labels used once, alphabetically
        counts: dict[str, int] = {}
        for ls in labels:
            for label in ls:
                counts[label] = counts.get(label, 0) + 1
        out = [f"..{i}" for i in range(dots)] + sorted(k for k, n in counts.items() if n == 1 and not k.startswith(".."))
    if len(set(out)) != len(out) or any(o not in {x for ls in labels for x in ls} for o in out):
        raise ShapeFault(f"output labels {''.join(out)!r} repeat or are not in any operand")
    return labels, out


def _permute(ctx: ImportContext, a: _Operand, order: Sequence[str]) -> _Operand:
    perm = [a.labels.index(x) for x in order]
    return _Operand(transpose(ctx, a.t, perm), list(order))


def _diagonal(ctx: ImportContext, a: _Operand) -> _Operand:
    """Each label repeated within the operand kept once: the diagonal of those dims."""
    while True:
        dup = next((x for x in a.labels if a.labels.count(x) > 1), None)
        if dup is None:
            return a
        i, j = [p for p, x in enumerate(a.labels) if x == dup][:2]
        n = a.t.shape[i]
        if a.t.shape[j] != n:
            raise ShapeFault(f"label {dup!r} has sizes {n} and {a.t.shape[j]}")
        rest = [x for p, x in enumerate(a.labels) if p not in (i, j)]
        a = _permute(ctx, a, [*rest, dup, dup]) if a.labels[-2:] != [dup, dup] else a
        flat = ctx.reshape(a.t, (*a.t.shape[:-2], n * n))
        rank = flat.rank
        attrs = {"starts": vision.ints([0] * rank), "steps": vision.ints([1] * (rank - 1) + [n + 1])}
        diag = ctx.emit1(vision.SliceOp, [flat], (*flat.shape[:-1], n), flat.dtype, attrs)
        a = _Operand(diag, [*rest, dup])


def _sum(ctx: ImportContext, a: _Operand, drop: set[str]) -> _Operand:
    axes = [p for p, x in enumerate(a.labels) if x in drop]
    if not axes:
        return a
    keep = [x for x in a.labels if x not in drop]
    shape = [d for p, d in enumerate(a.t.shape) if p not in axes]
    attrs = {"kind": StringAttr("sum"), "axes": vision.ints(axes)}
    return _Operand(ctx.emit1(vision.ReduceOp, [a.t], shape, a.t.dtype, attrs), keep)


def _layout(ctx: ImportContext, a: _Operand, choices: Sequence[tuple[list[str], int]]) -> tuple[Tensor, int]:
    """The operand in the first of `choices` (label order, transpose flag) it already has,
    else transposed to the first."""
    for order, flag in choices:
        if a.labels == order:
            return a.t, flag
    order, flag = choices[0]
    return _permute(ctx, a, order).t, flag


def _sizes(a: _Operand, labels: Sequence[str]) -> list[int]:
    return [a.t.shape[a.labels.index(x)] for x in labels]


def _combine(ctx: ImportContext, a: _Operand, b: _Operand, keep: set[str], out: Sequence[str]) -> _Operand:
    """The product of two operands over their shared labels; labels not in `keep` are summed."""
    a = _sum(ctx, a, {x for x in a.labels if x not in keep and x not in b.labels})
    b = _sum(ctx, b, {x for x in b.labels if x not in keep and x not in a.labels})
    batch = [x for x in a.labels if x in b.labels and x in keep]
    contract = [x for x in a.labels if x in b.labels and x not in keep]
    a_free = [x for x in a.labels if x not in b.labels]
    b_free = [x for x in b.labels if x not in a.labels]
    for x in batch + contract:
        sa, sb = _sizes(a, [x])[0], _sizes(b, [x])[0]
        if sa != sb and (x in contract or 1 not in (sa, sb)):
            raise ShapeFault(f"label {x!r} has sizes {sa} and {sb}")
    # B @ A when that gives the output's order and A @ B does not
    if [x for x in out if x in (*batch, *a_free, *b_free)] == [*batch, *b_free, *a_free] != [*batch, *a_free, *b_free]:
        a, b, a_free, b_free = b, a, b_free, a_free
    bshape = [max(p, q) for p, q in zip(_sizes(a, batch), _sizes(b, batch), strict=True)]
    m, n = math.prod(_sizes(a, a_free)), math.prod(_sizes(b, b_free))
    labels = [*batch, *a_free, *b_free]
    shape = (*bshape, *_sizes(a, a_free), *_sizes(b, b_free))
    if not contract:  # an outer (or elementwise) product: broadcast multiply
        ta = _permute(ctx, a, [*batch, *a_free]).t
        tb = _permute(ctx, b, [*batch, *b_free]).t
        ta = ctx.reshape(ta, (*ta.shape[: len(batch)], m, 1))
        tb = ctx.reshape(tb, (*tb.shape[: len(batch)], 1, n))
        y = emit_map(ctx, [ta, tb], ta.dtype, lambda s, v: s.mul(v[0], v[1], ta.dtype))
        return _Operand(ctx.reshape(y, shape), labels)
    k = math.prod(_sizes(a, contract))
    ta, flag_a = _layout(ctx, a, [([*batch, *a_free, *contract], 0), ([*batch, *contract, *a_free], 1)])
    tb, flag_b = _layout(ctx, b, [([*batch, *contract, *b_free], 0), ([*batch, *b_free, *contract], 1)])
    ta = ctx.reshape(ta, (*ta.shape[: len(batch)], *((k, m) if flag_a else (m, k))))
    tb = ctx.reshape(tb, (*tb.shape[: len(batch)], *((n, k) if flag_b else (k, n))))
    attrs = {"transpose_a": IntegerAttr(flag_a, i64), "transpose_b": IntegerAttr(flag_b, i64)}
    y = ctx.emit1(vision.MatmulOp, [ta, tb], (*bshape, m, n), ta.dtype, attrs)
    return _Operand(ctx.reshape(y, shape), labels)


@converter("Einsum")
def _einsum(ctx: ImportContext, node: Node) -> list[Tensor]:
    ts = [node.x(i) for i in range(len(node.inputs))]
    equation = str(node.attr("equation", ""))
    try:
        return [_contract(ctx, ts, equation)]
    except (ShapeFault, Unsupported) as e:
        raise type(e)(f"equation {equation!r}: {e}") from None


def _contract(ctx: ImportContext, ts: list[Tensor], equation: str) -> Tensor:
    if len({t.dtype for t in ts}) > 1:
        raise Unsupported(f"operands have different element types {sorted(str(t.dtype) for t in ts)}")
    labels, out = _parse(equation, [t.rank for t in ts])
    ops = [_diagonal(ctx, _Operand(t, ls)) for t, ls in zip(ts, labels, strict=True)]
    acc = ops[0]
    for i, b in enumerate(ops[1:], 1):
        keep = set(out) | {x for later in ops[i + 1:] for x in later.labels}
        acc = _combine(ctx, acc, b, keep, out if i == len(ops) - 1 else ())
    acc = _sum(ctx, acc, {x for x in acc.labels if x not in out})
    return _permute(ctx, acc, out).t
