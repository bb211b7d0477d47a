"""Reading and writing one lane of a 1-D vector in the llvm dialect.

xDSL's llvm dialect has `insertelement` but no `extractelement`: a lane is read as a
one-lane `shufflevector` bit-cast to the scalar, which LLVM folds to `extractelement`."""

from __future__ import annotations

from xdsl.dialects import llvm
from xdsl.dialects.builtin import VectorType, i32
from xdsl.ir import SSAValue

from visc.passes.llvm.conversion import Lowering, dense_i32


def extract_lane(c: Lowering, vector: SSAValue, lane: int) -> SSAValue:
    typ = vector.type
    assert isinstance(typ, VectorType)
    one = VectorType(typ.element_type, [1])
    picked = c.emit(llvm.ShuffleVectorOp(vector, vector, dense_i32([lane]), one))
    return c.emit(llvm.BitcastOp(picked, typ.element_type))


def insert_lane(c: Lowering, vector: SSAValue, value: SSAValue, lane: int) -> SSAValue:
    return c.emit(llvm.InsertElementOp(vector, value, c.const(lane, i32)))


def splat(c: Lowering, value: SSAValue, typ: VectorType) -> SSAValue:
    """A vector with ``value`` in every lane."""
    first = insert_lane(c, c.emit(llvm.UndefOp(typ)), value, 0)
    return c.emit(llvm.ShuffleVectorOp(first, first, dense_i32([0] * typ.element_count()), typ))


__all__ = ["extract_lane", "insert_lane", "splat"]
