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
from visc.stages import Stage
from visc.version import __version__

# PoCL's CPU device: pin its worker threads to cores. Unpinned, a run on a 2-core machine
# sometimes takes 25% longer when a worker shares a core with the host thread (set the
# variable before visc is imported to choose otherwise; PoCL reads it once, at start-up).
os.environ.setdefault("POCL_AFFINITY", "1")

# PoCL's LLVM 14 cannot name newer CPUs (e.g. AMD Zen 5) and then fails every kernel build: on
# those only, point the ICD loader at a patched libpocl (docs/architecture.md; VISC_POCL_COMPAT=0).
from visc.runtime.pocl_compat import ensure_pocl_cpu  # noqa: E402

ensure_pocl_cpu()

if TYPE_CHECKING:
    import onnx

    from visc.model import CompiledModel
    from visc.runtime.pipeline import Pipeline


def compile(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    target: str = "opencl",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    device: str | None = None,
    arch: str | None = None,
    fallback: Sequence[str] | None = None,
    records: str | os.PathLike[str] | bool | None = None,
    cache: bool = True,
) -> CompiledModel:
    """Compile an ONNX model (path, bytes or ModelProto) for `target` ("opencl", "cuda" or
    "cpu"; for CUDA, ``arch`` such as "sm_90" picks the GPU architecture of the PTX).
    ``fallback``: ONNX op types (e.g. ["NonMaxSuppression", "TopK"]) to run on the CPU
    backend beside a GPU target (a mixed plan; see `visc import --show-placement`).
    ``records``: a tuning database or exported .json whose best schedules replace the
    defaults; None: the records visc ships for this device, if any; False: none.
    ``cache``: return the result of an identical earlier compile from the persistent compile
    cache (``visc cache info``; VISC_CACHE_DIR, VISC_CACHE=0), and store this one there."""
    from visc.model_cache import open_request

    # looked up before the compiler is imported: a hit never loads xDSL
    request = open_request(model, target, input_shapes, device, arch, fallback, records) if cache else None
    hit = request.lookup() if request is not None else None
    if hit is not None:
        return hit  # type: ignore[return-value]
    from visc.compiler import compile_model

    return compile_model(model, target=target, input_shapes=input_shapes, device=device, arch=arch,
                         fallback=fallback, records=records, cache=request if request is not None else False)


def pipeline(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    stages: Sequence[Stage | str | Mapping[str, object]] | int | str,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    devices: Sequence[str] | None = None,
    frames_in_flight: int = 4,
    records: str | os.PathLike[str] | bool | None = None,
    arch: str | None = None,
    threads: int | None = None,
    fallback: Sequence[str] | None = None,
    engine: str = "threads",
    ray_address: str | None = None,
) -> Pipeline:
    """Compile an ONNX model into stages that run as dataflow actors on their devices,
    pipelined across frames (see `visc.stages`). ``stages``: a list of `visc.Stage` (each but
    the last ending at a named ONNX node or tensor, ``until``), or a number of stages for
    visc to cut itself over ``devices``, balancing per-op times it measures; or "placement":
    a stage wherever the CPU fallback placement (``fallback`` op types) changes device.
    ``frames_in_flight``: the frames admitted at once (FIFO capacities), so memory is
    bounded whatever the input rate. ``threads``: CPU threads per cpu stage visc creates.
    ``engine="ray"``: every stage replica runs as a Ray actor, on the node its ``Stage(ray=...)``
    options ask for, in the cluster at ``ray_address`` (None: the one this host runs, else a
    local one); ``pip install "visc[ray]"``."""
    from visc.stages import build_pipeline

    return build_pipeline(model, stages, input_shapes=input_shapes, devices=devices,
                          frames_in_flight=frames_in_flight, records=records, arch=arch, threads=threads,
                          fallback=fallback, engine=engine, ray_address=ray_address)


def load(path: str, device: str | None = None) -> CompiledModel | Pipeline:
    """Load a model (or a pipeline) saved with ``save``; needs the runtime only."""
    from visc.model import load as _load

    return _load(path, device=device)


__all__ = ["compile", "pipeline", "Stage", "load", "ViscError", "__version__"]
