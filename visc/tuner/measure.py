"""Measurement: build a task's one-op module with a proposed schedule and time it on the device.

A proposal is compiled through the same pipeline as a model (its schedule set on the op, so
`vision-default-schedule` leaves it alone), run on seeded random inputs (never zeros) and
checked against the output of the default schedule. The time is the median over `repeat`
runs (more, up to `MAX_RUNS`, until the timed kernels add up to `min_ms`: a 6 us kernel
timed 5 times is known to +-6%, and the fastest of hundreds of such trials is a lucky one),
after `warmup` runs, of the kernels' device time (profiling events on OpenCL, the
host clock around each launch on the CPU backend). A schedule that fails to build or launch,
computes a different result, or runs past `timeout` gets a `Measurement` with an `error`
and no time: it is recorded as failed, never as fast.

`IsolatedMeasurer` runs a `Measurer` in a worker process, so a kernel that hangs (timeout) or
crashes the driver costs one trial and a worker restart, not the tuning run.

Several tuning processes can share one GPU: given the same `lock` file, their builds run
side by side while their timed runs take turns (an exclusive `flock` on the file), so no
kernel is timed while another process's kernels run.
"""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, FunctionType, ModuleOp
from xdsl.ir import BlockArgument
from xdsl.parser import Parser

from visc.backends.plan_extract import numpy_dtype
from visc.dialects import make_context
from visc.dialects.vision import ScheduleAttr, element_type_of, shape_of
from visc.errors import ViscError
from visc.runtime.bench import random_inputs
from visc.tuner.space import DeviceLimits, SearchSpace, task_op, task_space
from visc.weights import WeightStore


@dataclass
class Measurement:
    """One proposal's outcome: `seconds` (median) when it ran and matched, else `error`."""

    seconds: float | None
    error: str | None = None
    times: list[float] = field(default_factory=list)
    build_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.seconds is not None


def device_identity(target: str, device: str | None = None) -> str:
    """The name records are keyed by: target, platform and device model (never an index, so
    every GPU of one model shares records): ``opencl:PLATFORM:DEVICE``,
    ``cuda:NAME (sm_XY)``, ``cpu:ARCH:LLVM-CPU``."""
    if target == "opencl":
        from visc.runtime.devices import select_device

        dev = select_device(device)
        return f"opencl:{str(dev.platform.name).strip()}:{str(dev.name).strip()}"
    if target == "cuda":
        from visc.runtime.cuda import list_cuda_devices

        names = [n.split(": ", 1)[-1] for n in list_cuda_devices()]  # "0: NAME (sm_XY)": not the index
        index = int(device) if device and device.isdigit() else 0
        return f"cuda:{names[index] if index < len(names) else 'unknown'}"
    import platform

    import llvmlite.binding as llvm

    return f"cpu:{platform.machine()}:{llvm.get_host_cpu_name()}"


def constant_weights(module: ModuleOp, seed: int = 0) -> WeightStore:
    """Turn a task's conv2d weight argument into a `vision.weight` with seeded random values
    (returned), as it is in a model: schedules that repack weights at compile time
    (`vision-pack-weights`) need the weight to be a constant, and the packing must not be
    timed as part of the kernel."""
    from visc.dialects.vision import Conv2dOp, WeightOp

    store = WeightStore()
    op = task_op(module)
    if not isinstance(op, Conv2dOp) or not isinstance(op.ins[1], BlockArgument):
        return store
    arg = op.ins[1]
    fn = arg.block.parent_op()
    assert isinstance(fn, func.FuncOp)
    typ = arg.type
    rng = np.random.default_rng(seed)
    shape = shape_of(arg)
    fan_in = max(1, int(np.prod(shape[1:])))
    store["w"] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(numpy_dtype(element_type_of(arg)))
    weight = WeightOp("w", typ)
    arg.block.insert_op_before(weight, arg.block.first_op)
    arg.replace_all_uses_with(weight.result)
    index = arg.index
    arg.block.erase_arg(arg)
    inputs = list(fn.function_type.inputs.data)
    del inputs[index]
    fn.function_type = FunctionType.from_lists(inputs, list(fn.function_type.outputs.data))
    names = fn.attributes.get("vision.input_names")
    if isinstance(names, ArrayAttr):
        fn.attributes["vision.input_names"] = ArrayAttr([n for i, n in enumerate(names.data) if i != index])
    return store


