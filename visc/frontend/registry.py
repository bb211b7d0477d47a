"""The table of ONNX op converters and what each needs to be known before import starts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from onnx import NodeProto

from visc.frontend.context import ImportContext, Node, Tensor

ConvertFn = Callable[[ImportContext, Node], Sequence[Tensor | None]]
CheckFn = Callable[[NodeProto, int], list[str]]


@dataclass(frozen=True)
class Converter:
    fn: ConvertFn
    # Inputs that must be constants at import time (shapes, axes, pads, ...).
    const_inputs: tuple[int, ...] = ()
    # Outputs that are always constants (Dropout's mask), whatever the inputs.
    const_outputs: tuple[int, ...] = ()
    # Attribute-only checks run before any IR is built: a list of problems.
    check: CheckFn | None = None


CONVERTERS: dict[str, Converter] = {}


def converter(
    *op_types: str,
    const_inputs: Sequence[int] = (),
    const_outputs: Sequence[int] = (),
    check: CheckFn | None = None,
) -> Callable[[ConvertFn], ConvertFn]:
    """Register `fn` as the converter of `op_types`."""

    def register(fn: ConvertFn) -> ConvertFn:
        for op_type in op_types:
            CONVERTERS[op_type] = Converter(fn, tuple(const_inputs), tuple(const_outputs), check)
        return fn

    return register


def attr_of(node: NodeProto, name: str, default: object = None) -> object:
    """An attribute's decoded value straight from the proto (for pre-import checks)."""
    import onnx

    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def load_all() -> dict[str, Converter]:
    """Import every converter module so the table is complete."""
    from visc.frontend import (  # noqa: F401
        detection,
        einsum,
        elementwise,
        indexing,
        nn,
        normalization,
        reduce,
        resize,
        tensor_ops,
    )

    return CONVERTERS
