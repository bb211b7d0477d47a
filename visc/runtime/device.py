"""The device interface every executor implements, and the helpers they share.

A plan runs on three kinds of device (OpenCL, CUDA, the host CPU) and on mixtures of them
(`visc.runtime.mixed`). Whatever drives them (the model's `run`, the mixed executor, a
pipeline stage that keeps several frames in flight) speaks to one interface, so nothing
outside an executor reaches into its queues, pointers or host arrays, and a new device is
one class. It is a `typing.Protocol`: the executors share no code path worth a base class,
only this contract.

Frame slots: an executor built with ``slots=n`` holds n copies of everything a frame writes
(the arena, the input and output buffers; OpenCL: a command queue each, CUDA: a stream and
graph each), and one copy of the weights. Runs on different slots may overlap from
different threads; runs on one slot are serialized.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from visc.errors import CompileError, InputShapeError, ViscError
from visc.runtime.plan import Plan


@runtime_checkable
class Device(Protocol):
    """An executor of one `Plan` on one device, with ``slots`` frame slots."""

    plan: Plan
    slots: int

    @property
    def device_name(self) -> str: ...

    def run(self, inputs: Sequence[np.ndarray], slot: int = 0) -> list[np.ndarray]:
        """Copy the inputs in, run every launch, copy the outputs out and wait; the outputs
        are fresh arrays the caller owns."""
        ...

    def upload(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        """Copy ``host`` into plan buffer ``buffer`` of ``slot`` (done when it returns)."""
        ...

    def download(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        """Copy plan buffer ``buffer`` of ``slot`` into ``host``, after the launches queued
        before (done when it returns)."""
        ...

    def launch(self, k: int, slot: int = 0) -> None:
        """Queue launch ``k`` of the executor's plan on ``slot`` (asynchronous where the
        device allows)."""
        ...

    def finish(self, slot: int = 0) -> None:
        """Wait for everything queued on ``slot``."""
        ...

    def memory(self) -> dict[str, int]:
        """Bytes held: ``weights`` (shared), ``arena`` and ``io`` per slot, ``slots``, and
        ``total`` = weights + slots * (arena + io)."""
        ...

    def close(self) -> None:
        """Free device memory and stop worker threads (idempotent)."""
        ...


E = TypeVar("E", bound=ViscError)


def node_error(cls: type[E], plan: Plan, k: int, what: str) -> E:
    """A ``cls`` error about launch ``k`` of ``plan`` whose message and ``node`` attribute
    name the launch's ONNX node, so a failure points at the model, not at a kernel name."""
    launch = plan.launches[k]
    where = f" (ONNX node '{launch.node}')" if launch.node else ""
    error = cls(f"launch {k} (kernel '{launch.kernel}'){where}: {what}")
    error.node = launch.node  # type: ignore[attr-defined]
    return error


def check_slot(slot: int, slots: int) -> int:
    if not 0 <= slot < slots:
        raise InputShapeError(f"frame slot {slot} does not exist (the executor has {slots})")
    return slot


