"""A model cut into stages that run as dataflow actors: `visc.pipeline(...)` builds one,
`visc.load` restores a saved one with the runtime alone (no compiler, no xDSL).

Each stage is a compiled model of its own (a plan, kernels for its target, the weights it
uses) whose inputs and outputs are named tensors: graph inputs, graph outputs, or the edges
`vision-partition` cut (`<producer node>:<result>`). A stage runs on an executor with one
frame slot per replica (its own arena and I/O buffers; weights shared), driven by the
threads engine (`visc.runtime.engine`): stage k computes frame n+1 while stage k+1 computes
frame n, so throughput approaches the slowest stage. Copies happen only at stage edges: a
stage copies its inputs in and its outputs out (pinned staging buffers on CUDA).
``engine="ray"`` runs each stage replica as a Ray actor instead, on the node its ``ray``
options ask for (`visc.runtime.ray_engine`), with the same calls, order, stats and trace.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from visc.errors import ViscError
from visc.runtime.device import Resident, memory_report
from visc.runtime.engine import ThreadEngine, format_stats

if TYPE_CHECKING:
    from visc.runtime.ray_engine import RayEngine
from visc.runtime.plan import TensorSpec, normalize_inputs

if TYPE_CHECKING:
    from visc.model import CompiledModel
    from visc.runtime.device import Device

Frame = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]
ENGINES = ("threads", "ray")


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
    ray: dict[str, Any] | None = None  # Ray actor options (engine="ray"): resources, num_gpus...

    @property
    def name(self) -> str:
        return f"stage{self.index} ({self.target})"


class ExecutorStage:
    """A stage as the engine drives it (`StageRunner`): an executor with one frame slot per
    replica, created on first use so a pipeline can be built, saved or inspected without
    touching a device.

    An output whose every consumer is a stage on the same GPU (same target and device) stays
    on the device (`Resident`): the consumer copies it device to device. The slot holding it
    is not reused until the consumers release it, so such a stage has two slots per replica
    and takes whichever is free: it computes the next frame while the next stage copies."""

    def __init__(self, model: CompiledModel, info: StageInfo):
        self.model = model
        self.info = info
        self.name = info.name
        self.inputs = list(model.input_names)
        self.outputs = list(model.output_names)
        self.replicas = max(1, int(info.replicas))
        self.cores: int | None = None  # threads per replica unless the stage asks (share_cores)
        self.keep = [False] * len(self.outputs)  # outputs left on the device
        self.users = [0] * len(self.outputs)  # stages reading each output
        self._executor: Device | None = None
        self._free: queue.Queue[int] | None = None  # free slots, when outputs stay on the device
        self._closed = False

    @property
    def space(self) -> tuple[str, str | None] | None:
        """Stages of equal space run in one device memory (one GPU context); None: the host."""
        if self.model.target in ("opencl", "cuda") and not self.model.plan.on_cpu():
            return (self.model.target, self.model.device)
        return None

    def plan_residency(self, consumers: Mapping[str, Sequence[ExecutorStage]], finals: set[str]) -> None:
        """Decide which outputs stay on the device: those only stages of this space read."""
        for j, name in enumerate(self.outputs):
            users = consumers.get(name, ())
            self.users[j] = len(users)
            self.keep[j] = (self.space is not None and name not in finals and bool(users)
                            and all(u.space == self.space for u in users))

    def threads(self) -> int | None:
        """CPU threads per replica: as asked, else this replica's share of the cores
        (`share_cores`)."""
        return self.info.threads or self.cores

    @property
    def on_host(self) -> bool:
        """Runs its kernels on the CPU (and its workers spin there)."""
        return self.model.target == "cpu"

    def executor(self) -> Device:
        if self._executor is None:
            resident = any(self.keep)
            slots = self.replicas * (2 if resident else 1)
            self._executor = self.model.make_executor(slots=slots, threads=self.threads())
            if resident:
                self._free = queue.Queue()
                for k in range(slots):
                    self._free.put(k)
        return self._executor

    def _take_slot(self) -> int:
        assert self._free is not None
        while True:
            if self._closed:
                raise ViscError(f"{self.name} is closed")
            try:
                return self._free.get(timeout=0.05)
            except queue.Empty:
                continue

    def _hold(self, slot: int, outputs: Sequence[Any]) -> None:
        """Give ``slot`` back once every consumer released the outputs it holds."""
        assert self._free is not None
        free = self._free
        held = [(j, o) for j, o in enumerate(outputs) if isinstance(o, Resident)]
        if not held:
            free.put(slot)
            return
        left = [len(held)]
        lock = threading.Lock()

        def one_done() -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                free.put(slot)

        for j, out in held:
            out.users, out.done = self.users[j], one_done

    def fire(self, slot: int, inputs: dict[str, Any], release: bool = True) -> dict[str, Any]:
        """One frame; ``release``: this stage is done with the `Resident` inputs it read."""
        ex = self.executor()
        values = [inputs[n] for n in self.inputs]
        resident_in = [v for v in values if isinstance(v, Resident)]
        if self._free is None and not resident_in:
            outputs: list[Any] = ex.run(values, slot)
        elif hasattr(ex, "run_resident"):
            if self._free is not None:
                slot = self._take_slot()
            try:
                outputs = ex.run_resident(values, slot, self.keep)
            except BaseException:
                if self._free is not None:
                    self._free.put(slot)
                raise
            if self._free is not None:
                self._hold(slot, outputs)
        else:  # a host stage given a device tensor (by a caller driving stages by hand)
            outputs = ex.run([v.fetch() if isinstance(v, Resident) else v for v in values], slot)
        if release:
            for v in resident_in:
                v.release()
        return dict(zip(self.outputs, outputs, strict=True))

    def memory(self) -> dict[str, int]:
        return self.executor().memory()

    def close(self) -> None:
        self._closed = True
        if self._executor is not None:
            self._executor.close()
            self._executor = None


class ModelStage:
    """Builds a stage inside a Ray actor from its artifact bytes, with the runtime alone."""

    def __init__(self, blob: bytes, info: StageInfo):
        self.blob, self.info = blob, info

    def __call__(self) -> ExecutorStage:
        from visc.runtime.artifact import model_from_bytes

        return ExecutorStage(model_from_bytes(self.blob, self.info.device), self.info)


def share_cores(stages: Sequence[ExecutorStage], cores: int | None = None) -> None:
    """Threads for each CPU stage replica that did not ask for a number: the cores left after
    one per GPU stage replica (its host thread) and one for the caller, shared evenly. The
    CPU workers spin between launches, so stages that each took every core would take turns
    on them instead of overlapping."""
    cores = cores or os.cpu_count() or 1
    host = [s for s in stages if s.on_host and not s.info.threads]
    if not host:
        return
    asked = sum(s.info.threads * s.replicas for s in stages if s.on_host and s.info.threads)
    others = sum(s.replicas for s in stages if not s.on_host)
    free = cores - asked - (others + 1 if others else 0)
    replicas = sum(s.replicas for s in host)
    for s in host:
        s.cores = max(1, free // replicas)


def _drop(values: Iterable[Any]) -> None:
    for v in values:
        if isinstance(v, Resident):
            v.drop()


class Pipeline:
    """Stages of one model, run as actors over bounded FIFOs (see the module docstring).

    ``run(inputs)`` runs one frame (the same results as the uncut model's `run`);
    ``map(frames)`` streams frames, yielding each frame's outputs in input order;
    ``stats()``, ``trace(path)`` and ``plot(path)`` show where the time went."""

    def __init__(self, stages: Sequence[CompiledModel], infos: Sequence[StageInfo], inputs: Sequence[TensorSpec],
                 outputs: Sequence[str], frames_in_flight: int = 4, metadata: Mapping[str, Any] | None = None,
                 engine: str = "threads", ray_address: str | None = None):
        if len(stages) != len(infos) or not stages:
            raise ViscError("a pipeline needs one stage description per compiled stage")
        if engine not in ENGINES:
            raise ViscError(f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
        self.engine_kind = engine
        self.ray_address = ray_address
        self.models = list(stages)
        self.infos = list(infos)
        self.inputs = list(inputs)
        self.output_names = list(outputs)
        self.frames_in_flight = max(1, int(frames_in_flight))
        self.metadata = dict(metadata or {})
        self.stages = [ExecutorStage(m, i) for m, i in zip(self.models, self.infos, strict=True)]
        consumers: dict[str, list[ExecutorStage]] = {}
        for stage in self.stages:
            for name in stage.inputs:
                consumers.setdefault(name, []).append(stage)
        for stage in self.stages:
            stage.plan_residency(consumers, set(self.output_names))
        share_cores(self.stages)
        self._engine: ThreadEngine | RayEngine | None = None
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

    def _check_open(self) -> None:
        if self._closed:
            raise ViscError("this pipeline is closed (close() stopped its engine and freed its devices); "
                            "load or build it again to run it")

    def engine(self) -> ThreadEngine | RayEngine:
        """The engine (started on first use): threads in this process, or Ray actors."""
        self._check_open()
        if self._engine is None:
            if self.engine_kind == "ray":
                self._engine = self._ray_engine()
            else:
                for stage in self.stages:  # build programs and upload weights before timing starts
                    stage.executor()
                self._engine = ThreadEngine(self.stages, self.output_names, capacity=self.frames_in_flight,
                                            frames_in_flight=self.frames_in_flight)
        return self._engine

    def _ray_engine(self) -> RayEngine:
        from visc.runtime.artifact import model_bytes
        from visc.runtime.ray_engine import RayEngine, RayStage

        stages = [RayStage(s.name, s.inputs, s.outputs, ModelStage(model_bytes(s.model), s.info), s.replicas,
                           dict(s.info.ray or {})) for s in self.stages]
        engine = RayEngine(stages, self.output_names, frames_in_flight=self.frames_in_flight,
                           address=self.ray_address)
        try:
            engine.ready()  # every actor has loaded its stage before the first frame
        except BaseException:
            engine.close()
            raise
        return engine

    def _frame(self, inputs: Frame, cast: bool = False) -> dict[str, np.ndarray]:
        """The frame as {input name: array}, checked (and with ``cast``, converted) like
        `CompiledModel.run` checks inputs."""
        arrays = normalize_inputs(self.inputs, inputs, cast=cast)
        return dict(zip(self.input_names, arrays, strict=True))

    def _outputs(self, result: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return [result[n] for n in self.output_names]

    def run(self, inputs: Frame, cast: bool = False) -> list[np.ndarray]:
        """One frame through every stage: the outputs, in the model's output order. An array of
        another dtype than the model's input is an error unless ``cast`` (as `CompiledModel.run`)."""
        return self._outputs(self.engine().run(self._frame(inputs, cast)))

    def map(self, frames: Iterable[Frame], cast: bool = False) -> Iterator[list[np.ndarray]]:
        """Stream ``frames``; yields each frame's outputs in input order, with at most
        ``frames_in_flight`` frames admitted at once (a fast producer waits)."""
        for result in self.engine().map(self._frame(f, cast) for f in frames):
            yield self._outputs(result)

    def run_sequential(self, inputs: Frame, cast: bool = False) -> list[np.ndarray]:
        """The stages one after the other on this thread, no engine: the baseline a pipeline's
        throughput is compared with (same executors, same slot 0). On the Ray engine: one
        frame at a time through the actors (this host may lack the stages' devices)."""
        self._check_open()
        if self.engine_kind == "ray":
            return self.run(inputs, cast)
        token: dict[str, Any] = dict(self._frame(inputs, cast))
        for stage in self.stages:
            token.update(stage.fire(0, token))
        return [token[n] for n in self.output_names]

    def stage_seconds(self, inputs: Frame, repeat: int = 20, warmup: int = 3, cast: bool = False) -> list[float]:
        """Each stage's own time per frame, alone on this thread (its inputs from one
        sequential run): the rates a pipeline's throughput is bounded by."""
        self._check_open()
        token: dict[str, Any] = dict(self._frame(inputs, cast))
        seconds = []
        for stage in self.stages:
            args = {n: token[n] for n in stage.inputs}
            start = time.perf_counter()
            for i in range(warmup + repeat):
                if i == warmup:
                    start = time.perf_counter()
                out = stage.fire(0, args, release=False)
                if i + 1 < warmup + repeat:
                    _drop(out.values())
            seconds.append((time.perf_counter() - start) / repeat)
            token.update(out)
        _drop(token.values())
        return seconds

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
        """Bytes per stage (weights + slots x (arena + I/O)) and in all; on the Ray engine, as
        the plans say (each replica an actor with one slot and its own weights), since this
        host may lack the stages' devices."""
        if self.engine_kind == "ray":
            per = []
            for stage in self.stages:
                plan, copies = stage.model.plan, stage.replicas
                weights = sum(b.nbytes for b in plan.buffers if b.kind == "weight")
                one = memory_report(weights, plan.arena_size, plan.io_bytes(), 1)
                per.append({**one, "weights": copies * one["weights"], "slots": copies, "total": copies * one["total"]})
        else:
            per = [stage.memory() for stage in self.stages]
        return {"stages": per, "total": sum(m["total"] for m in per)}

    def benchmark(self, inputs: Frame, frames: int = 100, warmup: int = 8, sequential: bool = True,
                  cast: bool = False) -> dict[str, float]:
        """Steady-state throughput of the pipeline and (``sequential``) of the same stages run
        one after the other, on ``frames`` copies of one input frame, after ``warmup`` frames."""
        frame = self._frame(inputs, cast)
        for _ in self.map(frame for _ in range(warmup)):
            pass
        self.reset_stats()
        start = time.perf_counter()
        for _ in self.map(frame for _ in range(frames)):
            pass
        piped = time.perf_counter() - start
        if not sequential:
            return {"frames": frames, "pipelined_fps": frames / piped}
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
                "outputs": self.output_names, "frames_in_flight": self.frames_in_flight, "metadata": self.metadata,
                "engine": self.engine_kind, "ray_address": self.ray_address}

    @staticmethod
    def from_description(data: Mapping[str, Any], models: Sequence[CompiledModel]) -> Pipeline:
        infos = [StageInfo(**d) for d in data["stages"]]
        inputs = [TensorSpec(d["name"], tuple(d["shape"]), d["dtype"], d.get("count")) for d in data["inputs"]]
        return Pipeline(models, infos, inputs, data["outputs"], frames_in_flight=data.get("frames_in_flight", 4),
                        metadata=data.get("metadata", {}), engine=data.get("engine", "threads"),
                        ray_address=data.get("ray_address"))

    def save(self, path: str) -> None:
        """One file: every stage's plan, kernels and weights, and how the stages connect."""
        from visc.runtime.artifact import save_pipeline

        save_pipeline(self, path)


__all__ = ["Pipeline", "StageInfo", "ExecutorStage", "ModelStage", "ENGINES"]
