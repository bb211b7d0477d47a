"""A model cut into stages that run as dataflow actors: `visc.pipeline(...)` builds one,
`visc.load` restores a saved one with the runtime alone (no compiler, no xDSL).

Each stage is a compiled model of its own (a plan, kernels for its target, the weights it
uses) whose inputs and outputs are named tensors: graph inputs, graph outputs, or the edges
`vision-partition` cut (`<producer node>:<result>`). A stage runs on an executor with one
frame slot per replica (its own arena and I/O buffers; weights shared), driven by the
threads engine (`visc.runtime.engine`): stage k computes frame n+1 while stage k+1 computes
frame n, so throughput approaches the slowest stage. Copies happen only at stage edges: a
stage copies its inputs in and its outputs out (pinned staging buffers on CUDA).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from visc.errors import ViscError
from visc.runtime.engine import ThreadEngine, format_stats
from visc.runtime.plan import TensorSpec, normalize_inputs

if TYPE_CHECKING:
    from visc.model import CompiledModel
    from visc.runtime.device import Device

Frame = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]


@dataclass
class StageInfo:
    """What a stage is, apart from its compiled model: the artifact's description of it."""

    index: int
    target: str
    device: str | None = None
    replicas: int = 1
    threads: int | None = None  # the CPU backend's threads per replica (None: all cores / replicas)
    nodes: int = 0  # compute ops of the model it runs
    first_node: str = ""
    last_node: str = ""

    @property
    def name(self) -> str:
        return f"stage{self.index} ({self.target})"


