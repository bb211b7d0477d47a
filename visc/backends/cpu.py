"""The CPU target: host functions of `gpu.module @cpu_kernels` -> LLVM IR text.

    emit_cpu(module)            # stage-5 (cpu) module -> LLVM IR text (also `visc-opt -t cpu`)

The text is printed straight from the stage-5 ops (`visc/backends/llvm_emitter.py`), with no
trip through the llvm dialect: it is what the `visc/passes/llvm` conversions would give.

The compiler turns the text into object code for this CPU (`visc.runtime.cpu_native`); the
artifact stores both, so `visc.runtime.cpu.CPUExecutor` links the objects at load and falls
back to the text on a CPU lacking one of their features. The llvmlite set-up (`llvm_binding`,
`host_target_machine`) lives in the runtime, which needs it too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import IO

from xdsl.context import Context
from xdsl.dialects import gpu
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.target import Target

from visc.backends.llvm_emitter import CPUEmitter
from visc.errors import CompileError
from visc.passes.cpu import CPU_KERNEL_MODULE
from visc.runtime.cpu import host_target_machine, llvm_binding


@functools.cache
def host_vector_bits() -> int:
    """The widest float vector this CPU's registers hold: 512 with AVX-512 (32 registers),
    256 with AVX/AVX2, else 128 (SSE, NEON)."""
    features = llvm_binding().get_host_cpu_features()
    if features.get("avx512f"):
        return 512
    return 256 if features.get("avx") else 128


def cpu_kernel_functions(module: ModuleOp) -> list[gpu.FuncOp]:
    """The host functions of ``module``: the `gpu.func`s of `gpu.module @cpu_kernels`."""
    return [fn for op in module.ops if isinstance(op, gpu.ModuleOp) and op.sym_name.data == CPU_KERNEL_MODULE
            for fn in op.body.block.ops if isinstance(fn, gpu.FuncOp)]


def emit_cpu(module: ModuleOp) -> str:
    """LLVM IR text of the host functions of ``module`` (stage 5 from `lower-loops-to-cpu`),
    for this host's triple and data layout (`visc.backends.llvm_emitter.CPUEmitter`)."""
    binding = llvm_binding()
    emitter = CPUEmitter(binding.get_default_triple(), str(host_target_machine().target_data))
    return emitter.emit(module, cpu_kernel_functions(module))


@dataclass(frozen=True)
class CpuTarget(Target):
    """`visc-opt -t cpu`: print the LLVM IR of the host functions."""

    name = "cpu"

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        try:
            output.write(emit_cpu(module))
        except CompileError as e:
            raise CompileError(f"cpu target: {e}") from e


__all__ = ["emit_cpu", "host_vector_bits", "CpuTarget", "cpu_kernel_functions"]
