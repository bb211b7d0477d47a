"""An `onnx.backend.base.Backend` so ONNX's own backend test runner can drive visc.

    import visc.onnx_backend as backend
    rep = backend.prepare(model)          # compiles for the default OpenCL device
    outputs = rep.run([x])

visc compiles static shapes. `prepare` compiles for the model's declared shapes when it can;
`run` specializes when the inputs' shapes differ or when the graph takes parameters (shapes,
axes, pads, scales) as inputs, binding them to the given values. Each specialization is
compiled once and cached by shapes and parameter values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from visc.compiler import compile_model
from visc.errors import InputShapeError
from visc.frontend.specialize import bind_inputs, graph_parameter_inputs


class ViscRep(BackendRep):
    def __init__(self, model: onnx.ModelProto, device: str | None = None, target: str = "opencl"):
        self.target = target
        self.model = model
        self.device = device
        inits = {i.name for i in model.graph.initializer}
        self.input_names = [vi.name for vi in model.graph.input if vi.name not in inits]
        self.parameters = set(graph_parameter_inputs(model))
        self._compiled: dict[tuple, Any] = {}

    def _key(self, named: Mapping[str, np.ndarray]) -> tuple:
        return tuple(
            (n, a.shape, a.dtype.str, a.tobytes() if n in self.parameters else None) for n, a in named.items()
        )

    def compiled_for(self, named: Mapping[str, np.ndarray]) -> Any:
        key = self._key(named)
        if key not in self._compiled:
            model = bind_inputs(self.model, {n: a for n, a in named.items() if n in self.parameters})
            shapes = {n: a.shape for n, a in named.items() if n not in self.parameters}
            self._compiled[key] = compile_model(model, target=self.target, input_shapes=shapes, device=self.device)
        return self._compiled[key]

    def _named(self, inputs: Any) -> dict[str, Any]:
        """The inputs as given, by input name; a wrong count or wrong names is an error."""
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, Mapping):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise InputShapeError(f"missing input(s) {missing}; the model takes {self.input_names}")
            return {n: inputs[n] for n in self.input_names}
        values = list(inputs)
        if len(values) != len(self.input_names):
            raise InputShapeError(f"the model takes {len(self.input_names)} inputs {self.input_names}, "
                                  f"got {len(values)}")
        return dict(zip(self.input_names, values, strict=True))

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Outputs for ``inputs`` (a list in input order, a dict, or one array). Their dtypes must
        be the model's, as in onnxruntime; ``cast=True`` converts (see `CompiledModel.run`)."""
        named = self._named(inputs)
        compiled = self.compiled_for({n: np.asarray(v) for n, v in named.items()})
        feeds = {n: v for n, v in named.items() if n not in self.parameters}
        return tuple(compiled.run(feeds, cast=bool(kwargs.get("cast", False))))


class ViscBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        from visc.frontend.onnx import unsupported_ops

        model = bind_inputs(model, {})
        problems = unsupported_ops(model)
        return all("must be a constant known at import time" in p for p in problems)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> ViscRep:
        super().prepare(model, device, **kwargs)
        return ViscRep(model, device=kwargs.get("visc_device"), target=kwargs.get("visc_target", "opencl"))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        # visc picks its own OpenCL device; ONNX's device names ("CPU", "CUDA") only gate tests.
        return device in ("CPU", "CUDA")


prepare = ViscBackend.prepare
run_model = ViscBackend.run_model
supports_device = ViscBackend.supports_device
is_compatible = ViscBackend.is_compatible

__all__: Sequence[str] = ["ViscBackend", "ViscRep", "prepare", "run_model", "supports_device", "is_compatible"]