class ExecutorStage:
    """A stage as the engine drives it (`StageRunner`): an executor with one frame slot per
    replica, created on first use so a pipeline can be built, saved or inspected without
    touching a device."""

    def __init__(self, model: CompiledModel, info: StageInfo):
        self.model = model
        self.info = info
        self.name = info.name
        self.inputs = list(model.input_names)
        self.outputs = list(model.output_names)
        self.replicas = max(1, int(info.replicas))
        self._executor: Device | None = None

    def threads(self) -> int | None:
        """CPU threads per replica: as asked, else the cores shared among the replicas."""
        if self.info.threads:
            return self.info.threads
        if self.model.target == "cpu" and self.replicas > 1:
            import os

            return max(1, (os.cpu_count() or 1) // self.replicas)
        return None

    def executor(self) -> Device:
        if self._executor is None:
            self._executor = self.model.make_executor(slots=self.replicas, threads=self.threads())
        return self._executor

    def fire(self, slot: int, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.executor().run([inputs[n] for n in self.inputs], slot)
        return dict(zip(self.outputs, outputs, strict=True))

    def memory(self) -> dict[str, int]:
        return self.executor().memory()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None


class Pipeline:
    """Stages of one model, run as actors over bounded FIFOs (see the module docstring).

    ``run(inputs)`` runs one frame (the same results as the uncut model's `run`);
    ``map(frames)`` streams frames, yielding each frame's outputs in input order;
    ``stats()``, ``trace(path)`` and ``plot(path)`` show where the time went."""

    def __init__(self, stages: Sequence[CompiledModel], infos: Sequence[StageInfo], inputs: Sequence[TensorSpec],
                 outputs: Sequence[str], frames_in_flight: int = 4, metadata: Mapping[str, Any] | None = None):
        if len(stages) != len(infos) or not stages:
            raise ViscError("a pipeline needs one stage description per compiled stage")
        self.models = list(stages)
        self.infos = list(infos)
        self.inputs = list(inputs)
        self.output_names = list(outputs)
        self.frames_in_flight = max(1, int(frames_in_flight))
        self.metadata = dict(metadata or {})
        self.stages = [ExecutorStage(m, i) for m, i in zip(self.models, self.infos, strict=True)]
        self._engine: ThreadEngine | None = None
        self._closed = False

    # -- description ------------------------------------------------------------------

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    def __repr__(self) -> str:
        parts = " -> ".join(f"{s.name}[{len(s.model.plan.launches)} launches]" for s in self.stages)
        return f"<visc.Pipeline {parts}>"

    def describe(self) -> str:
        """One line per stage: its device, nodes, and the tensors crossing into and out of it."""
        lines = []
        for stage in self.stages:
            info = stage.info
            span = f"{info.first_node} .. {info.last_node}" if info.first_node else ""
            rep = f" x{stage.replicas}" if stage.replicas > 1 else ""
            lines.append(f"{stage.name}{rep}: {info.nodes} ops {span}; in {stage.inputs}; out {stage.outputs}")
        return "\n".join(lines)

    # -- running ----------------------------------------------------------------------

    def engine(self) -> ThreadEngine:
        """The threads engine (started on first use)."""
        if self._closed:
            raise ViscError("this pipeline is closed")
        if self._engine is None:
            for stage in self.stages:  # build programs and upload weights before timing starts
                stage.executor()
            self._engine = ThreadEngine(self.stages, self.output_names, capacity=self.frames_in_flight,
                                        frames_in_flight=self.frames_in_flight)
        return self._engine

    def _frame(self, inputs: Frame) -> dict[str, np.ndarray]:
        """The frame as {input name: array}, checked like `CompiledModel.run` checks inputs."""
        arrays = normalize_inputs(self.inputs, inputs)
        return dict(zip(self.input_names, arrays, strict=True))

    def _outputs(self, result: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return [result[n] for n in self.output_names]

    def run(self, inputs: Frame) -> list[np.ndarray]:
        """One frame through every stage: the outputs, in the model's output order."""
        return self._outputs(self.engine().run(self._frame(inputs)))

    def map(self, frames: Iterable[Frame]) -> Iterator[list[np.ndarray]]:
        """Stream ``frames``; yields each frame's outputs in input order, with at most
        ``frames_in_flight`` frames admitted at once (a fast producer waits)."""
        for result in self.engine().map(self._frame(f) for f in frames):
            yield self._outputs(result)

    def run_sequential(self, inputs: Frame) -> list[np.ndarray]:
        """The stages one after the other on this thread, no engine: the baseline a pipeline's
        throughput is compared with (same executors, same slot 0)."""
        if self._closed:
            raise ViscError("this pipeline is closed")
        token = self._frame(inputs)
        for stage in self.stages:
            token.update(stage.fire(0, token))
        return [token[n] for n in self.output_names]

    # -- looking at it ----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Frames/s and, per stage, busy/idle/blocked time and FIFO occupancy since the
        engine started or `reset_stats()`."""
        return self.engine().stats()

    def format_stats(self) -> str:
        return format_stats(self.stats())

    def reset_stats(self) -> None:
        self.engine().reset_stats()

    def trace(self, path: str) -> None:
        """Write a Chrome-trace/Perfetto timeline: one row per stage (replica), one bar per firing."""
        from visc.runtime.trace import chrome_trace

        engine = self.engine()
        chrome_trace(engine.firings(), engine.stage_names, path)

    def plot(self, path: str, frames: int = 20) -> None:
        """A PNG Gantt chart of the first ``frames`` frames since the last `reset_stats()`."""
        from visc.runtime.trace import gantt_png

        engine = self.engine()
        gantt_png(engine.firings(), engine.stage_names, path, frames=frames)

    def memory(self) -> dict[str, Any]:
        """Bytes per stage (weights + slots x (arena + I/O)) and in all."""
        per = [stage.memory() for stage in self.stages]
        return {"stages": per, "total": sum(m["total"] for m in per)}

    def benchmark(self, inputs: Frame, frames: int = 100, warmup: int = 8) -> dict[str, float]:
        """Steady-state throughput of the pipeline and of the same stages run one after the
        other, on ``frames`` copies of one input frame, after ``warmup`` frames."""
        frame = self._frame(inputs)
        for _ in self.map(frame for _ in range(warmup)):
            pass
        self.reset_stats()
        start = time.perf_counter()
        for _ in self.map(frame for _ in range(frames)):
            pass
        piped = time.perf_counter() - start
        for _ in range(min(warmup, 3)):
            self.run_sequential(frame)
        start = time.perf_counter()
        for _ in range(frames):
            self.run_sequential(frame)
        sequential = time.perf_counter() - start
        return {"frames": frames, "pipelined_fps": frames / piped, "sequential_fps": frames / sequential,
                "speedup": sequential / piped}

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop the engine (frames in flight are dropped) and free every stage's executor."""
        if self._closed:
            return
        self._closed = True
        if self._engine is not None:
            self._engine.close()
        for stage in self.stages:
            stage.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- persistence ------------------------------------------------------------------

    def description(self) -> dict[str, Any]:
        """The pipeline's own part of the artifact (the stages' models are stored beside it)."""
        return {"stages": [asdict(i) for i in self.infos], "inputs": [asdict(t) for t in self.inputs],
                "outputs": self.output_names, "frames_in_flight": self.frames_in_flight, "metadata": self.metadata}

    @staticmethod
    def from_description(data: Mapping[str, Any], models: Sequence[CompiledModel]) -> Pipeline:
        infos = [StageInfo(**d) for d in data["stages"]]
        inputs = [TensorSpec(d["name"], tuple(d["shape"]), d["dtype"], d.get("count")) for d in data["inputs"]]
        return Pipeline(models, infos, inputs, data["outputs"], frames_in_flight=data.get("frames_in_flight", 4),
                        metadata=data.get("metadata", {}))

    def save(self, path: str) -> None:
        """One file: every stage's plan, kernels and weights, and how the stages connect."""
        from visc.runtime.artifact import save_pipeline

        save_pipeline(self, path)

    def to_json(self) -> str:
        return json.dumps(self.description())


__all__ = ["Pipeline", "StageInfo", "ExecutorStage"]
