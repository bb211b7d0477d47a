"""The CPU executor: runs a plan whose launches are host functions, each launch on all cores.

    CPUExecutor(plan, llvm_ir, weights, native=blob).run(inputs)

The artifact stores the LLVM IR text (`visc.backends.cpu.emit_cpu`) and the object code
compiled from it for the CPU that built the model (`visc.runtime.cpu_native`): loading links
that code by MCJIT, or compiles the IR again for a CPU lacking one of its features. Each launch
covers a [begin, end) range of its loop's outer iteration space (`lower-loops-to-cpu`); the
range is cut into grains that the calling thread (through ctypes, which releases the GIL) and
spinning native workers (`visc.runtime.cpu_workers`) claim, so they run in parallel.

Frame slots each own an arena and input/output arrays; the weights are shared. A frame is
one native call (`visc_run`) over a table of the slot's launches, so the GIL is let go once
per frame. The worker pool serves one launch at a time: a launch that finds it busy (another
slot's) runs in the calling thread alone, so slots never wait for each other (with
``threads=1`` there is no pool and slots run fully concurrently in their callers' threads).
Whether a frame uses the pool at all is chosen from the frames' times (`cpu_pool_choice`):
with another process on the workers' cores, the calling thread alone is faster.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from visc.errors import DeviceError, KernelBuildError
from visc.runtime.cpu_native import NativeCode, build_native, host_signature, link, missing_features
from visc.runtime.cpu_pool_choice import PoolChoice
from visc.runtime.cpu_workers import PACKED, ROW, Workers, futex_syscall, runtime_ir
from visc.runtime.device import buffer_of, check_slot, check_weights, memory_report, node_error
from visc.runtime.plan import Plan

ALIGN = 64  # bytes: a cache line, and enough for any vector load

_llvm_lock = threading.Lock()
_llvm_ready = False


def llvm_binding() -> Any:
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
    binding = llvm_binding()
    target = binding.Target.from_default_triple()
    return target.create_target_machine(cpu=binding.get_host_cpu_name(),
                                        features=binding.get_host_cpu_features().flatten(), opt=opt_level,
                                        jit=True)


class CompiledFunctions:
    """The CPU kernels as native code for this host, linked into an MCJIT engine with the
    worker runtime (`cpu_workers.runtime_ir`) and kept alive with it.

    ``native``: object code built ahead of time (`visc.runtime.cpu_native`, the artifact's
    ``native/cpu.bin``); it is linked as is when this host has every feature it was built
    for, and otherwise rebuilt from ``llvm_ir`` (with a warning saying what the host lacks).
    Without it the objects come from the compile cache or are compiled now."""

    def __init__(self, llvm_ir: str, native: NativeCode | bytes | None = None, opt_level: int = 3):
        if isinstance(native, bytes | bytearray | memoryview):
            native = NativeCode.from_bytes(bytes(native))
        host = host_signature()
        if native is not None:
            missing = missing_features(native.signature, host)
            if missing:
                warnings.warn(f"the model's CPU code was built for {native.signature.cpu} "
                              f"({native.signature.triple}); this CPU ({host.cpu}) lacks {', '.join(missing[:8])}"
                              f"{' ...' if len(missing) > 8 else ''}: compiling it again from its LLVM IR for this "
                              "CPU (save the model again to keep that)", RuntimeWarning, stacklevel=3)
                native = None
        if native is None:
            native = build_native(llvm_ir, opt_level, signature=host)
        self.native = native
        binding = llvm_binding()
        triple = binding.get_process_triple()
        self.engine, runtime = link(native, runtime_ir(triple.startswith(("x86_64", "i686")), futex_syscall()))
        self.runtime_ir = str(runtime)

    def address(self, name: str) -> int:
        """The machine code address of function `name` (e.g. a kernel's ``.packed`` entry)."""
        address = int(self.engine.get_function_address(name))
        if not address:
            raise KernelBuildError(f"the CPU kernels have no function '{name}'")
        return address


def default_threads() -> int:
    """The CPU executor's threads unless told: VISC_CPU_THREADS, else every core."""
    return int(os.environ.get("VISC_CPU_THREADS", 0)) or os.cpu_count() or 1


def _aligned(nbytes: int) -> np.ndarray:
    raw = np.zeros(nbytes + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + nbytes]


@dataclass
class _Call:
    size: int
    node: str
    kernel: str
    packed: int  # address of the kernel's `.packed` entry
    argv: np.ndarray  # its pointer arguments, for the workers


@dataclass(eq=False)  # slots are told apart by identity
class _Slot:
    """One frame slot: its arena, one host array per plan buffer (weights shared) and the
    launches bound to them."""

    arena: np.ndarray
    arrays: list[np.ndarray] = field(default_factory=list)
    calls: list[_Call] = field(default_factory=list)
    table: np.ndarray = field(default_factory=lambda: np.zeros((0, ROW), dtype=np.int64))
    lock: threading.Lock = field(default_factory=threading.Lock)
    choices: dict[tuple[int, int], PoolChoice] = field(default_factory=dict)  # per run of launches


class CPUExecutor:
    """Runs a plan whose launches are host functions: host memory for every buffer (an arena
    per slot, weights shared), chunks of each launch's range on a worker pool (see the module
    docstring); implements `visc.runtime.device.Device`."""

    def __init__(self, plan: Plan, llvm_ir: str, weights: Mapping[str, np.ndarray], device: str | None = None,
                 threads: int | None = None, slots: int = 1, native: NativeCode | bytes | None = None):
        self.plan = plan
        self.slots = max(1, int(slots))
        self.threads = threads or default_threads()
        self.compiled = CompiledFunctions(llvm_ir, native)
        self.pool = Workers(self.compiled.engine, self.threads - 1) if self.threads > 1 else None
        self._run_native = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                                            ctypes.c_int64)(self.compiled.address("visc_run"))
        self._no_lock = np.zeros(1, dtype=np.int64)
        self.device_name = f"CPU ({self.threads} threads, llvmlite)"
        check_weights(plan, weights)
        self._weights = {spec.name: np.ascontiguousarray(weights[spec.name], dtype=spec.dtype).reshape(spec.shape)
                         for spec in plan.buffers if spec.kind == "weight" and spec.name is not None}
        self._slots = [self._place() for _ in range(self.slots)]
        io = plan.io_bytes()
        self._memory = memory_report(sum(w.nbytes for w in self._weights.values()), plan.arena_size, io, self.slots)
        self._closed = False

    def _place(self) -> _Slot:
        plan = self.plan
        slot = _Slot(_aligned(max(plan.arena_size, 1)))
        for spec in plan.buffers:
            if spec.kind == "arena":
                assert spec.offset is not None
                arr = slot.arena[spec.offset:spec.offset + spec.nbytes].view(spec.dtype).reshape(spec.shape)
            elif spec.kind == "weight":
                assert spec.name is not None
                arr = self._weights[spec.name]
            elif spec.kind == "view":
                assert spec.base is not None
                base = slot.arrays[spec.base]
                arr = base.reshape(-1).view(np.uint8)[:spec.nbytes].view(spec.dtype).reshape(spec.shape)
            else:  # input, output, count, status: buffers of their own, reused run after run
                arr = _aligned(max(spec.nbytes, 1))[:spec.nbytes].view(spec.dtype).reshape(spec.shape)
                if spec.kind == "status":
                    arr.fill(0)
            slot.arrays.append(arr)
        slot.calls = [self._bind(k, slot.arrays) for k in range(len(plan.launches))]
        slot.table = np.zeros((len(slot.calls), ROW), dtype=np.int64)
        for row, c in zip(slot.table, slot.calls, strict=True):
            row[:] = (c.packed, c.argv.ctypes.data, c.size)
        return slot

    def _bind(self, k: int, arrays: list[np.ndarray]) -> _Call:
        launch = self.plan.launches[k]
        if launch.block != (1, 1, 1) or launch.grid[1:] != (1, 1):
            raise node_error(KernelBuildError, self.plan, k, f"not a CPU launch (grid {launch.grid}, block "
                             f"{launch.block}); lower the loops with lower-loops-to-cpu")
        args = tuple(arrays[a].ctypes.data for a in launch.args)
        return _Call(launch.grid[0], launch.node, launch.kernel,
                     self.compiled.address(launch.kernel + PACKED), np.array(args or (0,), dtype=np.uint64))

    def _calls(self, s: _Slot, first: int, count: int) -> None:
        """Launches ``first .. first + count - 1`` of slot ``s`` in one native call: each over
        its whole range, one chunk per thread, the calling thread taking the first (small
        layers run for tens of microseconds, so finer chunks cost more than they balance);
        the other chunks go to the spinning workers (`cpu_workers`), unless another slot
        holds them or this run of launches was faster without them lately (`PoolChoice`):
        then this thread runs the whole range."""
        if count <= 0:
            return
        pool = self.pool
        table = s.table[first:first + count]
        if pool is None:
            self._run_native(None, 0, self._no_lock.ctypes.data, table.ctypes.data, count)
            return
        choice = s.choices.get((first, count))
        if choice is None:
            choice = s.choices[first, count] = PoolChoice()
        start = time.perf_counter()
        if choice.use_pool():
            self._run_native(pool.ctxs_ptr, pool.count, pool.lock_ptr, table.ctypes.data, count)
        else:
            self._run_native(None, 0, self._no_lock.ctypes.data, table.ctypes.data, count)
        choice.record(time.perf_counter() - start)

    # -- the device interface -----------------------------------------------------------

    def _slot(self, slot: int) -> _Slot:
        if self._closed:
            raise DeviceError("the CPU executor is closed")
        return self._slots[check_slot(slot, self.slots)]

    def memory(self) -> dict[str, int]:
        return dict(self._memory)

    def upload(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        arr = self._slot(slot).arrays[buffer]
        np.copyto(arr, np.asarray(host).reshape(arr.shape))

    def download(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        np.copyto(host, self._slot(slot).arrays[buffer].reshape(host.shape))

    def host_array(self, buffer: int, slot: int = 0) -> np.ndarray:
        """Plan buffer ``buffer`` of ``slot`` itself: this device's memory is the host's, so a
        GPU executor copies straight into or out of it (one copy per transfer, no staging)."""
        return self._slot(slot).arrays[buffer]

    def launch(self, k: int, slot: int = 0) -> None:
        """Run launch ``k`` now (host functions are synchronous)."""
        s = self._slot(slot)
        if not 0 <= k < len(s.calls):
            raise IndexError(f"launch {k} does not exist (the plan has {len(s.calls)})")
        self._calls(s, k, 1)

    def finish(self, slot: int = 0) -> None:
        self._slot(slot)

    def run(self, inputs: Sequence[np.ndarray], slot: int = 0) -> list[np.ndarray]:
        arrays = self.plan.check_inputs(inputs)
        s = self._slot(slot)
        plan = self.plan
        with s.lock:
            for j, arr in enumerate(arrays):
                self.upload(buffer_of(plan, "input", j), arr, slot)
            self._calls(s, 0, len(s.calls))
            outputs = [s.arrays[buffer_of(plan, "output", j)].copy() for j in range(len(plan.outputs))]
            plan.check_status(lambda b: s.arrays[b].reshape(-1), lambda b: s.arrays[b].fill(0))
            return plan.trimmed(outputs, lambda b: int(s.arrays[b].reshape(-1)[0]))

    def profile_run(self, inputs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Wall time of every launch of slot 0, in plan order, after one whole run."""
        self.run(inputs)
        times = []
        s = self._slot(0)
        with s.lock:
            for k, call in enumerate(s.calls):
                start = time.perf_counter()
                self._calls(s, k, 1)
                times.append((call.node or call.kernel, time.perf_counter() - start))
        return times

    def close(self) -> None:
        """Stop the worker threads now (otherwise when the executor is collected)."""
        if self._closed:
            return
        self._closed = True
        if self.pool is not None:
            self.pool.close()


__all__ = ["CPUExecutor", "CompiledFunctions", "llvm_binding", "host_target_machine", "default_threads", "ALIGN"]
