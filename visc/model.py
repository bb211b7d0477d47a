"""`CompiledModel`: what `visc.compile` returns and `visc.load` restores.

It holds everything needed to run without the ONNX file or the compiler: the runtime plan,
kernel sources per target, the weights the plan uses, and the schedules chosen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from visc.errors import ViscError
from visc.runtime.device import Device, open_executor
from visc.runtime.plan import Inputs, Plan, normalize_inputs

if TYPE_CHECKING:
    from visc.runtime.pipeline import Pipeline


class CompiledModel:
    def __init__(
        self,
        plan: Plan,
        sources: Mapping[str, str],
        weights: Mapping[str, np.ndarray],
        target: str,
        device: str | None = None,
        schedules: Mapping[str, str] | None = None,
        report: Any = None,
        metadata: Mapping[str, Any] | None = None,
        native: Mapping[str, bytes] | None = None,
    ):
        self.plan = plan
        self.sources = dict(sources)
        self.weights = dict(weights)
        self.target = target
        self.device = device
        self.schedules = dict(schedules or {})
        self.report = report
        self.metadata = dict(metadata or {})
        # target -> object code of its kernels for the host that compiled them (today "cpu":
        # `visc.runtime.cpu_native`), so loading links instead of compiling
        self.native = dict(native or {})
        self._executor: Any = None
        self._closed = False

    # -- description ------------------------------------------------------------------

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.plan.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.plan.outputs]

    @property
    def source(self) -> str:
        return self.sources[self.target]

    def __repr__(self) -> str:
        ins = ", ".join(f"{t.name}{list(t.shape)}" for t in self.plan.inputs)
        return f"<visc.CompiledModel target={self.target} inputs=({ins}) launches={len(self.plan.launches)}>"

    # -- execution --------------------------------------------------------------------

    def executor(self) -> Any:
        """The default executor (one frame slot), created (program built, weights uploaded) on
        first use and kept."""
        if self._closed:
            raise ViscError("this model is closed (close() freed its device memory); load or compile it again "
                            "to run it")
        if self._executor is None:
            self._executor = self.make_executor()
        return self._executor

    def make_executor(self, slots: int = 1, threads: int | None = None) -> Device:
        """A new executor of this model (`visc.runtime.device.Device`) with ``slots`` frame
        slots (frames in flight at once, weights shared); ``threads``: the CPU backend's
        workers. The caller owns it: `close()` frees its device memory."""
        return open_executor(self.target, self.plan, self.sources, self.weights, device=self.device, slots=slots,
                             threads=threads, native=self.native)

    def memory(self) -> dict[str, int]:
        """The default executor's memory report (bytes of weights, arena and I/O per slot)."""
        return self.executor().memory()

    @property
    def device_name(self) -> str:
        return str(self.executor().device_name)

    def _normalize_inputs(self, inputs: Inputs, cast: bool = False) -> list[np.ndarray]:
        return normalize_inputs(self.plan.inputs, inputs, cast=cast)

    def run(self, inputs: Inputs, cast: bool = False) -> list[np.ndarray]:
        """Run one inference: numpy in (a list, a dict by input name, or one array), numpy out.
        An array of another dtype than the model's input is an error unless ``cast`` (see
        `visc.runtime.plan.normalize_inputs`)."""
        return self.executor().run(self._normalize_inputs(inputs, cast))

    def runner(self, inputs: Inputs, cast: bool = False) -> Callable[[], object]:
        """A call that runs one inference on `inputs`, checked and converted once: what timing
        loops call, so they time the executor and not the input checks."""
        arrays = self._normalize_inputs(inputs, cast)
        ex = self.executor()
        return lambda: ex.run(arrays)

    def benchmark(self, inputs: Inputs, warmup: int = 3, repeat: int = 20, cast: bool = False) -> dict[str, float]:
        """Latency statistics in seconds over `repeat` runs after `warmup` runs."""
        run = self.runner(inputs, cast)
        for _ in range(warmup):
            run()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        t = np.array(times)
        return {"median": float(np.median(t)), "min": float(t.min()), "mean": float(t.mean()), "repeat": repeat}

    def profile(self, inputs: Inputs, cast: bool = False) -> list[tuple[str, float]]:
        """Per-launch device time in seconds from profiling events, in plan order."""
        return self.executor().profile_run(self._normalize_inputs(inputs, cast))

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Free the default executor's device memory; running the model afterwards is an error
        (executors from `make_executor` belong to their callers and stay open)."""
        self._closed = True
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    def __enter__(self) -> CompiledModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- persistence ------------------------------------------------------------------

    def save(self, path: str) -> None:
        """Write one deployable file (see visc.runtime.artifact)."""
        from visc.runtime.artifact import save_artifact

        save_artifact(self, path)


def load(path: str, device: str | None = None) -> CompiledModel | Pipeline:
    """Load a compiled model saved by `CompiledModel.save`, or a pipeline saved by
    `Pipeline.save` (no ONNX file or compiler needed)."""
    from visc.runtime.artifact import load_artifact

    return load_artifact(path, device=device)
