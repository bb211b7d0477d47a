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
    "vision-partition": ("visc.passes.graph.partition", "VisionPartitionPass"),
    "vision-concat-in-place": ("visc.passes.graph.concat_in_place", "ConcatInPlacePass"),
    "vision-default-schedule": ("visc.passes.lowering.default_schedule", "DefaultSchedulePass"),
    "vision-pack-weights": ("visc.passes.lowering.pack_weights", "VisionPackWeightsPass"),
    "lower-vision-to-loops": ("visc.passes.lowering.vision_to_loops", "LowerVisionToLoopsPass"),
    "map-loops-to-gpu": ("visc.passes.gpu.map_loops_to_gpu", "MapLoopsToGpuPass"),
    # stage 5 -> llvm dialect (CUDA PTX backend; see visc/passes/llvm/__init__.py)
    "convert-scf-to-cf": ("xdsl.transforms.convert_scf_to_cf", "ConvertScfToCf"),
    "convert-math-to-llvm": ("visc.passes.llvm.math_to_llvm", "ConvertMathToLLVMPass"),
    "convert-arith-to-llvm": ("visc.passes.llvm.arith_to_llvm", "ConvertArithToLLVMPass"),
    "convert-vector-to-llvm": ("visc.passes.llvm.vector_to_llvm", "ConvertVectorToLLVMPass"),
    "convert-memref-to-llvm": ("visc.passes.llvm.memref_to_llvm", "ConvertMemRefToLLVMPass"),
    "convert-cf-to-llvm": ("visc.passes.llvm.cf_to_llvm", "ConvertCfToLLVMPass"),
    "convert-gpu-to-nvvm": ("visc.passes.llvm.gpu_to_nvvm", "ConvertGpuToNVVMPass"),
    # stage 4 -> host functions (CPU backend) and placement (see visc/passes/cpu, placement)
    "lower-loops-to-cpu": ("visc.passes.cpu.lower_loops_to_cpu", "LowerLoopsToCpuPass"),
    "vision-placement": ("visc.passes.placement.placement", "VisionPlacementPass"),
    "vision-insert-copies": ("visc.passes.placement.insert_copies", "VisionInsertCopiesPass"),
    "reconcile-unrealized-casts": ("xdsl.transforms.reconcile_unrealized_casts", "ReconcileUnrealizedCastsPass"),
}


def _loader(module: str, cls: str) -> Callable[[], type[ModulePass]]:
    def load() -> type[ModulePass]:
        return getattr(importlib.import_module(module), cls)

    return load


def all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """visc's passes plus xDSL's own, for pipelines that mix them (the compile driver)."""
    from xdsl.transforms import get_all_passes

    return {**get_all_passes(), **available_passes()}


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Pass name -> factory of its class, for the ones whose module is present."""
    found: dict[str, Callable[[], type[ModulePass]]] = {}
    for name, (module, cls) in PASS_MODULES.items():
        # Upstream passes listed above are xDSL's to register; the plugin must not clash.
        if module.startswith("visc.") and importlib.util.find_spec(module) is not None:
            found[name] = _loader(module, cls)
    return found
