"""`CompiledModel`: what `visc.compile` returns and `visc.load` restores.

It holds everything needed to run without the ONNX file or the compiler: the runtime plan,
kernel sources per target, the weights the plan uses, and the schedules chosen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from visc.errors import InputShapeError
from visc.runtime.plan import Plan


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
    ):
        self.plan = plan
        self.sources = dict(sources)
        self.weights = dict(weights)
        self.target = target
        self.device = device
        self.schedules = dict(schedules or {})
        self.report = report
        self.metadata = dict(metadata or {})
        self._executor: Any = None

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
        """The device executor, created (program built, weights uploaded) on first use."""
        if self._executor is None:
            if self.target != "cpu" and self.metadata.get("cpu_kernels"):  # a mixed plan (placement)
                from visc.runtime.mixed import MixedExecutor

                self._executor = MixedExecutor(self.plan, self.target, self.sources[self.target], self.sources["cpu"],
                                               self.weights, set(self.metadata["cpu_kernels"]), device=self.device,
                                               writes=self.metadata.get("launch_writes"))
            elif self.target == "opencl":
                from visc.backends.opencl import OpenCLExecutor

                self._executor = OpenCLExecutor(self.plan, self.sources["opencl"], self.weights, device=self.device)
            elif self.target == "cuda":
                from visc.backends.cuda import CUDAExecutor

                self._executor = CUDAExecutor(self.plan, self.sources["cuda"], self.weights, device=self.device)
            elif self.target == "cpu":
                from visc.backends.cpu import CPUExecutor

                self._executor = CPUExecutor(self.plan, self.sources["cpu"], self.weights)
            else:
                raise InputShapeError(f"no executor for target '{self.target}'")

        return self._executor

    @property
    def device_name(self) -> str:
        return str(self.executor().device_name)

    def _normalize_inputs(
        self, inputs: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]
    ) -> list[np.ndarray]:
        specs = self.plan.inputs
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, Mapping):
            missing = [t.name for t in specs if t.name not in inputs]
            extra = [k for k in inputs if k not in {t.name for t in specs}]
            if missing or extra:
                raise InputShapeError(
                    f"inputs do not match the model: missing {missing}, unexpected {extra}; "
                    f"the model takes {[t.name for t in specs]}"
                )
            inputs = [inputs[t.name] for t in specs]
        arrays = list(inputs)
        if len(arrays) != len(specs):
            raise InputShapeError(f"the model takes {len(specs)} inputs {[t.name for t in specs]}, got {len(arrays)}")
        result = []
        for spec, arr in zip(specs, arrays, strict=True):
            arr = np.asarray(arr)
            if tuple(arr.shape) != tuple(spec.shape):
                raise InputShapeError(
                    f"input '{spec.name}' has shape {list(arr.shape)} but the model was compiled for "
                    f"{list(spec.shape)}; recompile with --input-shape {spec.name}="
                    f"{','.join(str(d) for d in arr.shape)} if the model allows it"
                )
            result.append(np.require(arr, dtype=np.dtype(spec.dtype), requirements="C"))
        return result

    def run(self, inputs: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one inference: numpy in (a list, a dict by input name, or one array), numpy out."""
        return self.executor().run(self._normalize_inputs(inputs))

    def runner(self, inputs: Any) -> Callable[[], object]:
        """A call that runs one inference on `inputs`, checked and converted once: what timing
        loops call, so they time the executor and not the input checks."""
        arrays = self._normalize_inputs(inputs)
        ex = self.executor()
        return lambda: ex.run(arrays)

    def benchmark(self, inputs: Any, warmup: int = 3, repeat: int = 20) -> dict[str, float]:
        """Latency statistics in seconds over `repeat` runs after `warmup` runs."""
        run = self.runner(inputs)
        for _ in range(warmup):
            run()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        t = np.array(times)
        return {"median": float(np.median(t)), "min": float(t.min()), "mean": float(t.mean()), "repeat": repeat}

    def profile(self, inputs: Any) -> list[tuple[str, float]]:
        """Per-launch device time in seconds from profiling events, in plan order."""
        return self.executor().profile_run(self._normalize_inputs(inputs))

    # -- persistence ------------------------------------------------------------------

    def save(self, path: str) -> None:
        """Write one deployable file (see visc.runtime.artifact)."""
        from visc.runtime.artifact import save_artifact

        save_artifact(self, path)


def load(path: str, device: str | None = None) -> CompiledModel:
    """Load a compiled model saved by `CompiledModel.save` (no ONNX file or compiler needed)."""
    from visc.runtime.artifact import load_artifact

    return load_artifact(path, device=device)
