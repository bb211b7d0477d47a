"""The mixed-plan executor: a plan whose launches run partly on a GPU executor and partly on
the CPU backend (placement, `vision-placement`), with copies only where the device changes.

Every buffer exists on both sides (the GPU executor's device buffers, the CPU executor's host
arrays). The executor tracks, per root buffer, which side holds its latest bytes: a launch
whose argument is stale on its device first copies it over (blocking, so the other side may
reuse the bytes afterwards); the buffers a launch writes are then valid on its side only.
Inputs start on the host, weights on both. GPU launches stay asynchronous between copies.

A GPU executor plugs in through `DeviceSide` (upload, download, launch, finish);
`OpenCLSide` adapts `OpenCLExecutor`. A CUDA side needs the same four operations.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from visc.backends.cpu import CPUExecutor
from visc.errors import InputShapeError
from visc.runtime.plan import Plan


class DeviceSide(Protocol):
    """What the mixed executor needs from a GPU executor built for the plan's GPU launches."""

    def upload(self, buffer: int, host: np.ndarray) -> None: ...
    def download(self, buffer: int, host: np.ndarray) -> None: ...
    def launch(self, k: int) -> None: ...  # k: index among the GPU launches
    def finish(self) -> None: ...


class OpenCLSide:
    """`DeviceSide` over an `OpenCLExecutor` (its buffers, queue and bound launches)."""

    def __init__(self, executor: Any):
        import pyopencl as cl

        self._cl = cl
        self.ex = executor

    def upload(self, buffer: int, host: np.ndarray) -> None:
        if host.nbytes:
            self._cl.enqueue_copy(self.ex._queue, self.ex._buffers[buffer], host.reshape(-1).view(np.uint8),
                                  is_blocking=True)

    def download(self, buffer: int, host: np.ndarray) -> None:
        if host.nbytes:
            self._cl.enqueue_copy(self.ex._queue, host.reshape(-1).view(np.uint8), self.ex._buffers[buffer],
                                  is_blocking=True)

    def launch(self, k: int) -> None:
        kernel, gsize, block, _ = self.ex._launches[k]
        self._cl.enqueue_nd_range_kernel(self.ex._queue, kernel, gsize, block)

    def finish(self) -> None:
        self.ex._queue.finish()


class CUDASide:
    """`DeviceSide` over a `CUDAExecutor` (its device pointers, stream and bound launches).
    Copies are synchronous and kernels run on the executor's stream, which orders them."""

    def __init__(self, executor: Any):
        self.ex = executor

    def upload(self, buffer: int, host: np.ndarray) -> None:
        if host.nbytes:
            with self.ex.active():
                self.ex._stream.synchronize()
                self.ex._drv.memcpy_htod(self.ex._pointers[buffer], np.ascontiguousarray(host))

    def download(self, buffer: int, host: np.ndarray) -> None:
        if host.nbytes:
            with self.ex.active():
                self.ex._stream.synchronize()
                flat = np.empty(host.shape, host.dtype)
                self.ex._drv.memcpy_dtoh(flat, self.ex._pointers[buffer])
                np.copyto(host, flat)

    def launch(self, k: int) -> None:
        launch = self.ex._launches[k]
        with self.ex.active():
            launch.function.prepared_async_call(launch.grid, launch.block, self.ex._stream, *launch.args)

    def finish(self) -> None:
        with self.ex.active():
            self.ex._stream.synchronize()


def gpu_side(target: str, plan: Plan, source: str, weights: Mapping[str, np.ndarray],
             device: str | None) -> DeviceSide:
    if target == "opencl":
        from visc.backends.opencl import OpenCLExecutor

        return OpenCLSide(OpenCLExecutor(plan, source, weights, device=device))
    if target == "cuda":
        from visc.backends.cuda import CUDAExecutor

        return CUDASide(CUDAExecutor(plan, source, weights, device=device, use_graph=False))
    raise InputShapeError(f"mixed CPU plans are not supported with target '{target}'")


_READS = ("memref.load", "vector.load")


def launch_writes(module: Any) -> list[list[int]]:
    """Per `gpu.launch_func` of the host function, in order: the positions of the arguments
    its kernel may write (any use but a load counts as a write)."""
    from xdsl.dialects import func, gpu

    written: dict[tuple[str, str], list[int]] = {}
    for op in module.walk():
        if isinstance(op, gpu.FuncOp):
            mod = op.parent_op()
            args = op.body.blocks.first.args if op.body.blocks.first is not None else ()
            key = (mod.sym_name.data if isinstance(mod, gpu.ModuleOp) else "", op.sym_name.data)
            written[key] = [i for i, a in enumerate(args) if any(u.operation.name not in _READS for u in a.uses)]
    result: list[list[int]] = []
    for fn in module.ops:
        if isinstance(fn, func.FuncOp) and fn.sym_name.data == "main":
            for op in fn.body.block.ops:
                if isinstance(op, gpu.LaunchFuncOp):
                    ref = op.kernel
                    key = (ref.root_reference.data, ref.nested_references.data[-1].data)
                    result.append(written.get(key, list(range(len(op.kernelOperands)))))
    return result


