"""The CUDA executor: runs a runtime `Plan` with its PTX on an NVIDIA GPU through pycuda,
and replays the whole plan as one CUDA graph through cuda-python's driver bindings.

Setup happens once: the PTX module is loaded (the driver JIT-compiles it for the GPU),
one allocation holds all weights, uploaded once and shared by every frame slot, and each
slot gets its device addresses (one arena allocation with intermediates at their planned
offsets, one allocation per graph input/output), its stream, and every launch bound to
its kernel and argument pointers.

A run copies the inputs into the slot's pinned host buffers and up to the device, launches
the plan on the slot's stream, copies the outputs back and waits. With ``use_graph`` (the
default) the launches are recorded once per slot by stream capture into a CUDA graph
(``cuStreamBeginCapture`` on pycuda's stream, then ``cuGraphInstantiate``), so a run is
one ``cuGraphLaunch`` between the two copies: at batch 1 the ~60-200 kernel launches of a
CNN otherwise cost as much host time as the kernels take on the GPU.

The executor uses the device's primary context (the one the CUDA runtime, and so
PyTorch, uses), made current only while it works, so it coexists with other CUDA users in
the process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from visc.errors import DeviceError, InputShapeError, KernelBuildError
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

WEIGHT_ALIGN = 256  # bytes; cudaMalloc's own alignment, enough for any vector access

_INSTALL_PYCUDA = ("pycuda is not installed; the CUDA target runs through it: `pip install pycuda` "
                   "(it builds from source against the CUDA toolkit; or `pip install 'visc[cuda]'`)")
_INSTALL_CUDA_PYTHON = ("cuda-python is not installed; CUDA graph replay needs its driver bindings: "
                        "`pip install cuda-python` (or run with use_graph=False)")


def _pycuda() -> Any:
    """pycuda.driver, initialized; DeviceError naming what is missing otherwise."""
    try:
        import pycuda.driver as drv
    except ImportError as e:
        raise DeviceError(f"{_INSTALL_PYCUDA} ({e})") from e
    except OSError as e:  # libcuda.so missing: pycuda is there but no driver
        raise DeviceError(f"the NVIDIA driver library (libcuda.so) could not be loaded: {e}; install the "
                          "NVIDIA GPU driver") from e
    try:
        drv.init()
    except drv.Error as e:
        raise DeviceError(f"the CUDA driver did not initialize ({e}): is an NVIDIA GPU and its driver "
                          "present (see nvidia-smi)?") from e
    return drv


def driver_bindings() -> Any:
    """cuda-python's driver module (`cuda.bindings.driver`, or `cuda.cuda` before 12.6)."""
    try:
        from cuda.bindings import driver
    except ImportError:
        try:
            from cuda import cuda as driver  # type: ignore[no-redef]
        except ImportError as e:
            raise DeviceError(f"{_INSTALL_CUDA_PYTHON} ({e})") from e
    return driver


def _check(result: Any, what: str) -> Any:
    """Unpack a cuda-python result tuple, raising DeviceError on a failed call."""
    driver = driver_bindings()
    err, *rest = result if isinstance(result, tuple) else (result,)
    if err != driver.CUresult.CUDA_SUCCESS:
        _, name = driver.cuGetErrorName(err)
        text = name.decode() if isinstance(name, bytes) else str(err)
        raise DeviceError(f"{what} failed: {text}")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else tuple(rest)


def instantiate_graph(graph: Any) -> Any:
    """`cuGraphInstantiate` across cuda-python versions (12+: (graph, flags); 11.x had a
    separate `cuGraphInstantiateWithFlags`)."""
    driver = driver_bindings()
    if hasattr(driver, "cuGraphInstantiateWithFlags"):
        return _check(driver.cuGraphInstantiateWithFlags(graph, 0), "cuGraphInstantiateWithFlags")
    return _check(driver.cuGraphInstantiate(graph, 0), "cuGraphInstantiate")


def device_compute_capability(index: int = 0) -> tuple[int, int] | None:
    """(major, minor) of CUDA device ``index``, or None when there is none."""
    drv = _pycuda()
    if drv.Device.count() <= index:
        return None
    return tuple(drv.Device(index).compute_capability())  # type: ignore[return-value]


DEFAULT_ARCH = "sm_80"  # the PTX architecture of a compile that finds no GPU


