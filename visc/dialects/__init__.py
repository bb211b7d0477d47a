"""Dialects visc uses: its own `vision` dialect plus the upstream ones it lowers through."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, gpu, llvm, math, memref, scf, vector

from visc.dialects.vision import Vision

UPSTREAM = (builtin.Builtin, func.Func, arith.Arith, math.Math, memref.MemRef, scf.Scf, gpu.GPU, vector.Vector, llvm.LLVM)


def make_context() -> Context:
    """A context with every dialect a visc module can contain at any stage."""
    ctx = Context(allow_unregistered=False)
    for dialect in (*UPSTREAM, Vision):
        if dialect.name not in ctx.registered_dialect_names:
            ctx.load_dialect(dialect)
    return ctx
