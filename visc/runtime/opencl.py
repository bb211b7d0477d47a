"""The OpenCL executor of runtime plans (pyopencl), and `build_program`.

The program is built once; weights are uploaded once into buffers every frame slot shares.
Each slot has its own arena (one `cl.Buffer` whose planned slots are sub-buffers), its own
input/output buffers, its own command queue and its own bound `cl.Kernel` per launch, so
`run` only copies inputs in, enqueues the launches and copies outputs back, and runs on
different slots overlap.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from visc.errors import CompileError, DeviceError, InputShapeError, KernelBuildError
from visc.runtime.device import (
    Resident,
    buffer_of,
    check_slot,
    check_weights,
    memory_report,
    node_error,
    resident_input,
    weight_bytes,
)
from visc.runtime.plan import Plan

# -- building ---------------------------------------------------------------------------------

_KERNEL_LINE = re.compile(r"__kernel\b.*?\bvoid\s+(\w+)\s*\(")
_LOG_POSITION = re.compile(r":(\d+):\d+:")


def _kernel_at(source: str, line: int) -> str | None:
    """The kernel whose text contains 1-based ``line`` of ``source``."""
    current = None
    for i, text in enumerate(source.splitlines(), start=1):
        m = _KERNEL_LINE.search(text)
        if m:
            current = m.group(1)
        if i >= line:
            return current
    return current


OPENCL_CACHE_KIND = "opencl"  # program binaries by source, options and device in the compile cache


def _device_identity(device: Any) -> str:
    """What a program binary is valid for: the platform, the device and its driver."""
    return "|".join(str(x).strip() for x in (device.platform.name, device.platform.version, device.name,
                                             device.version, device.driver_version))


def _binary_of(program: Any, device: Any) -> bytes | None:
    """The built program's binary for ``device`` (None: the driver gives none)."""
    import pyopencl as cl

    try:
        devices = program.get_info(cl.program_info.DEVICES)
        binaries = program.get_info(cl.program_info.BINARIES)
        binary = binaries[devices.index(device)] if device in devices else binaries[0]
    except (cl.Error, IndexError, ValueError):
        return None
    return bytes(binary) or None


def _from_binary(context: Any, device: Any, binary: bytes, options: list[str]) -> Any:
    """A program built from a cached binary, or None when the driver refuses it (another
    driver build, a damaged binary): the caller builds from source."""
    import pyopencl as cl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cl.CompilerWarning)
            return cl.Program(context, [device], [binary]).build(options=options, devices=[device])
    except (cl.Error, RuntimeError):
        return None


def build_program(context: Any, device: Any, source: str, options: Sequence[str] = ()) -> Any:
    """Build ``source`` for ``device``; a failure becomes a KernelBuildError carrying the
    driver's log and the kernels its errors point at. With the compile cache on, the binary
    comes from (and goes to) it, and pyopencl's own binary cache is bypassed: one bounded
    cache, cleared by `visc cache clear`, rather than two."""
    import pyopencl as cl

    from visc.runtime.compile_cache import CompileCache, default_cache

    # IEEE division and sqrt where the device offers them: OpenCL allows 2.5 ulp otherwise,
    # and NVIDIA's driver uses that freedom (nearest-neighbour resize indices then differ)
    exact = int(getattr(cl.device_fp_config, "CORRECTLY_ROUNDED_DIVIDE_SQRT", 0))
    if exact and int(getattr(device, "single_fp_config", 0)) & exact:
        options = ["-cl-fp32-correctly-rounded-divide-sqrt", *options]
    full = ["-cl-std=CL1.2", *options]
    cache = default_cache()
    key = ""
    if cache is not None:
        key = CompileCache.key(OPENCL_CACHE_KIND, source, "\0".join(full), _device_identity(device))
        binary = cache.get(OPENCL_CACHE_KIND, key)
        if binary is not None:
            built = _from_binary(context, device, binary, full)
            if built is not None:
                return built
            cache.discard(OPENCL_CACHE_KIND, key)
    program = cl.Program(context, source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cl.CompilerWarning)
            built = program.build(options=full, devices=[device], cache_dir=False if cache is not None else None)
    except cl.Error as e:
        log = str(e)
        try:
            log = program.get_build_info(device, cl.program_build_info.LOG) or log
        except cl.Error:
            pass
        kernels = []
        for text in log.splitlines():
            m = _LOG_POSITION.search(text)
            if m and "error" in text.lower():
                name = _kernel_at(source, int(m.group(1)))
                if name and name not in kernels:
                    kernels.append(name)
        where = f"kernel {', '.join(repr(k) for k in kernels)}" if kernels else "the OpenCL program"
        raise KernelBuildError(f"the OpenCL compiler of '{device.name.strip()}' rejected {where}:\n{log.strip()}") from e
    if cache is not None:
        binary = _binary_of(built, device)
        if binary is not None:
            cache.put(OPENCL_CACHE_KIND, key, binary)
    return built