def detect_arch() -> str | None:
    """The architecture of CUDA device 0 (``sm_90``), or None without a driver or GPU."""
    try:
        cc = device_compute_capability(0)
    except Exception:  # noqa: BLE001 - any failure means: no usable GPU here
        return None
    return f"sm_{cc[0]}{cc[1]}" if cc else None


def list_cuda_devices() -> list[str]:
    """Names of the CUDA devices, `index: name (sm_XY)`."""
    drv = _pycuda()
    out = []
    for i in range(drv.Device.count()):
        dev = drv.Device(i)
        major, minor = dev.compute_capability()
        out.append(f"{i}: {dev.name()} (sm_{major}{minor})")
    return out


def _uniform_carveout(drv: Any, fn: Any) -> None:
    """Give every kernel the same L1/shared-memory split (all shared memory preferred), so
    consecutive kernels with and without staged tiles need no reconfiguration of the SM
    between them. ``VISC_CUDA_CARVEOUT=off`` leaves the driver's per-kernel choice."""
    setting = os.environ.get("VISC_CUDA_CARVEOUT", "100")
    if setting == "off":
        return
    attr = getattr(drv.function_attribute, "PREFERRED_SHARED_MEMORY_CARVEOUT", None)
    try:
        if attr is not None and hasattr(fn, "set_attribute"):
            fn.set_attribute(attr, int(setting))
        else:
            fn.set_cache_config(drv.func_cache.PREFER_SHARED)
    except (drv.Error, ValueError):
        pass  # an older driver without the attribute: its default split


def device_index(device: str | int | None) -> int:
    """The CUDA device a ``device`` option names: 0, 1, ... or cuda:0 (None: device 0)."""
    if device is None or device == "":
        return 0
    m = re.fullmatch(r"(?:cuda:?|gpu:?)?(\d*)", str(device).strip().lower())
    if m is None:
        raise DeviceError(f"CUDA device '{device}' is not a device index (use 0, 1, ... or cuda:0)")
    return int(m.group(1) or 0)


@dataclass
class _BoundLaunch:
    name: str
    node: str
    function: Any
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    args: tuple[int, ...]


