"""Lowering of stage-5 kernels (docs/ir.md) to the xDSL `llvm` dialect.

One pass per source dialect, each converting only what it owns and bridging to the rest
with `builtin.unrealized_conversion_cast` (see `conversion.py`), in this order:

    convert-scf-to-cf                        (xDSL's: scf.for / scf.if -> blocks + cf branches)
    convert-math-to-llvm{library=libdevice}  math (and arith.remf) -> intrinsics / __nv_* calls
    convert-arith-to-llvm                    arith -> llvm ops and intrinsics (index -> i32)
    convert-vector-to-llvm                   register-level vector ops
    convert-memref-to-llvm                   loads/stores -> getelementptr; allocas
    convert-cf-to-llvm                       branches, block-argument types
    convert-gpu-to-nvvm                      gpu.func -> llvm.func + NVVM intrinsics
    reconcile-unrealized-casts               (xDSL's: drops the bridging casts)

Only ops inside `gpu.module` are touched: the host function is the runtime plan. Everything
but `convert-gpu-to-nvvm` (and the libdevice choice) is target-neutral. The CPU backend does
not run these passes (rewriting ResNet-50's functions took ~27 s): `visc/backends/llvm_emitter.py`
prints the same LLVM IR straight from stage 5, so a change of semantics here belongs there too.
"""

from __future__ import annotations

NVVM_PIPELINE: tuple[str, ...] = (
    "convert-scf-to-cf",
    "convert-math-to-llvm{library=libdevice}",
    "convert-arith-to-llvm",
    "convert-vector-to-llvm",
    "convert-memref-to-llvm",
    "convert-cf-to-llvm",
    "convert-gpu-to-nvvm",
    "reconcile-unrealized-casts",
)

__all__ = ["NVVM_PIPELINE"]
