"""The CPU target: host functions of `gpu.module @cpu_kernels` -> LLVM IR -> machine code
for this host (llvmlite's MCJIT at -O3 with the host CPU's features, so LLVM vectorizes),
and an executor of runtime plans that runs each launch on all cores.

    emit_cpu(module)            # stage-5 (cpu) module -> LLVM IR text (also `visc-opt -t cpu`)
    CPUExecutor(plan, ir, weights).run(inputs)

The artifact stores the LLVM IR text, target-neutral within x86-64/aarch64 hosts; it is
compiled for the loading machine's CPU at load. Each launch covers a [begin, end) range of
its loop's outer iteration space (`lower-loops-to-cpu`); the executor splits the range into
chunks, runs the first itself through ctypes (which releases the GIL) and hands the others
to spinning native workers (`visc.backends.cpu_workers`), so the chunks run in parallel.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects import gpu, llvm
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.utils.target import Target

from visc.backends.cpu_workers import PACKED, Workers, packed_wrappers, runtime_ir
from visc.errors import CompileError, InputShapeError, KernelBuildError
from visc.passes.cpu import CPU_KERNEL_MODULE, CPU_LLVM_PIPELINE
from visc.runtime.plan import Plan

ALIGN = 64  # bytes: a cache line, and enough for any vector load

_llvm_lock = threading.Lock()
_llvm_ready = False


def _binding() -> Any:
    """llvmlite's binding with the native target initialized (once per process)."""
    global _llvm_ready
    import llvmlite.binding as binding

    with _llvm_lock:
        if not _llvm_ready:
            binding.initialize_native_target()
            binding.initialize_native_asmprinter()
            _llvm_ready = True
    return binding


def host_target_machine(opt_level: int = 3) -> Any:
    """A target machine for this CPU with all its features (AVX2, AVX-512, NEON...)."""
    binding = _binding()
    target = binding.Target.from_default_triple()
    return target.create_target_machine(cpu=binding.get_host_cpu_name(),
                                        features=binding.get_host_cpu_features().flatten(), opt=opt_level,
                                        jit=True)


def host_vector_bits() -> int:
    """The widest float vector this CPU's registers hold: 512 with AVX-512 (32 registers),
    256 with AVX/AVX2, else 128 (SSE, NEON)."""
    features = _binding().get_host_cpu_features()
    if features.get("avx512f"):
        return 512
    return 256 if features.get("avx") else 128


def lower_to_llvm(module: ModuleOp) -> ModuleOp:
    """A copy of ``module`` with only `@cpu_kernels` among its kernel modules, lowered to the
    llvm dialect (`CPU_LLVM_PIPELINE`)."""
    from visc.compiler import run_passes

    copy = module.clone()
    for op in list(copy.ops):
        if isinstance(op, gpu.ModuleOp) and op.sym_name.data != CPU_KERNEL_MODULE:
            op.detach()
            op.erase()
    run_passes(copy, CPU_LLVM_PIPELINE, None)
    return copy


def cpu_functions(module: ModuleOp) -> list[Operation]:
    """The llvm-dialect ops of `@cpu_kernels` in a lowered module."""
    for op in module.ops:
        if isinstance(op, gpu.ModuleOp) and op.sym_name.data == CPU_KERNEL_MODULE:
            return [o for o in op.body.block.ops if isinstance(o, llvm.FuncOp | llvm.GlobalOp)]
    return []


def emit_cpu(module: ModuleOp) -> str:
    """LLVM IR text of the host functions of ``module`` (stage 5 from `lower-loops-to-cpu`)."""
    from visc.passes.llvm.translate import translate

    binding = _binding()
    ops = cpu_functions(lower_to_llvm(module))
    triple = binding.get_default_triple()
    ir_module = translate(ops, triple, str(host_target_machine().target_data))
    return str(ir_module)


class CompiledFunctions:
    """LLVM IR compiled for this host at -O3 and kept alive with its execution engine."""

    def __init__(self, llvm_ir: str, opt_level: int = 3):
        binding = _binding()
        try:
            parsed = binding.parse_assembly(llvm_ir)
            parsed.verify()
        except RuntimeError as e:
            raise KernelBuildError(f"LLVM rejected the CPU kernels' IR: {e}") from e
        machine = host_target_machine(opt_level)
        triple = binding.get_process_triple()
        signatures = [(fn.name, [str(a.type) for a in fn.arguments]) for fn in parsed.functions
                      if not fn.is_declaration]
        kernels = [(name, types) for name, types in signatures if _is_kernel(types)]
        extra = binding.parse_assembly(packed_wrappers(kernels) + runtime_ir(triple.startswith(("x86_64", "i686"))))
        for mod in (parsed, extra):
            mod.triple = triple
            mod.data_layout = str(machine.target_data)
        parsed.link_in(extra)
        if opt_level > 0:
            tuning = binding.create_pipeline_tuning_options(speed_level=opt_level)
            tuning.loop_vectorization = True
            tuning.slp_vectorization = True
            builder = binding.create_pass_builder(machine, tuning)
            builder.getModulePassManager().run(parsed, builder)
        self.engine = binding.create_mcjit_compiler(parsed, machine)
        self.engine.finalize_object()
        self.optimized_ir = str(parsed)
        self._functions: dict[str, Any] = {}
        self._num_pointers = {name: len(types) - 2 for name, types in kernels}

    def address(self, name: str) -> int:
        """The machine code address of function `name` (e.g. a kernel's ``.packed`` entry)."""
        return int(self.engine.get_function_address(name))

    def function(self, name: str) -> Any:
        if name not in self._functions:
            if name not in self._num_pointers:
                raise KernelBuildError(f"the CPU kernels have no function '{name}'")
            address = self.engine.get_function_address(name)
            proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * self._num_pointers[name]),
                                     ctypes.c_int32, ctypes.c_int32)
            self._functions[name] = proto(address)
        return self._functions[name]


