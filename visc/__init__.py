"""visc: a retargetable CNN inference compiler and runtime on xDSL.

    import visc
    model = visc.compile("model.onnx", target="opencl", input_shapes={"data": (1, 3, 224, 224)})
    outputs = model.run({"data": x})
    model.save("model.visc")
    same = visc.load("model.visc")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from visc.errors import ViscError
from visc.version import __version__

# PoCL's CPU device: pin its worker threads to cores. Unpinned, a run on a 2-core machine
# sometimes takes 25% longer when a worker shares a core with the host thread (set the
# variable before visc is imported to choose otherwise; PoCL reads it once, at start-up).
os.environ.setdefault("POCL_AFFINITY", "1")

if TYPE_CHECKING:
    import onnx

    from visc.model import CompiledModel


def compile(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    target: str = "opencl",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    device: str | None = None,
    arch: str | None = None,
    fallback: Sequence[str] | None = None,
    records: str | os.PathLike[str] | bool | None = None,
) -> CompiledModel:
    """Compile an ONNX model (path, bytes or ModelProto) for `target` ("opencl", "cuda" or
    "cpu"; for CUDA, ``arch`` such as "sm_90" picks the GPU architecture of the PTX).
    ``fallback``: ONNX op types (e.g. ["NonMaxSuppression", "TopK"]) to run on the CPU
    backend beside a GPU target (a mixed plan; see `visc import --show-placement`).
    ``records``: a tuning database or exported .json whose best schedules replace the
    defaults; None: the records visc ships for this device, if any; False: none."""
    from visc.compiler import compile_model

    return compile_model(model, target=target, input_shapes=input_shapes, device=device, arch=arch,
                         fallback=fallback, records=records)


def load(path: str, device: str | None = None) -> CompiledModel:
    """Load a model saved with `CompiledModel.save`."""
    from visc.model import load as _load

    return _load(path, device=device)


__all__ = ["compile", "load", "ViscError", "__version__"]