def weight_bytes(name: str, array: np.ndarray, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """The weight as the bytes the IR's element type expects (a uint8 array feeds an i8 memref
    unchanged; a float64 array for an f32 memref is converted), flat and never empty."""
    arr = np.asarray(array)
    want = np.dtype(dtype)
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise CompileError(f"weight '{name}' has shape {list(arr.shape)}, the plan expects {list(shape)}")
    if arr.dtype != want:
        same_bits = arr.dtype.itemsize == want.itemsize and arr.dtype.kind in "iub" and want.kind in "iub"
        arr = np.ascontiguousarray(arr).view(want) if same_bits else arr.astype(want)
    out = np.ascontiguousarray(arr).reshape(-1)
    return out if out.size else np.zeros(1, dtype=want)


def check_weights(plan: Plan, weights: object) -> None:
    missing = [n for n in plan.weights if n not in weights]  # type: ignore[operator]
    if missing:
        raise CompileError(f"the plan needs weights that were not given: {', '.join(missing)}")


def memory_report(weights: int, arena: int, io: int, slots: int) -> dict[str, int]:
    return {"weights": weights, "arena": arena, "io": io, "slots": slots, "total": weights + slots * (arena + io)}


def open_executor(target: str, plan: Plan, sources: Mapping[str, str], weights: Mapping[str, np.ndarray],
                  device: str | None = None, slots: int = 1, threads: int | None = None,
                  native: Mapping[str, bytes] | None = None) -> Device:
    """A new executor of ``plan`` for ``target`` ("opencl", "cuda" or "cpu"; a GPU target
    whose plan has CPU launches gets a `MixedExecutor`; "host": a pipeline's data-dependent
    stage, `HostExecutor`), from the artifact's kernel ``sources`` by target, and ``native``
object code by target where the compile made it (`visc.runtime.cpu_native`). ``threads``:
the CPU backend's worker count (default: all cores)."""
    cpu_native = (native or {}).get("cpu")
    if target != "cpu" and plan.on_cpu():
        from visc.runtime.mixed import MixedExecutor

        return MixedExecutor(plan, target, sources[target], sources["cpu"], weights, device=device, slots=slots,
                             threads=threads, cpu_native=cpu_native)
    if target == "opencl":
        from visc.runtime.opencl import OpenCLExecutor

        return OpenCLExecutor(plan, sources["opencl"], weights, device=device, slots=slots)
    if target == "cuda":
        from visc.runtime.cuda import CUDAExecutor

        return CUDAExecutor(plan, sources["cuda"], weights, device=device, slots=slots)
    if target == "cpu":
        from visc.runtime.cpu import CPUExecutor

        return CPUExecutor(plan, sources["cpu"], weights, device=device, threads=threads, slots=slots,
                           native=cpu_native)
    if target == "host":
        from visc.runtime.host_executor import HostExecutor

        return HostExecutor(plan, sources["host"], slots=slots)  # type: ignore[return-value]
    raise InputShapeError(f"no executor for target '{target}'")


@dataclass(eq=False)
class Resident:
    """A tensor a stage left on its device (an output buffer of one of its frame slots) for
    consumers on the same device, which copy it device to device (`run_resident`): two
    stages on one GPU never send a tensor through the host. ``space`` names the memory it
    lives in (executors compare it with their own `memory_space`); ``fetch()`` gives a host
    copy for a consumer elsewhere. The producer does not reuse the slot until each of the
    ``users`` consumers has called `release()`."""

    space: str
    handle: Any  # a pyopencl Buffer, or a CUDA device address
    shape: tuple[int, ...]
    dtype: str
    fetch: Callable[[], np.ndarray]
    users: int = 1
    done: Callable[[], None] = lambda: None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def release(self) -> None:
        """One consumer is done with it; the last one gives the producer's slot back."""
        with self._lock:
            self.users -= 1
            last = self.users == 0
        if last:
            self.done()

    def drop(self) -> None:
        """Nobody will read it (a result thrown away): give the producer's slot back now."""
        with self._lock:
            last = self.users > 0
            self.users = 0
        if last:
            self.done()


def resident_input(plan: Plan, j: int, value: np.ndarray | Resident, space: str) -> np.ndarray | Resident:
    """Input ``j`` as a `Resident` this executor can copy device to device (same ``space``,
    shape and dtype), else as a checked host array."""
    spec = plan.inputs[j]
    if isinstance(value, Resident):
        if value.space == space and tuple(value.shape) == tuple(spec.shape) and value.dtype == spec.dtype:
            return value
        value = value.fetch()
    return plan.check_input(j, value)


def buffer_of(plan: Plan, kind: str, index: int) -> int:
    """The plan buffer of graph input/output ``index`` (``kind`` "input" or "output")."""
    return next(i for i, b in enumerate(plan.buffers) if b.kind == kind and b.index == index)


__all__ = ["Device", "Resident", "resident_input", "open_executor", "node_error", "check_slot", "weight_bytes", "check_weights", "memory_report", "buffer_of"]