def _is_kernel(types: list[str]) -> bool:
    """A host kernel's signature: pointers, then the i32 range [lo, hi)."""
    return len(types) >= 2 and types[-2:] == ["i32", "i32"] and all(t.startswith("ptr") for t in types[:-2])


def _aligned(nbytes: int) -> np.ndarray:
    raw = np.zeros(nbytes + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + nbytes]


@dataclass
class _Call:
    fn: Any
    args: tuple[int, ...]
    size: int
    node: str
    kernel: str
    packed: int  # address of the kernel's `.packed` entry
    argv: np.ndarray  # its pointer arguments, for the workers


class CPUExecutor:
    """Runs a plan whose launches are host functions: host memory for every buffer (one
    arena, weights as given), chunks of each launch's range on a thread pool."""

    def __init__(self, plan: Plan, llvm_ir: str, weights: Mapping[str, np.ndarray], device: str | None = None,
                 threads: int | None = None, kernels: set[str] | None = None):
        self.plan = plan
        self.threads = threads or int(os.environ.get("VISC_CPU_THREADS", 0)) or os.cpu_count() or 1
        self.compiled = CompiledFunctions(llvm_ir)
        self.pool = Workers(self.compiled.engine, self.threads - 1) if self.threads > 1 else None
        self.device_name = f"CPU ({self.threads} threads, llvmlite)"
        self.arena = _aligned(max(plan.arena_size, 1))
        self.arrays: list[np.ndarray] = []
        for spec in plan.buffers:
            if spec.kind == "arena":
                assert spec.offset is not None
                arr = self.arena[spec.offset:spec.offset + spec.nbytes].view(spec.dtype).reshape(spec.shape)
            elif spec.kind == "weight":
                assert spec.name is not None
                arr = np.ascontiguousarray(weights[spec.name], dtype=spec.dtype).reshape(spec.shape)
            elif spec.kind == "view":
                assert spec.base is not None
                base = self.arrays[spec.base]
                arr = base.reshape(-1).view(np.uint8)[:spec.nbytes].view(spec.dtype).reshape(spec.shape)
            else:  # input, output, count: buffers of their own, reused run after run
                arr = _aligned(max(spec.nbytes, 1))[:spec.nbytes].view(spec.dtype).reshape(spec.shape)
            self.arrays.append(arr)
        self.input_buffers = {spec.index: i for i, spec in enumerate(plan.buffers) if spec.kind == "input"}
        self.output_buffers = {spec.index: i for i, spec in enumerate(plan.buffers) if spec.kind == "output"}
        self.calls = [self._bind(i) for i, launch in enumerate(plan.launches)
                      if kernels is None or launch.kernel in kernels]
        self._lock = threading.Lock()

    def _bind(self, i: int) -> _Call:
        launch = self.plan.launches[i]
        if launch.block != (1, 1, 1) or launch.grid[1:] != (1, 1):
            raise KernelBuildError(f"launch of '{launch.kernel}' is not a CPU launch (grid {launch.grid}, block "
                                   f"{launch.block}); lower the loops with lower-loops-to-cpu")
        fn = self.compiled.function(launch.kernel)
        args = tuple(self.arrays[a].ctypes.data for a in launch.args)
        return _Call(fn, args, launch.grid[0], launch.node, launch.kernel,
                     self.compiled.address(launch.kernel + PACKED), np.array(args or (0,), dtype=np.uint64))

    def call(self, call: _Call) -> None:
        """One launch over its whole range, one chunk per thread, the calling thread taking
        the first (small layers run for tens of microseconds, so finer chunks cost more than
        they balance); the other chunks go to the spinning workers (`cpu_workers`)."""
        n = call.size
        if self.pool is None or n < 2:
            call.fn(*call.args, 0, n)
            return
        self.pool.launch(call.packed, call.argv.ctypes.data, n)

    def launch_index(self) -> dict[int, _Call]:
        """Plan launch index -> bound call (for the mixed executor)."""
        by_kernel = iter(self.calls)
        return {i: next(by_kernel) for i, launch in enumerate(self.plan.launches)
                if launch.kernel in {c.kernel for c in self.calls}}

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.plan.inputs):
            raise InputShapeError(f"the plan takes {len(self.plan.inputs)} inputs, got {len(inputs)}")
        with self._lock:
            for j, arr in enumerate(inputs):
                np.copyto(self.arrays[self.input_buffers[j]], arr.reshape(self.arrays[self.input_buffers[j]].shape))
            for call in self.calls:
                self.call(call)
            outputs = [self.arrays[self.output_buffers[j]].copy() for j in range(len(self.plan.outputs))]
            return self.plan.trimmed(outputs, lambda b: int(self.arrays[b].reshape(-1)[0]))

    def profile_run(self, inputs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        import time

        self.run(inputs)
        times = []
        with self._lock:
            for call in self.calls:
                start = time.perf_counter()
                self.call(call)
                times.append((call.node or call.kernel, time.perf_counter() - start))
        return times


@dataclass(frozen=True)
class CpuTarget(Target):
    """`visc-opt -t cpu`: print the LLVM IR of the host functions."""

    name = "cpu"

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        try:
            output.write(emit_cpu(module))
        except CompileError as e:
            raise CompileError(f"cpu target: {e}") from e


__all__ = ["emit_cpu", "host_vector_bits", "CPUExecutor", "CompiledFunctions", "CpuTarget", "lower_to_llvm", "host_target_machine"]