def build(module: ModuleOp, schedule: dict[str, int] | None, target: str, device: str | None,
          device_type: str, weights: WeightStore | None = None) -> Any:
    """`module` (a task module) compiled for `target` with `schedule` on its op (None: the
    default heuristic's); returns a `visc.CompiledModel`. `weights`: the store of the
    module's `vision.weight`s (see `constant_weights`)."""
    from visc.compiler import finish_module, lowering_pipeline, run_passes

    module = module.clone()
    if schedule is not None:
        task_op(module).attributes["schedule"] = ScheduleAttr(schedule)
    specs = list(lowering_pipeline(target, device_type))
    store = WeightStore(dict(weights or {}))
    run_passes(module, specs, store)
    return finish_module(module, store, target, device)


def default_schedule_of(module: ModuleOp, device_type: str, target: str = "opencl") -> dict[str, int]:
    """The schedule `vision-default-schedule` (with its default options) gives a task's op."""
    from visc.passes.lowering.default_schedule import default_schedule

    return default_schedule(task_op(module), device_type, target=target)


def _kernel_seconds(model: Any, inputs: list[np.ndarray]) -> float:
    """The kernels' device time for one run. On CUDA the L2 is emptied first: a tuned kernel
    then pays for its weight reads as inside a model whose weights outgrow the L2 (ResNet-50:
    100 MB against the H100's 50 MB), instead of finding them left by the previous repeat.
    The flush comes after the input copies, so the start event follows a kernel (see
    `CUDAExecutor.profile_run`)."""
    from visc.runtime.cuda import CUDAExecutor

    ex = model.executor()
    runs = ex.profile_run(inputs, cold=True) if isinstance(ex, CUDAExecutor) else model.profile(inputs)
    return float(sum(t for _, t in runs))


def _close(got: np.ndarray, want: np.ndarray, rtol: float) -> bool:
    if got.shape != want.shape:
        return False
    if want.dtype.kind != "f":
        return bool(np.array_equal(got, want))
    scale = max(float(np.abs(want).max()) if want.size else 0.0, 1e-30)
    return bool(np.all(np.isfinite(got)) and float(np.abs(got.astype(np.float64) - want).max()) <= rtol * scale)


MAX_RUNS = 200  # timed runs one trial may take to reach min_ms


