"""An `onnx.backend.base.Backend` so ONNX's own backend test runner can drive visc.

    import visc.onnx_backend as backend
    rep = backend.prepare(model)          # compiles for the default OpenCL device
    outputs = rep.run([x])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from visc.compiler import compile_model


class ViscRep(BackendRep):
    def __init__(self, compiled: Any):
        self.compiled = compiled

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        return tuple(self.compiled.run(list(inputs) if not isinstance(inputs, dict) else inputs))


class ViscBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        from visc.frontend.onnx import unsupported_ops

        return not unsupported_ops(model)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> ViscRep:
        super().prepare(model, device, **kwargs)
        return ViscRep(compile_model(model, input_shapes=kwargs.get("input_shapes"),
                                     device=kwargs.get("visc_device")))

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
