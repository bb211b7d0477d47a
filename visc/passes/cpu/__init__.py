"""Stage 4 loops -> host functions for the CPU backend (`visc/backends/cpu.py`).

`lower-loops-to-cpu` outlines every top-level `scf.parallel` (or, with ``placed-only``,
those tagged ``placement = "cpu"``) into a `gpu.func` of `gpu.module @cpu_kernels` that runs
a [begin, end) range of the loop's outer iteration space, and launches it from the host
function like a GPU kernel, so the runtime plan reads both alike. `visc/backends/llvm_emitter.py`
then prints those functions as LLVM IR, with the semantics of the CUDA backend's llvm-dialect
conversions (`visc/passes/llvm`, libm for math).
"""

from __future__ import annotations

CPU_KERNEL_MODULE = "cpu_kernels"

__all__ = ["CPU_KERNEL_MODULE"]
