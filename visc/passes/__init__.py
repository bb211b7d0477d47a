"""Registry of visc's passes, by the name `visc-opt -p` and `xdsl-opt -p` know them.

Modules load lazily so a tool that runs one pass does not import every backend.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from xdsl.passes import ModulePass

# pass name -> (module, class)
PASS_MODULES: dict[str, tuple[str, str]] = {
    "vision-canonicalize": ("visc.passes.graph.canonicalize", "VisionCanonicalizePass"),
    "vision-const-eval": ("visc.passes.graph.const_eval", "VisionConstEvalPass"),
    "vision-fold-batch-norm": ("visc.passes.graph.fold_batch_norm", "FoldBatchNormPass"),
    "vision-fuse-elementwise": ("visc.passes.graph.fuse_elementwise", "FuseElementwisePass"),
    "vision-bufferize": ("visc.passes.graph.bufferize", "VisionBufferizePass"),
    "vision-default-schedule": ("visc.passes.lowering.default_schedule", "DefaultSchedulePass"),
    "lower-vision-to-loops": ("visc.passes.lowering.vision_to_loops", "LowerVisionToLoopsPass"),
    "map-loops-to-gpu": ("visc.passes.gpu.map_loops_to_gpu", "MapLoopsToGpuPass"),
}


def _loader(module: str, cls: str) -> Callable[[], type[ModulePass]]:
    def load() -> type[ModulePass]:
        return getattr(importlib.import_module(module), cls)

    return load


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Pass name -> factory of its class, for the ones whose module is present."""
    found: dict[str, Callable[[], type[ModulePass]]] = {}
    for name, (module, cls) in PASS_MODULES.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = _loader(module, cls)
    return found
