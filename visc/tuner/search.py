"""Search: one Optuna study per (device, workload key, sampler), driven by ask/tell.

Samplers: TPE (multivariate, its random startup tied to the budget) or random search, both
through the same loop and measurement, so their curves compare. Every trial proposes one
value per key of the task's `SearchSpace`:

* a proposal the space rejects is told PRUNED (TPE ranks pruned trials below every completed
  one, so it learns to avoid the region) and does not count against the budget;
* a proposal already measured is told the earlier result without measuring again;
* a failed measurement (build, launch, wrong result, timeout) is told FAIL, with the reason
  in the trial's ``error`` attribute: it never becomes the best.

The first trial of a new study is the default schedule (when the space can express it), and
the study records the default's time, so a result can only improve on the heuristic.

Storage is Optuna's RDB storage: each state change is its own committed transaction, so a
process killed at any moment loses at most its trial in flight, which stays RUNNING and is
ignored. `resume=True` continues a study until it has `trials` measured trials.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from visc.errors import ViscError
from visc.tuner.measure import Measurement
from visc.tuner.space import SearchSpace
from visc.tuner.workload import SPACE_VERSION, Task

SAMPLERS = ("tpe", "random")


class MeasurerLike(Protocol):
    default_schedule: dict[str, int]

    def space(self) -> SearchSpace: ...

    def measure(self, schedule: dict[str, int] | None) -> Measurement: ...


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ViscError("schedule search needs Optuna: pip install 'visc[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(records: str | os.PathLike[str]) -> str:
    """A path -> a SQLite URL; a URL (``postgresql://...``) is used as it is."""
    text = os.fspath(records)
    return text if "://" in text else f"sqlite:///{os.path.abspath(text)}"


def open_storage(records: str | os.PathLike[str]) -> Any:
    return _optuna().storages.RDBStorage(storage_url(records))


def study_name(device_id: str, key: str, sampler: str) -> str:
    return f"{device_id}|{key}|{sampler}"


def startup_trials(budget: int) -> int:
    """Random trials before TPE models the results: a quarter of the budget, 3 to 10."""
    return max(3, min(10, budget // 4))


def make_sampler(name: str, budget: int, seed: int | None = None) -> Any:
    optuna = _optuna()
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(n_startup_trials=startup_trials(budget), multivariate=True,
                                              seed=seed)
    raise ViscError(f"unknown sampler '{name}' (known: {', '.join(SAMPLERS)})")


@dataclass
class TuneResult:
    """What one task's study holds after a run."""

    key: str
    study: str
    best_seconds: float | None
    best_schedule: dict[str, int] | None
    default_seconds: float | None
    measured: int
    failed: int
    pruned: int

    @property
    def speedup(self) -> float | None:
        if self.best_seconds and self.default_seconds:
            return self.default_seconds / self.best_seconds
        return None


def _signature(schedule: dict[str, int]) -> str:
    return json.dumps(schedule, sort_keys=True)


def tune_task(
    task: Task,
    measurer: MeasurerLike,
    storage: Any,
    device_id: str,
    trials: int,
    sampler: str = "tpe",
    seed: int | None = None,
    resume: bool = False,
    on_trial: Callable[[int, float | None], None] | None = None,
) -> TuneResult:
    """Run `task`'s study until it has `trials` measured trials (see the module docstring);
    `on_trial(measured, best_seconds)` reports progress after each measurement."""
    optuna = _optuna()
    from optuna.trial import TrialState

    name = study_name(device_id, task.key, sampler)
    if isinstance(storage, str | os.PathLike):
        storage = open_storage(storage)
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                    sampler=make_sampler(sampler, trials, seed), load_if_exists=resume)
    except optuna.exceptions.DuplicatedStudyError:
        raise ViscError(f"the records already hold a study of {task.describe()} on {device_id} ({sampler}); "
                        "pass --resume to continue it") from None
    space = measurer.space()
    default = dict(measurer.default_schedule)
    if "default_seconds" not in study.user_attrs:
        for k, v in {"device": device_id, "key": task.key, "sampler": sampler, "workload": task.describe(),
                     "space_version": SPACE_VERSION, "module": task.module_text,
                     "default_schedule": default}.items():
            study.set_user_attr(k, v)
        base = measurer.measure(default)
        study.set_user_attr("default_seconds", base.seconds)
        if all(v in space.choices.get(k, [v]) for k, v in default.items()):
            study.enqueue_trial({k: default.get(k, choices[0]) for k, choices in space.choices.items()},
                                user_attrs={"default": True})

    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
    seen = {_signature(t.params): t for t in finished}
    measured = sum(1 for t in finished if "duplicate_of" not in t.user_attrs)
    complete = [t.value for t in finished if t.state == TrialState.COMPLETE]
    best = min(complete) if complete else None
    if on_trial is not None:
        on_trial(measured, best)
    asks = 0
    while measured < trials and asks < 50 * trials:
        asks += 1
        trial = study.ask()
        schedule = {k: trial.suggest_categorical(k, choices) for k, choices in space.choices.items()}
        problems = space.problems(schedule)
        if problems:
            trial.set_user_attr("invalid", "; ".join(problems))
            study.tell(trial, state=TrialState.PRUNED)
            continue
        earlier = seen.get(_signature(schedule))
        if earlier is not None:
            trial.set_user_attr("duplicate_of", earlier.number)
            if earlier.state == TrialState.COMPLETE:
                study.tell(trial, earlier.value)
            else:
                trial.set_user_attr("error", earlier.user_attrs.get("error", "failed before"))
                study.tell(trial, state=TrialState.FAIL)
            continue
        result = measurer.measure(schedule)
        trial.set_user_attr("times", result.times)
        if result.ok:
            frozen = study.tell(trial, result.seconds)
            best = result.seconds if best is None else min(best, result.seconds)  # type: ignore[type-var]
        else:
            trial.set_user_attr("error", result.error)
            frozen = study.tell(trial, state=TrialState.FAIL)
        seen[_signature(schedule)] = frozen
        measured += 1
        if on_trial is not None:
            on_trial(measured, best)
    return summarize(study, task.key)


def summarize(study: Any, key: str) -> TuneResult:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    return TuneResult(
        key=key,
        study=study.study_name,
        best_seconds=best.value if best else None,
        best_schedule=dict(best.params) if best else None,
        default_seconds=study.user_attrs.get("default_seconds"),
        measured=sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)
                     and "duplicate_of" not in t.user_attrs),
        failed=sum(1 for t in trials if t.state == TrialState.FAIL),
        pruned=sum(1 for t in trials if t.state == TrialState.PRUNED),
    )


__all__ = ["SAMPLERS", "TuneResult", "tune_task", "summarize", "storage_url", "open_storage", "study_name",
           "startup_trials", "make_sampler"]
