"""The mixed-plan executor: a plan whose launches run partly on a GPU executor and partly on
the CPU backend (placement, `vision-placement`), with copies only where the device changes.

It is a plan over two devices of the `visc.runtime.device.Device` interface: one GPU
executor (OpenCL or CUDA, for the launches of the plan's target) and one `CPUExecutor` (for
the launches whose `Launch.device` is "cpu"), each built for its share of the launches and
driven only through upload, download, launch and finish. Every buffer exists on both sides.
Per frame slot, the executor tracks for each root buffer which side holds its latest bytes:
a launch whose argument is stale on its device first copies it over (through a host array:
download from one side, upload to the other, both blocking, so either side may reuse the
bytes afterwards); the buffers a launch writes (`Launch.writes`) are then valid on its side
only. Inputs start on the host, weights on both. GPU launches stay asynchronous between
copies. Being a `Device` itself, it runs frame slots like the executors it drives.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np

from visc.errors import InputShapeError
from visc.runtime.cpu import CPUExecutor
from visc.runtime.device import Device, buffer_of, check_slot, memory_report
from visc.runtime.plan import CPU_DEVICE, Plan

CPU, GPU = "cpu", "gpu"


def gpu_executor(target: str, plan: Plan, source: str, weights: Mapping[str, np.ndarray], device: str | None,
                 slots: int) -> Device:
    """The executor of ``target`` for the GPU launches of a mixed plan."""
    if target == "opencl":
        from visc.runtime.opencl import OpenCLExecutor

        return OpenCLExecutor(plan, source, weights, device=device, slots=slots)
    if target == "cuda":
        from visc.runtime.cuda import CUDAExecutor

        # launch by launch between copies: a captured graph of the whole plan would not fit
        return CUDAExecutor(plan, source, weights, device=device, use_graph=False, slots=slots)
    raise InputShapeError(f"mixed CPU plans are not supported with target '{target}'")


class MixedExecutor:
    """Runs ``plan``: its launches with ``device == "cpu"`` are host functions of ``cpu_ir``,
    the others kernels of the GPU ``target`` (``source``); ``cpu_native``: those functions'
    object code, if the compile made it."""

    def __init__(self, plan: Plan, target: str, source: str, cpu_ir: str, weights: Mapping[str, np.ndarray],
                 device: str | None = None, slots: int = 1, threads: int | None = None,
                 cpu_native: bytes | None = None):
        self.plan = plan
        self.slots = max(1, int(slots))
        self.on_cpu = [launch.device == CPU_DEVICE for launch in plan.launches]
        # launch k of the plan is launch `_side_index[k]` of its side's executor
        counters = {CPU: 0, GPU: 0}
        self._side_index = []
        for on_cpu in self.on_cpu:
            side = CPU if on_cpu else GPU
            self._side_index.append(counters[side])
            counters[side] += 1
        share = {side: dataclasses.replace(plan, launches=[la for la, c in zip(plan.launches, self.on_cpu, strict=True)
                                                           if c == (side == CPU)]) for side in (CPU, GPU)}
        self.gpu = gpu_executor(target, share[GPU], source, weights, device, self.slots)
        try:
            self.cpu = CPUExecutor(share[CPU], cpu_ir, weights, threads=threads, slots=self.slots, native=cpu_native)
        except BaseException:
            self.gpu.close()
            raise
        self.device_name = f"{target} {self.gpu.device_name} + {self.cpu.device_name}"
        self.copies = 0  # copies made by the last run
        self._valid: list[dict[int, set[str]]] = [{} for _ in range(self.slots)]
        self._copies = [0] * self.slots
        self._locks = [threading.Lock() for _ in range(self.slots)]

    # -- the device interface -----------------------------------------------------------

    def memory(self) -> dict[str, int]:
        g, c = self.gpu.memory(), self.cpu.memory()
        return memory_report(g["weights"] + c["weights"], g["arena"] + c["arena"], g["io"] + c["io"], self.slots)

    def _start(self, slot: int) -> dict[int, set[str]]:
        """A fresh frame on ``slot``: weights valid on both sides, nothing else anywhere."""
        valid = {i: {CPU, GPU} for i, spec in enumerate(self.plan.buffers) if spec.kind == "weight"}
        self._valid[slot] = valid
        self._copies[slot] = 0
        return valid

    def upload(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        """Copy ``host`` into ``buffer`` on the host side; the GPU gets it when a launch needs it."""
        check_slot(slot, self.slots)
        self.cpu.upload(buffer, host, slot)
        self._valid[slot][self.plan.root(buffer)] = {CPU}

    def download(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        """Copy ``buffer`` from the side holding its latest bytes (a root buffer: an output,
        a row count, or any buffer the plan does not view differently)."""
        check_slot(slot, self.slots)
        if CPU in self._valid[slot].get(self.plan.root(buffer), {CPU}):
            self.cpu.download(buffer, host, slot)
        else:
            self.gpu.download(buffer, host, slot)

    def launch(self, k: int, slot: int = 0) -> None:
        """Launch ``k`` on its side, after copying over the arguments that are stale there."""
        check_slot(slot, self.slots)
        plan, valid = self.plan, self._valid[slot]
        launch = plan.launches[k]
        side = CPU if self.on_cpu[k] else GPU
        roots = [plan.root(a) for a in launch.args]
        for r in dict.fromkeys(roots):
            have = valid.get(r)
            if have is None or side in have:
                continue
            host = self.cpu.host_array(r, slot)  # the CPU side's buffer: one copy, no staging
            if side == GPU:
                self.gpu.upload(r, host, slot)
            else:
                self.gpu.download(r, host, slot)
            have.add(side)
            self._copies[slot] += 1
        (self.cpu if side == CPU else self.gpu).launch(self._side_index[k], slot)
        for j in launch.written:
            if plan.buffers[roots[j]].kind != "weight":
                valid[roots[j]] = {side}

    def finish(self, slot: int = 0) -> None:
        self.gpu.finish(slot)
        self.cpu.finish(slot)

    def run(self, inputs: Sequence[np.ndarray], slot: int = 0) -> list[np.ndarray]:
        return self._execute(inputs, slot, None)

    def profile_run(self, inputs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Per launch, in plan order: the kernel and its wall time including the copies it
        waited for. Each launch is synchronized, so the sum exceeds a normal run's latency."""
        timings: list[tuple[str, float]] = []
        self._execute(inputs, 0, timings)
        return timings

    def _execute(self, inputs: Sequence[np.ndarray], slot: int, timings: list[tuple[str, float]] | None
                 ) -> list[np.ndarray]:
        plan = self.plan
        arrays = plan.check_inputs(inputs)
        with self._locks[check_slot(slot, self.slots)]:
            self._start(slot)
            for j, arr in enumerate(arrays):
                self.upload(buffer_of(plan, "input", j), arr, slot)
            for k, launch in enumerate(plan.launches):
                start = time.perf_counter()
                self.launch(k, slot)
                if timings is not None:
                    self.finish(slot)
                    timings.append((launch.kernel, time.perf_counter() - start))
            outputs = [np.empty(spec.shape, spec.dtype) for spec in plan.outputs]
            for j, out in enumerate(outputs):
                self.download(buffer_of(plan, "output", j), out, slot)

            def count_of(b: int) -> int:
                host = np.zeros(plan.buffers[b].shape, plan.buffers[b].dtype)
                self.download(b, host, slot)
                return int(host.reshape(-1)[0])

            def word_of(b: int) -> np.ndarray:
                host = np.zeros(plan.buffers[b].shape, plan.buffers[b].dtype)
                self.download(b, host, slot)
                return host

            def reset(b: int) -> None:  # both sides: the next frame's launch may run on either
                zero = np.zeros(plan.buffers[b].shape, plan.buffers[b].dtype)
                self.cpu.upload(b, zero, slot)
                self.gpu.upload(b, zero, slot)

            plan.check_status(word_of, reset)
            trimmed = plan.trimmed(outputs, count_of)
            self.finish(slot)
            self.copies = self._copies[slot]
            return trimmed

    def close(self) -> None:
        self.gpu.close()
        self.cpu.close()


__all__ = ["MixedExecutor", "gpu_executor"]