class MixedExecutor:
    """Runs ``plan`` whose launches of ``cpu_kernels`` are host functions (``cpu_ir``) and
    the others the GPU target's kernels (``source``)."""

    def __init__(self, plan: Plan, target: str, source: str, cpu_ir: str, weights: Mapping[str, np.ndarray],
                 cpu_kernels: set[str], device: str | None = None, writes: Sequence[Sequence[int]] | None = None):
        self.plan = plan
        # per launch, the argument positions it writes (all of them when unknown)
        self.writes = [list(w) for w in writes] if writes is not None and len(writes) == len(plan.launches) \
            else [list(range(len(la.args))) for la in plan.launches]
        self.on_cpu = [launch.kernel in cpu_kernels for launch in plan.launches]
        gpu_plan = dataclasses.replace(plan, launches=[la for la, c in zip(plan.launches, self.on_cpu, strict=True)
                                                       if not c])
        cpu_plan = dataclasses.replace(plan, launches=[la for la, c in zip(plan.launches, self.on_cpu, strict=True)
                                                       if c])
        self.gpu = gpu_side(target, gpu_plan, source, weights, device)
        self.cpu = CPUExecutor(cpu_plan, cpu_ir, weights)
        self.device_name = f"{target} + {self.cpu.device_name}"
        self.copies = 0  # copies made by the last run
        self._lock = threading.Lock()

    def _roots(self, args: Sequence[int]) -> list[int]:
        return [self.plan.root(a) for a in args]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._execute(inputs, None)

    def profile_run(self, inputs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Per launch, in plan order: the kernel and its wall time including the copies it
        waited for. Each launch is synchronized, so the sum exceeds a normal run's latency."""
        timings: list[tuple[str, float]] = []
        self._execute(inputs, timings)
        return timings

    def _execute(self, inputs: Sequence[np.ndarray], timings: list[tuple[str, float]] | None) -> list[np.ndarray]:
        plan = self.plan
        if len(inputs) != len(plan.inputs):
            raise InputShapeError(f"the plan takes {len(plan.inputs)} inputs, got {len(inputs)}")
        host = self.cpu.arrays
        with self._lock:
            valid: dict[int, set[str]] = {}
            for i, spec in enumerate(plan.buffers):
                if spec.kind == "weight":
                    valid[i] = {"cpu", "gpu"}
                elif spec.kind == "input":
                    assert spec.index is not None
                    np.copyto(host[i], np.asarray(inputs[spec.index]).reshape(host[i].shape))
                    valid[i] = {"cpu"}
            copies = 0
            k_gpu = k_cpu = 0
            for launch, on_cpu, writes in zip(plan.launches, self.on_cpu, self.writes, strict=True):
                start = time.perf_counter()
                side = "cpu" if on_cpu else "gpu"
                roots = self._roots(launch.args)
                for r in dict.fromkeys(roots):
                    have = valid.get(r)
                    if have is None or side in have:
                        continue
                    if side == "gpu":
                        self.gpu.upload(r, host[r])
                    else:
                        self.gpu.download(r, host[r])
                    have.add(side)
                    copies += 1
                if on_cpu:
                    self.cpu.call(self.cpu.calls[k_cpu])
                    k_cpu += 1
                else:
                    self.gpu.launch(k_gpu)
                    k_gpu += 1
                if timings is not None:
                    self.gpu.finish()
                    timings.append((launch.kernel, time.perf_counter() - start))
                for j in writes:
                    if plan.buffers[roots[j]].kind != "weight":
                        valid[roots[j]] = {side}
            for i, spec in enumerate(plan.buffers):
                if spec.kind in ("output", "count") and "cpu" not in valid.get(i, {"cpu"}):
                    self.gpu.download(i, host[i])
            self.gpu.finish()
            self.copies = copies
            outputs = [host[i].copy() for i in sorted(
                (i for i, s in enumerate(plan.buffers) if s.kind == "output"), key=lambda i: plan.buffers[i].index)]
            return plan.trimmed(outputs, lambda b: int(host[b].reshape(-1)[0]))


__all__ = ["MixedExecutor", "DeviceSide", "OpenCLSide", "CUDASide", "launch_writes"]