@contextmanager
def timing_turn(lock: str | None) -> Iterator[None]:
    """Hold the exclusive lock on the file `lock` (None: no lock) for the block."""
    if lock is None:
        yield
        return
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Measurer:
    """Times schedules of one task in this process (see the module docstring)."""

    def __init__(self, module_text: str, target: str = "opencl", device: str | None = None,
                 warmup: int = 1, repeat: int = 5, timeout: float = 20.0, seed: int = 0, rtol: float = 1e-4,
                 lock: str | None = None, min_ms: float = 0.0):
        self.min_seconds = min_ms * 1e-3
        self.module = Parser(make_context(), module_text).parse_module()
        self.weights = constant_weights(self.module, seed)
        self.target, self.device = target, device
        self.warmup, self.repeat, self.timeout, self.rtol, self.lock = warmup, repeat, timeout, rtol, lock
        self.limits = DeviceLimits.for_target(target, device)
        self.default_schedule = default_schedule_of(self.module, self.limits.device_type, target)
        default = build(self.module, self.default_schedule, target, device, self.limits.device_type, self.weights)
        self.inputs = random_inputs(default.plan.inputs, seed)
        self.reference = default.run(self.inputs)

    def space(self) -> SearchSpace:
        return task_space(self.module, self.limits)

    def measure(self, schedule: dict[str, int] | None, again: int = 0) -> Measurement:
        """Build, check and time one schedule (None: the default); every call is a fresh build
        and timing, whatever `again` (which only caches key on)."""
        start = time.perf_counter()
        try:
            model = build(self.module, schedule, self.target, self.device, self.limits.device_type, self.weights)
            outs = model.run(self.inputs)  # also builds the program
        except (ViscError, ValueError, RuntimeError) as e:
            return Measurement(None, f"build or launch failed: {e}")
        except Exception as e:  # driver errors (pyopencl.Error, ...) have no common base
            return Measurement(None, f"build or launch failed: {type(e).__name__}: {e}")
        build_s = time.perf_counter() - start
        bad = [i for i, (o, r) in enumerate(zip(outs, self.reference, strict=True)) if not _close(o, r, self.rtol)]
        if bad:
            return Measurement(None, f"wrong result: output {bad[0]} differs from the default schedule's", [], build_s)
        times: list[float] = []
        with timing_turn(self.lock):
            deadline = time.perf_counter() + self.timeout
            try:
                for _ in range(self.warmup):
                    _kernel_seconds(model, self.inputs)
                while len(times) < self.repeat or (sum(times) < self.min_seconds and len(times) < MAX_RUNS):
                    times.append(_kernel_seconds(model, self.inputs))
                    if time.perf_counter() > deadline:
                        return Measurement(None, f"timeout: over {self.timeout:g} s", times, build_s)
            except Exception as e:
                return Measurement(None, f"launch failed: {type(e).__name__}: {e}", times, build_s)
        return Measurement(float(np.median(times)), None, times, build_s)


# -- isolation ------------------------------------------------------------------------------


def _worker(conn: Any, args: tuple[Any, ...]) -> None:
    try:
        measurer = Measurer(*args)
        conn.send(("ready", measurer.default_schedule))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"))
        return
    while True:
        try:
            schedule = conn.recv()
        except EOFError:
            return
        if schedule == "stop":
            return
        conn.send(measurer.measure(schedule))


class IsolatedMeasurer:
    """A `Measurer` in a worker process; a hang past ``timeout`` (plus build time) or a crash
    is a failed measurement and the worker restarts."""

    def __init__(self, module_text: str, target: str = "opencl", device: str | None = None,
                 warmup: int = 1, repeat: int = 5, timeout: float = 20.0, seed: int = 0, rtol: float = 1e-4,
                 build_timeout: float = 120.0, lock: str | None = None, min_ms: float = 0.0):
        self._args = (module_text, target, device, warmup, repeat, timeout, seed, rtol, lock, min_ms)
        self.timeout = timeout + build_timeout
        self.module = Parser(make_context(), module_text).parse_module()
        self.limits = DeviceLimits.for_target(target, device)
        self._proc: Any = None
        self._conn: Any = None
        self.default_schedule = self._start()

    def _start(self) -> dict[str, int]:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, args=(child, self._args), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(self.timeout):
            self.close()
            raise ViscError("the measurement worker did not start in time")
        kind, payload = parent.recv()
        if kind != "ready":
            self.close()
            raise ViscError(f"the measurement worker failed to start: {payload}")
        return payload

    def space(self) -> SearchSpace:
        return task_space(self.module, self.limits)

    def measure(self, schedule: dict[str, int] | None, again: int = 0) -> Measurement:
        try:
            self._conn.send(schedule)
            if self._conn.poll(self.timeout):
                return self._conn.recv()
            error = f"timeout: no result in {self.timeout:g} s"
        except (EOFError, BrokenPipeError, ConnectionResetError):
            error = f"the measurement worker died (exit code {self._proc.exitcode})"
        self.close()
        self._start()
        return Measurement(None, error)

    def close(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send("stop")
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(1.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._proc = None

    def __enter__(self) -> IsolatedMeasurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Measurement", "Measurer", "IsolatedMeasurer", "build", "device_identity", "timing_turn"]
