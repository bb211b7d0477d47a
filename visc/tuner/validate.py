"""In-model validation of records: keep a record only where the model runs its op faster with it.

A record wins its study with the op alone, timed on the same inputs again and again. Inside a
model the op's kernel runs between others: its inputs come from the previous kernel (warm in
cache or not), its weights compete with the rest of the model's for the cache, and on a CPU
device the threads of the neighbouring kernels shape its own. On PoCL some records lost to the
heuristic that way (SqueezeNet's first conv: 614 against 461 us in the model).

`validate_records` compiles the model twice, with the records and with the heuristic only,
profiles both in alternation (`CompiledModel.profile`: every launch's device time), and
compares, per task that has a record, the summed time of the launches of the task's ONNX
nodes (every launch of a node: split-K convs launch two kernels). A record is kept when its
median is below the heuristic's. The whole model is also timed both ways by the wall clock
(`Validation.model_ms`): the profile judges each record, but only the wall time says whether
the records pay off end to end (on PoCL the two disagreed: the profile's verdicts did not
move SqueezeNet's latency). `mark_verdicts` writes the verdicts into an Optuna records
database, where `best_records` then skips a rejected schedule; `export_kept` writes the kept
records of any source (a database, an export, the shipped files) as a new export.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

IN_MODEL_ATTR = "in_model"  # study attribute: {"schedule", "record_us", "default_us", "model"}


@dataclass
class Verdict:
    """One task's record against the heuristic, both timed inside the model."""

    key: str
    workload: str
    nodes: int
    schedule: dict[str, int]
    record_us: float
    default_us: float

    @property
    def kept(self) -> bool:
        return self.record_us < self.default_us

    @property
    def speedup(self) -> float:
        return self.default_us / self.record_us if self.record_us else 0.0


@dataclass
class Validation:
    """The verdicts, and the whole model's median wall time with and without the records."""

    verdicts: list[Verdict]
    model_ms: float
    default_model_ms: float

    @property
    def speedup(self) -> float:
        return self.default_model_ms / self.model_ms if self.model_ms else 0.0


def node_seconds(launch_nodes: Sequence[str], profile: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Seconds per ONNX node of one profiled run (launches of one node summed)."""
    out: dict[str, float] = defaultdict(float)
    for node, (_, seconds) in zip(launch_nodes, profile, strict=True):
        out[node] += seconds
    return dict(out)


def judge(tasks: Sequence[Any], schedules: dict[str, dict[str, int]],
          tuned_runs: Sequence[dict[str, float]], plain_runs: Sequence[dict[str, float]]) -> list[Verdict]:
    """Verdicts for the tasks with a record, from per-node seconds of each profiled run."""
    verdicts = []
    for task in tasks:
        sched = schedules.get(task.key)
        if sched is None:
            continue

        def median_us(runs: Sequence[dict[str, float]], task: Any = task) -> float:
            return statistics.median(sum(run.get(n, 0.0) for n in task.nodes) for run in runs) * 1e6

        verdicts.append(Verdict(task.key, task.describe(), task.weight, sched, median_us(tuned_runs),
                                median_us(plain_runs)))
    return verdicts


def validate_records(model: str, records: str | os.PathLike[str] | None, target: str = "opencl",
                     device: str | None = None, repeat: int = 20, input_shapes: dict[str, Any] | None = None,
                     progress: Callable[[int], None] | None = None) -> Validation:
    """Profile and time `model` with `records` (None: the shipped ones) and with the heuristic
    only, `repeat` runs each in alternation; one verdict per task a record covers."""
    from visc.compiler import compile_model
    from visc.errors import ViscError
    from visc.runtime.bench import random_inputs
    from visc.tuner.records import RecordBook
    from visc.tuner.workload import model_tasks

    book = RecordBook.load(records, target, device) if records is not None else RecordBook.shipped(target, device)
    if book is None or not book.schedules:
        raise ViscError(f"no records for the {target} device to validate"
                        + (f" in {os.fspath(records)}" if records is not None else " among the shipped ones"))
    tuned = compile_model(model, target=target, device=device, records=book, input_shapes=input_shapes)
    plain = compile_model(model, target=target, device=device, records=False, input_shapes=input_shapes)
    inputs = random_inputs(tuned.plan.inputs, seed=0)
    tuned_nodes = [launch.node for launch in tuned.plan.launches]
    plain_nodes = [launch.node for launch in plain.plan.launches]
    for m in (tuned, plain):
        m.profile(inputs)  # warm-up: first-run allocations and code loading
        m.run(inputs)
    tuned_runs, plain_runs = [], []
    walls: dict[str, list[float]] = {"tuned": [], "plain": []}
    for i in range(repeat):
        tuned_runs.append(node_seconds(tuned_nodes, tuned.profile(inputs)))
        plain_runs.append(node_seconds(plain_nodes, plain.profile(inputs)))
        for name, m in (("tuned", tuned), ("plain", plain)):
            start = time.perf_counter()
            m.run(inputs)
            walls[name].append(time.perf_counter() - start)
        if progress is not None:
            progress(i + 1)
    tasks = model_tasks(model, input_shapes)
    return Validation(judge(tasks, book.schedules, tuned_runs, plain_runs),
                      statistics.median(walls["tuned"]) * 1e3, statistics.median(walls["plain"]) * 1e3)


def mark_verdicts(records: str | os.PathLike[str], device: str, verdicts: Sequence[Verdict], model: str) -> int:
    """Write each verdict on every study of its (device, key) in an Optuna records database;
    returns how many studies were marked."""
    from visc.tuner.search import _optuna, open_storage

    optuna = _optuna()
    storage = open_storage(records)
    by_key = {v.key: v for v in verdicts}
    marked = 0
    for summary in optuna.get_all_study_summaries(storage):
        attrs = summary.user_attrs
        v = by_key.get(attrs.get("key", ""))
        if v is None or attrs.get("device") != device:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        study.set_user_attr(IN_MODEL_ATTR, {"schedule": v.schedule, "record_us": v.record_us,
                                            "default_us": v.default_us, "model": os.path.basename(model)})
        marked += 1
    return marked


def rejected(attrs: dict[str, Any], schedule: dict[str, int]) -> bool:
    """Whether a study's attributes say `schedule` lost to the heuristic inside a model."""
    verdict = attrs.get(IN_MODEL_ATTR)
    return (isinstance(verdict, dict) and verdict.get("schedule") == schedule
            and float(verdict.get("record_us", 0.0)) >= float(verdict.get("default_us", 0.0)))


__all__ = ["Verdict", "Validation", "IN_MODEL_ATTR", "node_seconds", "judge", "validate_records", "mark_verdicts", "rejected"]