# -- execution ------------------------------------------------------------------------------


@dataclass(eq=False)  # slots are told apart by identity
class _Slot:
    """What one frame slot owns: a queue, buffers (weights shared), kernels bound to them."""

    queue: Any
    buffers: list[Any]
    launches: list[tuple[Any, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    owned: list[Any] = field(default_factory=list)  # buffers allocated for this slot
    lock: threading.Lock = field(default_factory=threading.Lock)


class OpenCLExecutor:
    """Runs a `Plan` with its OpenCL C ``source`` on one device (see the module docstring);
    implements `visc.runtime.device.Device`."""

    def __init__(
        self,
        plan: Plan,
        source: str,
        weights: Mapping[str, np.ndarray],
        device: str | None = None,
        profile: bool = False,
        slots: int = 1,
    ):
        import pyopencl as cl

        from visc.runtime.devices import get_context

        self.plan = plan
        self.slots = max(1, int(slots))
        self._cl = cl
        self._context, self._device = get_context(device)
        props = cl.command_queue_properties.PROFILING_ENABLE if profile else 0
        start = time.perf_counter()
        self._program = build_program(self._context, self._device, source)
        self.build_seconds = time.perf_counter() - start
        self._weights = self._upload_weights(weights)
        self._slots: list[_Slot] = []
        for _ in range(self.slots):
            slot = self._place_buffers(cl.CommandQueue(self._context, self._device, properties=props))
            self._slots.append(slot)
            slot.launches = self._bind_launches(slot.buffers)
        self._profile_queue = self._slots[0].queue if profile else None
        self._closed = False
        io = plan.io_bytes(floor=1)
        self._memory = memory_report(sum(int(b.size) for b in self._weights.values()),
                                     sum(int(b.size) for b in self._slots[0].owned) - io, io, self.slots)

    @property
    def device_name(self) -> str:
        return str(self._device.name).strip()

    # -- setup --------------------------------------------------------------------------

    def _upload_weights(self, weights: Mapping[str, np.ndarray]) -> dict[str, Any]:
        cl, plan = self._cl, self.plan
        check_weights(plan, weights)
        placed: dict[str, Any] = {}
        for spec in plan.buffers:
            if spec.kind == "weight" and spec.name is not None and spec.name not in placed:
                placed[spec.name] = cl.Buffer(self._context, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR,
                                              hostbuf=weight_bytes(spec.name, weights[spec.name], spec.shape,
                                                                   spec.dtype))
        return placed

    def _place_buffers(self, queue: Any) -> _Slot:
        cl, ctx, plan = self._cl, self._context, self.plan
        rw = cl.mem_flags.READ_WRITE
        align = max(1, int(self._device.mem_base_addr_align) // 8)
        arena = cl.Buffer(ctx, rw, size=plan.arena_size) if plan.arena_size > 0 else None
        slot = _Slot(queue, [None] * len(plan.buffers), owned=[arena] if arena is not None else [])
        buffers = slot.buffers
        for i, spec in enumerate(plan.buffers):
            if spec.kind == "view":
                assert spec.base is not None
                buffers[i] = buffers[spec.base]
            elif spec.kind == "weight":
                assert spec.name is not None
                buffers[i] = self._weights[spec.name]
            elif spec.kind == "arena" and spec.base is not None and (arena is None or (spec.offset or 0) % align):
                raise CompileError(f"a concat slab at arena offset {spec.offset} is not {align}-byte aligned, as "
                                   f"'{self.device_name}' needs for sub-buffers; compile for this device "
                                   "(the slab alignment comes from the device visc compiles for)")
            elif spec.kind == "arena" and arena is not None and spec.nbytes > 0 and (spec.offset or 0) % align == 0:
                buffers[i] = arena.get_sub_region(spec.offset or 0, spec.nbytes)
            else:
                # inputs/outputs, and arena slots the device cannot address as sub-buffers
                # (their bytes are shared only with buffers whose lifetimes do not overlap)
                buffers[i] = cl.Buffer(ctx, rw, size=max(spec.nbytes, 1))
                slot.owned.append(buffers[i])
                if spec.kind == "status":  # a check's word starts clear
                    cl.enqueue_copy(queue, buffers[i], np.zeros(spec.shape, spec.dtype), is_blocking=True)
        return slot

    def _bind_launches(self, buffers: list[Any]) -> list[tuple[Any, tuple[int, ...], tuple[int, ...]]]:
        cl = self._cl
        bound = []
        for k, launch in enumerate(self.plan.launches):
            try:
                kernel = cl.Kernel(self._program, launch.kernel)
            except cl.Error as e:
                raise node_error(KernelBuildError, self.plan, k, f"the kernel is not in the OpenCL program ({e})") from e
            kernel.set_args(*[buffers[a] for a in launch.args])
            limit = int(kernel.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE, self._device))
            threads = int(np.prod(launch.block))
            if threads > limit:
                raise node_error(KernelBuildError, self.plan, k,
                                 f"kernel '{launch.kernel}' needs work-groups of {threads} work-items; "
                                 f"'{self.device_name}' runs it with at most {limit}")
            gsize = tuple(g * b for g, b in zip(launch.grid, launch.block, strict=True))
            bound.append((kernel, gsize, tuple(launch.block)))
        return bound

    def memory(self) -> dict[str, int]:
        return dict(self._memory)

    # -- the device interface -----------------------------------------------------------

    def _slot(self, slot: int) -> _Slot:
        if self._closed:
            raise DeviceError(f"the OpenCL executor on '{self.device_name}' is closed")
        return self._slots[check_slot(slot, self.slots)]

    def upload(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        if host.nbytes:
            s = self._slot(slot)
            self._cl.enqueue_copy(s.queue, s.buffers[buffer], np.ascontiguousarray(host).reshape(-1).view(np.uint8),
                                  is_blocking=True)

    def download(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        if host.nbytes:
            s = self._slot(slot)
            self._cl.enqueue_copy(s.queue, host.reshape(-1).view(np.uint8), s.buffers[buffer], is_blocking=True)

    def launch(self, k: int, slot: int = 0) -> None:
        s = self._slot(slot)
        self._launch(s.queue, s, k)

    def finish(self, slot: int = 0) -> None:
        self._slot(slot).queue.finish()

    def _launch(self, queue: Any, s: _Slot, k: int) -> Any:
        kernel, gsize, block = s.launches[k]
        try:
            return self._cl.enqueue_nd_range_kernel(queue, kernel, gsize, block)
        except self._cl.Error as e:
            queue.finish()
            raise node_error(DeviceError, self.plan, k, f"failed on '{self.device_name}': {e}") from e

    def _enqueue(self, queue: Any, s: _Slot, values: Sequence[np.ndarray | Resident],
                 keep: Sequence[bool] = ()) -> tuple[list[np.ndarray | Resident], list[Any]]:
        """Copy the inputs in (a `Resident` of this context device to device), queue every
        launch, copy the outputs out (those flagged in ``keep`` stay in the slot as
        `Resident`; counted outputs always come back) and wait: (outputs, launch events)."""
        cl, plan = self._cl, self.plan
        for j, value in enumerate(values):
            dst = s.buffers[buffer_of(plan, "input", j)]
            if isinstance(value, Resident):
                if value.nbytes:
                    cl.enqueue_copy(queue, dst, value.handle, byte_count=value.nbytes)
            elif value.nbytes:
                cl.enqueue_copy(queue, dst, value, is_blocking=False)
        events = [self._launch(queue, s, k) for k in range(len(s.launches))]
        outs: list[np.ndarray | Resident] = []
        for j, spec in enumerate(plan.outputs):
            buf = s.buffers[buffer_of(plan, "output", j)]
            if j < len(keep) and keep[j] and spec.count is None:
                outs.append(Resident(self.memory_space, buf, tuple(spec.shape), spec.dtype,
                                     fetch=functools.partial(self._fetch, s, buf, spec.shape, spec.dtype)))
                continue
            host = np.empty(spec.shape, dtype=spec.dtype)
            if host.nbytes:
                cl.enqueue_copy(queue, host, buf, is_blocking=False)
            outs.append(host)
        counts = {spec.count: np.zeros(1, dtype=np.int64) for spec in plan.outputs if spec.count is not None}
        words = {c.buffer: np.zeros(plan.buffers[c.buffer].shape, np.int64) for c in plan.checks}
        for b, host in [*counts.items(), *words.items()]:
            cl.enqueue_copy(queue, host, s.buffers[b], is_blocking=False)
        queue.finish()
        plan.check_status(words.__getitem__, lambda b: cl.enqueue_copy(queue, s.buffers[b], np.zeros_like(words[b]),
                                                                       is_blocking=True))
        return plan.trimmed(outs, lambda b: int(counts[b][0])), events  # type: ignore[arg-type]

    def run(self, inputs: Sequence[np.ndarray], slot: int = 0) -> list[np.ndarray]:
        """One inference: inputs in plan order (exact shapes and dtypes), outputs as numpy.
        Runs on one slot are serialized (they share its buffers); slots run concurrently."""
        arrays = self.plan.check_inputs(inputs)
        s = self._slot(slot)
        with s.lock:
            outs, _ = self._enqueue(s.queue, s, arrays)
        return outs  # type: ignore[return-value]

    @property
    def memory_space(self) -> str:
        """Executors of one context (`visc.runtime.devices.get_context` shares it per device)
        can copy each other's buffers device to device."""
        return f"opencl:{id(self._context)}"

    def run_resident(self, inputs: Sequence[np.ndarray | Resident], slot: int = 0,
                     keep: Sequence[bool] = ()) -> list[np.ndarray | Resident]:
        """`run`, with inputs that may be `Resident` in this context (copied device to device)
        and the outputs flagged in ``keep`` left in this slot's output buffers as `Resident`
        (valid until the slot's next run; counted outputs always come back to the host)."""
        plan = self.plan
        if len(inputs) != len(plan.inputs):
            raise InputShapeError(f"expected {len(plan.inputs)} inputs, got {len(inputs)}")
        values = [resident_input(plan, j, x, self.memory_space) for j, x in enumerate(inputs)]
        s = self._slot(slot)
        with s.lock:
            outs, _ = self._enqueue(s.queue, s, values, keep)
        return outs

    def _fetch(self, s: _Slot, buf: Any, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        host = np.empty(shape, dtype=dtype)
        if host.nbytes:
            self._cl.enqueue_copy(s.queue, host, buf, is_blocking=True)
        return host

    def profile_run(self, inputs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Device time of every launch in plan order, in seconds, from profiling events (slot 0)."""
        arrays = self.plan.check_inputs(inputs)
        cl = self._cl
        s = self._slot(0)
        with s.lock:
            if self._profile_queue is None:
                self._profile_queue = cl.CommandQueue(
                    self._context, self._device, properties=cl.command_queue_properties.PROFILING_ENABLE)
            _, events = self._enqueue(self._profile_queue, s, arrays)
        return [(launch.kernel, (ev.profile.end - ev.profile.start) * 1e-9)
                for launch, ev in zip(self.plan.launches, events, strict=True)]

    def close(self) -> None:
        """Release the device buffers now (otherwise at garbage collection)."""
        if self._closed:
            return
        self._closed = True
        for s in self._slots:
            with s.lock:
                s.queue.finish()
                for buf in s.owned:
                    buf.release()
                s.buffers, s.launches, s.owned = [], [], []
        for buf in self._weights.values():
            buf.release()
        self._weights = {}


__all__ = ["OpenCLExecutor", "build_program"]
