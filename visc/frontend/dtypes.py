"""Element types: ONNX data types, numpy dtypes and IR types (docs/ir.md "Element types").

Integers are signless in the IR; the importer keeps the numpy dtype of every value so it can
pick the signed or unsigned arith op, and records graph input/output dtypes on @main.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from xdsl.dialects.builtin import IntegerType, TensorType, f16, f32, f64, i1
from xdsl.ir import Attribute

# ONNX element types the vision dialect can hold, as numpy dtypes.
ONNX_TO_NUMPY: dict[int, np.dtype] = {
    TensorProto.FLOAT: np.dtype(np.float32),
    TensorProto.DOUBLE: np.dtype(np.float64),
    TensorProto.FLOAT16: np.dtype(np.float16),
    TensorProto.INT8: np.dtype(np.int8),
    TensorProto.INT16: np.dtype(np.int16),
    TensorProto.INT32: np.dtype(np.int32),
    TensorProto.INT64: np.dtype(np.int64),
    TensorProto.UINT8: np.dtype(np.uint8),
    TensorProto.UINT16: np.dtype(np.uint16),
    TensorProto.UINT32: np.dtype(np.uint32),
    TensorProto.UINT64: np.dtype(np.uint64),
    TensorProto.BOOL: np.dtype(np.bool_),
}


def onnx_type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"type {elem_type}"


def numpy_dtype(elem_type: int) -> np.dtype | None:
    """The numpy dtype of an ONNX element type, or None when the IR cannot hold it."""
    return ONNX_TO_NUMPY.get(elem_type)


def is_supported_dtype(dtype: np.dtype) -> bool:
    return dtype in ONNX_TO_NUMPY.values()


def is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def is_bool(dtype: np.dtype) -> bool:
    return dtype.kind == "b"


def is_unsigned(dtype: np.dtype) -> bool:
    return dtype.kind == "u"


def is_signed_int(dtype: np.dtype) -> bool:
    return dtype.kind == "i"


def element_type(dtype: np.dtype) -> Attribute:
    """The IR element type of a numpy dtype (signless integers, i1 for bool)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return {2: f16, 4: f32, 8: f64}[dtype.itemsize]
    if dtype.kind == "b":
        return i1
    return IntegerType(8 * dtype.itemsize)


def tensor_type(shape: tuple[int, ...], dtype: np.dtype) -> TensorType:
    return TensorType(element_type(dtype), list(shape))
