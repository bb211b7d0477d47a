"""A small builder of ONNX graphs for the test models (tests/detection_models.py,
tests/modern_models.py): nodes and initializers with unique names."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass
class GraphBuilder:
    """Accumulates nodes and initializers with unique names."""

    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    count: int = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: np.ndarray | float, hint: str = "c") -> str:
        """An initializer; a Python float becomes a float32 scalar."""
        name = self.name(hint)
        array = np.asarray(value, np.float32) if isinstance(value, float) else np.asarray(value)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: object) -> str | list[str]:
        """A node; its output name, or the list of them with ``n_out`` > 1."""
        base = self.name(op_type.lower())
        outs = [f"{base}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=base, **attrs))
        return outs[0] if n_out == 1 else outs
