"""Stage 4 loops -> host functions for the CPU backend (`visc/backends/cpu.py`).

`lower-loops-to-cpu` outlines every top-level `scf.parallel` (or, with ``placed-only``,
those tagged ``placement = "cpu"``) into a `gpu.func` of `gpu.module @cpu_kernels` that runs
a [begin, end) range of the loop's outer iteration space, and launches it from the host
function like a GPU kernel, so the runtime plan reads both alike. `CPU_LLVM_PIPELINE` then
lowers those functions to the llvm dialect with the CUDA backend's shared conversions.
"""

from __future__ import annotations

CPU_KERNEL_MODULE = "cpu_kernels"

CPU_LLVM_PIPELINE: tuple[str, ...] = (
    "convert-scf-to-cf",
    "convert-math-to-llvm{library=libm}",
    "convert-arith-to-llvm",
    "convert-vector-to-llvm",
    "convert-memref-to-llvm",
    "convert-cf-to-llvm",
    "convert-gpu-to-nvvm",  # a gpu.func that is no kernel becomes a plain llvm.func
    "reconcile-unrealized-casts",
)

__all__ = ["CPU_KERNEL_MODULE", "CPU_LLVM_PIPELINE"]