@dataclass(eq=False)  # slots are told apart by identity
class _Slot:
    """What one frame slot owns: a stream, its buffers' addresses (weights shared), the
    launches bound to them, pinned host staging and its captured graph."""

    stream: Any
    pointers: list[int]
    launches: list[_BoundLaunch] = field(default_factory=list)
    in_host: list[np.ndarray] = field(default_factory=list)
    out_host: list[np.ndarray] = field(default_factory=list)
    count_host: dict[int, np.ndarray] = field(default_factory=dict)
    graph: Any = None
    graph_exec: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class CUDAExecutor:
    """Runs a `Plan` with its PTX on one CUDA device (see the module docstring); implements
    `visc.runtime.device.Device`. The timing helpers (`profile_run`, `kernel_times`,
    `device_time`, `graph_nodes`) and `set_inputs` work on slot 0."""

    def __init__(
        self,
        plan: Plan,
        ptx: str,
        weights: Mapping[str, np.ndarray],
        device: str | int | None = None,
        use_graph: bool = True,
        slots: int = 1,
    ):
        drv = _pycuda()
        self.plan = plan
        self.slots = max(1, int(slots))
        self._drv = drv
        self.use_graph = use_graph
        index = device_index(device)
        count = drv.Device.count()
        if index >= count:
            raise DeviceError(f"CUDA device {index} does not exist ({count} found)")
        self._device = drv.Device(index)
        self._index = index
        self._context = self._device.retain_primary_context()
        self._allocations: list[Any] = []
        self._flush: tuple[int, int] | None = None  # (buffer, bytes) that _flush_l2_async overwrites
        self._spin: Any = None  # the kernel `_hold_stream` launches (loaded on first use)
        self._slots: list[_Slot] = []
        with self.active():
            start = time.perf_counter()
            self._module = self._load(ptx)
            self.build_seconds = time.perf_counter() - start
            weight_base, offsets, weight_total = self._upload_weights(weights)
            functions = self._functions()
            for _ in range(self.slots):
                slot = _Slot(drv.Stream(), self._place_buffers(weight_base, offsets))
                slot.launches = [_BoundLaunch(launch.kernel, launch.node, functions[launch.kernel],
                                              tuple(launch.grid), tuple(launch.block),  # type: ignore[arg-type]
                                              tuple(np.uintp(slot.pointers[a]) for a in launch.args))
                                 for launch in plan.launches]
                slot.in_host = [drv.pagelocked_empty(s.shape, np.dtype(s.dtype)) for s in plan.inputs]
                slot.out_host = [drv.pagelocked_empty(s.shape, np.dtype(s.dtype)) for s in plan.outputs]
                # row counts of data-dependent outputs (NonMaxSuppression) and the status words of
                # run-time checks, read back with the outputs
                slot.count_host = {s.count: drv.pagelocked_empty((1,), np.int64) for s in plan.outputs
                                   if s.count is not None}
                slot.count_host.update({c.buffer: drv.pagelocked_empty(plan.buffers[c.buffer].shape, np.int64)
                                        for c in plan.checks})
                self._slots.append(slot)
        io = plan.io_bytes(floor=1)
        self._memory = memory_report(weight_total, plan.arena_size, io, self.slots)
        self.device_bytes = self._memory["total"]

    # -- description --------------------------------------------------------------------

    @property
    def device_name(self) -> str:
        major, minor = self._device.compute_capability()
        return f"{self._device.name()} (sm_{major}{minor})"

    @property
    def num_launches(self) -> int:
        return len(self.plan.launches)

    def memory(self) -> dict[str, int]:
        return dict(self._memory)

    # slot 0, for the timing helpers and the scripts that drive them
    @property
    def _stream(self) -> Any:
        return self._slots[0].stream

    @property
    def _launches(self) -> list[_BoundLaunch]:
        return self._slots[0].launches

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make the executor's context current on this thread for the duration."""
        if self._context is None:
            raise DeviceError("the CUDA executor is closed")
        self._context.push()
        try:
            yield
        finally:
            self._drv.Context.pop()

    # -- setup --------------------------------------------------------------------------

    def _load(self, ptx: str) -> Any:
        drv = self._drv
        try:
            return drv.module_from_buffer(ptx.encode() + b"\0")
        except drv.Error as e:
            raise KernelBuildError(f"the CUDA driver could not load the PTX on {self.device_name}: {e}") from e

    def _alloc(self, nbytes: int) -> int:
        try:
            allocation = self._drv.mem_alloc(max(1, nbytes))
        except self._drv.Error as e:
            free, total = self._drv.mem_get_info()
            raise DeviceError(f"cannot allocate {nbytes} bytes on {self.device_name} ({free} of {total} bytes "
                              f"free): {e}") from e
        self._allocations.append(allocation)
        return int(allocation)

    def _upload_weights(self, weights: Mapping[str, np.ndarray]) -> tuple[int, dict[str, int], int]:
        """All weights in one allocation, each at an aligned offset: (base, offsets, bytes)."""
        plan = self.plan
        check_weights(plan, weights)
        offsets: dict[str, int] = {}
        blobs: dict[str, np.ndarray] = {}
        total = 0
        for spec in plan.buffers:
            if spec.kind == "weight" and spec.name is not None and spec.name not in offsets:
                blob = weight_bytes(spec.name, weights[spec.name], spec.shape, spec.dtype)
                offsets[spec.name] = total
                blobs[spec.name] = blob
                total += -(-blob.nbytes // WEIGHT_ALIGN) * WEIGHT_ALIGN
        weight_base = self._alloc(total) if total else 0
        for name, blob in blobs.items():
            self._drv.memcpy_htod(weight_base + offsets[name], blob)
        return weight_base, offsets, total

    def _place_buffers(self, weight_base: int, offsets: Mapping[str, int]) -> list[int]:
        """One slot's device addresses: its arena, its inputs/outputs, the shared weights."""
        plan = self.plan
        arena = self._alloc(plan.arena_size) if plan.arena_size > 0 else 0
        pointers = [0] * len(plan.buffers)
        for i, spec in enumerate(plan.buffers):
            if spec.kind == "view":
                assert spec.base is not None
                pointers[i] = pointers[spec.base]
            elif spec.kind == "weight":
                assert spec.name is not None
                pointers[i] = weight_base + offsets[spec.name]
            elif spec.kind == "arena":
                pointers[i] = arena + (spec.offset or 0)
            else:  # inputs, outputs, output row counts, status words: allocations of their own
                pointers[i] = self._alloc(spec.nbytes)
                if spec.kind == "status":  # a check's word starts clear
                    self._drv.memset_d8(pointers[i], 0, spec.nbytes)
        return pointers

    def _functions(self) -> dict[str, Any]:
        """Each kernel of the plan, prepared, its block size checked against the device."""
        drv = self._drv
        functions: dict[str, Any] = {}
        for k, launch in enumerate(self.plan.launches):
            if launch.kernel not in functions:
                try:
                    fn = self._module.get_function(launch.kernel)
                except drv.Error as e:
                    raise node_error(KernelBuildError, self.plan, k, f"the kernel is not in the PTX module ({e})") from e
                fn.prepare("P" * len(launch.args))
                _uniform_carveout(drv, fn)
                functions[launch.kernel] = fn
            limit = functions[launch.kernel].get_attribute(drv.function_attribute.MAX_THREADS_PER_BLOCK)
            threads = int(np.prod(launch.block))
            if threads > limit:
                raise node_error(KernelBuildError, self.plan, k, f"kernel '{launch.kernel}' needs blocks of "
                                 f"{threads} threads; {self.device_name} runs it with at most {limit}")
        return functions

    # -- the device interface -----------------------------------------------------------

    def _slot(self, slot: int) -> _Slot:
        return self._slots[check_slot(slot, self.slots)]

    def upload(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        if host.nbytes:
            s = self._slot(slot)
            with self.active():
                self._synchronize(s)
                self._drv.memcpy_htod(s.pointers[buffer], np.ascontiguousarray(host))

    def download(self, buffer: int, host: np.ndarray, slot: int = 0) -> None:
        if host.nbytes:
            s = self._slot(slot)
            with self.active():
                self._synchronize(s)
                flat = np.empty(host.shape, host.dtype)
                self._drv.memcpy_dtoh(flat, s.pointers[buffer])
                np.copyto(host, flat)

    def launch(self, k: int | None = None, slot: int = 0, *, use_graph: bool | None = None,
               synchronize: bool | None = None) -> None:
        """Queue launch ``k`` on ``slot``'s stream (the device interface; no wait unless
        ``synchronize``). Without ``k``: run the whole plan on whatever the device buffers hold
        (no copies) and wait, what benchmarks time to compare with frameworks whose inputs
        already live on the GPU."""
        s = self._slot(slot)
        if k is not None:
            with self.active():
                self._call(s, k)
                if synchronize:
                    self._synchronize(s)
            return
        graph = self.use_graph if use_graph is None else use_graph
        with s.lock, self.active():
            self._launch(s, graph)
            if synchronize is None or synchronize:
                self._synchronize(s)

    def finish(self, slot: int = 0) -> None:
        s = self._slot(slot)
        with self.active():
            self._synchronize(s)

    # -- running ------------------------------------------------------------------------

    def _call(self, s: _Slot, k: int) -> None:
        launch = s.launches[k]
        try:
            launch.function.prepared_async_call(launch.grid, launch.block, s.stream, *launch.args)
        except self._drv.Error as e:
            raise node_error(DeviceError, self.plan, k, f"failed on {self.device_name}: {e}") from e

    def _enqueue_launches(self, events: Sequence[Any] | None = None, slot: int = 0) -> None:
        """Queue every launch on the slot's stream; with ``events``, record one before each
        launch and one after the last."""
        s = self._slots[slot]
        for k in range(len(s.launches)):
            if events is not None:
                events[k].record(s.stream)
            self._call(s, k)
        if events is not None:
            events[len(s.launches)].record(s.stream)

    def _copy_in(self, values: Sequence[np.ndarray | Resident], s: _Slot) -> None:
        """Host inputs through the slot's pinned staging; a `Resident` of this device device
        to device, on the slot's stream."""
        for j, (host, value) in enumerate(zip(s.in_host, values, strict=True)):
            dst = s.pointers[buffer_of(self.plan, "input", j)]
            if isinstance(value, Resident):
                if value.nbytes:
                    self._drv.memcpy_dtod_async(dst, int(value.handle), value.nbytes, s.stream)
            elif value.size:
                np.copyto(host, value)
                self._drv.memcpy_htod_async(dst, host, s.stream)

    def _copy_out(self, s: _Slot, keep: Sequence[bool] = ()) -> list[np.ndarray | Resident]:
        """The outputs as fresh host arrays, after waiting; those flagged in ``keep`` (never
        a counted one) stay in the slot's output buffers as `Resident`."""
        plan = self.plan
        kept = [j < len(keep) and bool(keep[j]) and spec.count is None for j, spec in enumerate(plan.outputs)]
        for j, host in enumerate(s.out_host):
            if host.size and not kept[j]:
                self._drv.memcpy_dtoh_async(host, s.pointers[buffer_of(plan, "output", j)], s.stream)
        for buffer, host in s.count_host.items():
            self._drv.memcpy_dtoh_async(host, s.pointers[buffer], s.stream)
        self._synchronize(s)
        outs: list[np.ndarray | Resident] = []
        for j, spec in enumerate(plan.outputs):
            ptr = s.pointers[buffer_of(plan, "output", j)]
            outs.append(Resident(self.memory_space, ptr, tuple(spec.shape), spec.dtype,
                                 fetch=functools.partial(self._fetch, ptr, spec.shape, spec.dtype))
                        if kept[j] else np.array(s.out_host[j], copy=True))
        plan.check_status(s.count_host.__getitem__, lambda b: self._drv.memset_d8(s.pointers[b], 0,
                                                                                     plan.buffers[b].nbytes))
        return plan.trimmed(outs, lambda b: int(s.count_host[b][0]))  # type: ignore[arg-type]

    def _synchronize(self, s: _Slot) -> None:
        try:
            s.stream.synchronize()
        except self._drv.Error as e:
            raise DeviceError(f"a kernel failed on {self.device_name}: {e}") from e

    def run(self, inputs: Sequence[np.ndarray], slot: int = 0, use_graph: bool | None = None) -> list[np.ndarray]:
        """One inference: inputs in plan order (exact shapes and dtypes), outputs as numpy.
        Runs on one slot are serialized (they share its arena); slots run concurrently."""
        arrays = self.plan.check_inputs(inputs)
        graph = self.use_graph if use_graph is None else use_graph
        s = self._slot(slot)
        with s.lock, self.active():
            self._copy_in(arrays, s)
            self._launch(s, graph)
            return self._copy_out(s)  # type: ignore[return-value]

    @property
    def memory_space(self) -> str:
        """Every executor of one device uses its primary context, so their device addresses
        are valid in each other's streams (device-to-device copies between stages)."""
        return f"cuda:{self._index}"

    def run_resident(self, inputs: Sequence[np.ndarray | Resident], slot: int = 0,
                     keep: Sequence[bool] = ()) -> list[np.ndarray | Resident]:
        """`run`, with inputs that may be `Resident` on this device (copied device to device
        on this slot's stream) and the outputs flagged in ``keep`` left in this slot's output
        buffers as `Resident` (valid until the slot's next run; counted outputs always come
        back to the host). Host inputs go through the slot's pinned staging, as in `run`."""
        plan = self.plan
        if len(inputs) != len(plan.inputs):
            raise InputShapeError(f"expected {len(plan.inputs)} inputs, got {len(inputs)}")
        values = [resident_input(plan, j, x, self.memory_space) for j, x in enumerate(inputs)]
        s = self._slot(slot)
        with s.lock, self.active():
            self._copy_in(values, s)
            self._launch(s, self.use_graph)
            return self._copy_out(s, keep)

    def _fetch(self, ptr: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        host = np.empty(shape, dtype=dtype)
        if host.nbytes:
            with self.active():
                self._drv.memcpy_dtoh(host, ptr)
        return host

    def _launch(self, s: _Slot, graph: bool) -> None:
        if graph:
            self._replay(s)
        else:
            self._enqueue_launches(slot=self._slots.index(s))

    def set_inputs(self, inputs: Sequence[np.ndarray], slot: int = 0) -> None:
        """Upload inputs to the device buffers (for `launch`)."""
        arrays = self.plan.check_inputs(inputs)
        s = self._slot(slot)
        with s.lock, self.active():
            self._copy_in(arrays, s)
            self._synchronize(s)

    # -- CUDA graph -----------------------------------------------------------------------

    def _capture(self, s: _Slot) -> None:
        """Record every launch of the plan on the slot's stream into a CUDA graph and
        instantiate it."""
        driver = driver_bindings()
        stream = driver.CUstream(s.stream.handle)
        mode = driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
        _check(driver.cuStreamBeginCapture(stream, mode), "cuStreamBeginCapture")
        try:
            self._enqueue_launches(slot=self._slots.index(s))
        except BaseException:
            driver.cuStreamEndCapture(stream)
            raise
        graph = _check(driver.cuStreamEndCapture(stream), "cuStreamEndCapture")
        s.graph = graph
        s.graph_exec = instantiate_graph(graph)

    def _replay(self, s: _Slot) -> None:
        if s.graph_exec is None:
            self._capture(s)
        driver = driver_bindings()
        _check(driver.cuGraphLaunch(s.graph_exec, driver.CUstream(s.stream.handle)), "cuGraphLaunch")

    def graph_nodes(self) -> int:
        """Number of nodes in slot 0's captured graph (one per launch), capturing if needed."""
        driver = driver_bindings()
        s = self._slots[0]
        with s.lock, self.active():
            if s.graph_exec is None:
                self._capture(s)
            _, count = _check(driver.cuGraphGetNodes(s.graph, 0), "cuGraphGetNodes")
        return int(count)

    # -- profiling ------------------------------------------------------------------------

    def profile_run(self, inputs: Sequence[np.ndarray], cold: bool = False,
                    hold: float = 300e-6) -> list[tuple[str, float]]:
        """Device time of every launch in plan order, in seconds, from CUDA events recorded
        between the launches on the stream (`kernel_times` gives gap-free numbers).

        The inputs are copied first; ``cold`` then empties the L2 (tuning times a kernel as it
        meets its weights inside a model whose weights outgrow the L2, not with them left by
        the previous repeat), and the stream is held for ``hold`` seconds (`_hold_stream`)
        while the host queues the events and launches behind it. So the first start event
        follows a kernel, never the input copies or the host: on the H100 an event queued right
        after the copies added 1-5 us to kernels of 6-25 us (scripts/gpu/timing_probe.py)."""
        arrays = self.plan.check_inputs(inputs)
        drv = self._drv
        s = self._slots[0]
        with s.lock, self.active():
            events = [drv.Event() for _ in range(len(s.launches) + 1)]
            self._copy_in(arrays, s)
            if cold:
                self._flush_l2_async()
            if hold > 0:
                self._hold_stream(hold)
            self._enqueue_launches(events)
            self._copy_out(s)
            return [(launch.name, events[i + 1].time_since(events[i]) * 1e-3)
                    for i, launch in enumerate(s.launches)]

    def _flush_l2_async(self, value: int = 0) -> None:
        """Overwrite twice the L2's size on slot 0's stream, so the next kernel finds none of
        its operands cached (call with the context current)."""
        drv = self._drv
        if self._flush is None:
            nbytes = 2 * int(self._device.get_attribute(drv.device_attribute.L2_CACHE_SIZE))
            self._flush = (self._alloc(max(nbytes, 4)), max(nbytes, 4))
        base, nbytes = self._flush
        drv.memset_d32_async(base, value, nbytes // 4, self._stream)

    def _hold_stream(self, seconds: float) -> None:
        """Keep slot 0's stream busy for `seconds` (one thread spinning on the GPU's global
        timer; call with the context current). Queued before a timed launch, it lets the host
        queue the start event and the launches behind it, so the event does not fire while the
        GPU waits for the host: a 5 us kernel would otherwise be timed with the few
        microseconds of its launch (more when other processes load the CPU)."""
        if self._spin is None:
            self._spin = self._drv.module_from_buffer(_SPIN_PTX.encode() + b"\0").get_function("visc_spin")
            self._spin.prepare("Q")
        self._spin.prepared_async_call((1, 1, 1), (1, 1, 1), self._stream, np.uint64(int(seconds * 1e9)))

    def kernel_times(self, repeat: int = 5, inner: int = 10, cold: bool = False) -> list[tuple[str, str, float]]:
        """(kernel, ONNX node, seconds) per launch: each launch is captured ``inner`` times
        into a graph whose replays are timed with events around them (median of
        ``repeat``), so the times are the kernels' own, free of launch gaps and of the
        cost of events between kernels. Identical launches are measured once.
        ``cold``: one launch per replay, with the L2 cache flushed before each, as a kernel
        meets its weights inside a whole model whose weights outgrow the L2 (warm times
        hide weight reads that waste DRAM bandwidth)."""
        driver = driver_bindings()
        drv = self._drv
        measured: dict[tuple[Any, ...], float] = {}
        inner = 1 if cold else inner
        s = self._slots[0]
        with s.lock, self.active():
            stream = driver.CUstream(s.stream.handle)
            mode = driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
            start, end = drv.Event(), drv.Event()
            for launch in s.launches:
                key = (launch.name, launch.grid, launch.block, launch.args)
                if key in measured:
                    continue
                _check(driver.cuStreamBeginCapture(stream, mode), "cuStreamBeginCapture")
                try:
                    for _ in range(inner):
                        launch.function.prepared_async_call(launch.grid, launch.block, s.stream, *launch.args)
                except BaseException:
                    driver.cuStreamEndCapture(stream)
                    raise
                graph = _check(driver.cuStreamEndCapture(stream), "cuStreamEndCapture")
                exec_ = instantiate_graph(graph)
                samples = []
                try:
                    for r in range(repeat + 1):
                        if cold:
                            self._flush_l2_async(r)
                        self._hold_stream(50e-6)
                        start.record(s.stream)
                        _check(driver.cuGraphLaunch(exec_, stream), "cuGraphLaunch")
                        end.record(s.stream)
                        end.synchronize()
                        if r:  # the first replay warms up
                            samples.append(end.time_since(start) * 1e-3 / inner)
                finally:
                    driver.cuGraphExecDestroy(exec_)
                    driver.cuGraphDestroy(graph)
                measured[key] = float(np.median(samples))
        return [(launch.name, launch.node, measured[(launch.name, launch.grid, launch.block, launch.args)])
                for launch in s.launches]

    def device_time(self, use_graph: bool | None = None, repeat: int = 20) -> float:
        """Median GPU time in seconds of one whole plan on slot 0 (events around it on the
        stream): kernels plus whatever idle gaps the launches leave between them."""
        drv = self._drv
        graph = self.use_graph if use_graph is None else use_graph
        times = []
        s = self._slots[0]
        with s.lock, self.active():
            start, end = drv.Event(), drv.Event()
            for r in range(repeat + 1):
                start.record(s.stream)
                self._launch(s, graph)
                end.record(s.stream)
                end.synchronize()
                if r:
                    times.append(end.time_since(start) * 1e-3)
        return float(np.median(times))

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """Free device memory and the graphs now (otherwise at garbage collection)."""
        if self._context is None:
            return
        with contextlib.ExitStack() as held:
            for s in self._slots:
                held.enter_context(s.lock)
            with self.active():
                for s in self._slots:
                    if s.graph_exec is not None:
                        driver = driver_bindings()
                        driver.cuGraphExecDestroy(s.graph_exec)
                        driver.cuGraphDestroy(s.graph)
                        s.graph_exec = s.graph = None
                for allocation in self._allocations:
                    allocation.free()
                self._allocations = []
                self._flush = None
                # streams, pinned staging and the module go now, with the context current:
                # collected later on another thread they could not be freed
                for s in self._slots:
                    for host in [*s.in_host, *s.out_host, *s.count_host.values()]:
                        free = getattr(host.base, "free", None)
                        if free is not None:
                            free()
                    s.in_host, s.out_host, s.count_host, s.launches = [], [], {}, []
                    s.stream = None
                self._module = self._spin = None
            self._context = None  # type: ignore[assignment]


# Spins one thread until the global timer (ns) has advanced by the parameter: see _hold_stream.
_SPIN_PTX = """.version 6.0
.target sm_50
.address_size 64
.visible .entry visc_spin(.param .u64 ns)
{
    .reg .pred %p;
    .reg .b64 %rd<5>;
    ld.param.u64 %rd1, [ns];
    mov.u64 %rd2, %globaltimer;
$L_spin:
    mov.u64 %rd3, %globaltimer;
    sub.u64 %rd4, %rd3, %rd2;
    setp.lt.u64 %p, %rd4, %rd1;
    @%p bra $L_spin;
    ret;
}
"""


__all__ = ["CUDAExecutor", "device_compute_capability", "list_cuda_devices", "driver_bindings", "WEIGHT_ALIGN"]
