"""Search: one Optuna study per (device, workload key, sampler), driven by ask/tell.

Samplers: TPE or random search, both through the same loop and measurement, so their curves
compare. Every trial walks the task's space as a tree (`SearchSpace.propose`): first the
kernel family (``kernel``: direct, packed or staged), then one integer index per key that
family reads, into the key's candidates in their natural order (powers of two and tile sizes
ascending, "fully unrolled" after every finite unroll factor): TPE's kernels then see that
``tile_ow=3`` lies between 2 and 4, which small budgets need, and model each family on its
own trials (multivariate TPE with ``group=True``). The schedule itself is the trial's
``schedule`` attribute.

* TPE: the first ``startup_trials(budget)`` measured trials (the default schedule first) are
  uniformly random *legal* schedules the loop draws itself, so rejected proposals never eat
  the random phase; then multivariate TPE. Rejected proposals are infeasible (a constraint),
  which TPE ranks after every measured trial: it learns to avoid them.
* a proposal the space rejects is told PRUNED with an ``invalid`` attribute and does not
  count against the budget (random search: rejection sampling of legal schedules);
* a proposal already measured is told the earlier result without measuring again;
* a failed measurement (build, launch, wrong result, timeout) is told FAIL, with the reason
  in the trial's ``error`` attribute: it never becomes the best;
* ``confirm=N``: a trial that times within `CONFIRM_WITHIN` of the best so far (or beats it)
  is built and timed N more times, and the study is told the median of all its timed runs
  (attribute ``confirmed``). A small kernel is timed to a few percent, so the fastest of
  hundreds of single measurements is mostly luck (the winner's curse): the best would be a
  lucky draw no re-run matches, and a trial "reaching" it would be luck too. A confirming
  run that fails (a kernel whose result is wrong only some of the time) fails the trial.
* ``refine=N`` (TPE): after the startup, every Nth measured trial is an unmeasured legal
  neighbor of the best trial (`SearchSpace.neighbors`: one key one step along its ordered
  candidates; the next best's when the best has none left), queued into the TPE study so
  its model sees it (attribute ``refine``). TPE's density model finds the fast region in a
  few dozen trials but then keeps sampling its breadth, and on the H100's staged conv spaces
  only 1-10 of ~1,850 measured schedules were within 5% of the best. On the GPU, refinement
  reached 95% of the best sooner (median TPE/random 0.50 -> 0.43 and 1.18 -> 0.64 on two
  seed sets) but not in more studies (32 and 28 of 40, against 32 and 29 without).

* ``seeds`` (TPE): schedules the random startup measures first, before its random legal
  ones (attribute ``transfer``): `visc.tuner.transfer` picks the best schedules of the most
  similar workloads already tuned on the device. Random search has no startup and ignores them:
  it stays the baseline without prior knowledge.

The first trial of a new study is the default schedule (when the space can express it), and
the study records the default's time, so a result can only improve on the heuristic.

Storage is Optuna's RDB storage: each state change is its own committed transaction, so a
process killed at any moment loses at most its trial in flight. That trial stays RUNNING; it
carries its owner (host, pid, process start) and a heartbeat refreshed while it measures, and
the next `tune_task` on the study marks it FAIL with an ``interrupted`` attribute once its
owner is dead (same host) or its heartbeat is older than `HEARTBEAT_GRACE` (another host).
Interrupted trials count nowhere (budget, curves, duplicates); an interrupted default trial
is queued again. `resume=True` continues a study until it has `trials` measured trials; the
samplers' seeds then derive from the seed, the study's length and the process, so a resumed
run does not replay the proposals of the first and runs side by side propose differently.

The budget is the study's, not the run's: several runs on one study (processes, hosts, Ray
workers sharing the records) stop together once it holds `trials` measured trials. Before
measuring, a run claims a slot (`claim_measurement`): it marks its trial ``claim`` and then
counts the measured trials and the claimed RUNNING trials of live runs; it measures only if
the count, its own claim included, fits the budget, else it withdraws the claim. Of any runs
that measure, the one that claimed last saw every other claim (or its result), so the total
never overshoots. A run that finds the rest of the budget claimed elsewhere waits for those
trials (measured: done; their run died: reaped, and it measures instead); a claim it had to
withdraw for good (its trial asked before the others filled the budget) is told FAIL and
``interrupted``, so it counts nowhere. The run that creates a study describes it and queues
the default; one that loads it at the same moment (``resume``) waits for that description
(`DESCRIBE_WAIT` at most: a study whose creator died first is described by the next run).
"""

from __future__ import annotations

import dataclasses
import os
import random
import socket
import threading
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from visc.errors import RecordsError, ViscError
from visc.tuner.measure import Measurement
from visc.tuner.space import SearchSpace, ordered_choices, signature
from visc.tuner.workload import SPACE_VERSION, Task

SAMPLERS = ("tpe", "random")
ENCODING = "tree/1"  # study attribute: params are `SearchSpace.propose`'s branch and indices
HEARTBEAT_INTERVAL = 20.0  # seconds between heartbeats of a trial in flight
HEARTBEAT_GRACE = 180.0  # a RUNNING trial of another host without a heartbeat this long is dead
CONFIRM_WITHIN = 0.10  # trials timed within 10% of the best so far are confirmed (confirm=N)
BUDGET_POLL = (0.2, 1.0)  # seconds (random in this range) between looks at a budget held elsewhere
DESCRIBE_WAIT = 60.0  # seconds a run that loads a study just created waits for its creator to describe it


class MeasurerLike(Protocol):
    default_schedule: dict[str, int]

    def space(self) -> SearchSpace: ...

    def measure(self, schedule: dict[str, int] | None, again: int = 0) -> Measurement:
        """`again` > 0: the schedule's n-th confirming measurement (a cache keys on it)."""
        ...


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


def open_storage(records: str | os.PathLike[str], attempts: int = 6) -> Any:
    """Optuna's RDB storage of `records`. Processes that open a new database at the same time
    (parallel `visc tune` runs on one file) race to create its schema, and the losers' inserts
    fail: they retry, and find the schema made."""
    optuna = _optuna()
    from sqlalchemy.exc import SQLAlchemyError

    url = storage_url(records)
    for attempt in range(attempts - 1):
        try:
            return optuna.storages.RDBStorage(url)
        except SQLAlchemyError:
            time.sleep(0.1 * 2**attempt)
    try:
        return optuna.storages.RDBStorage(url)
    except SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]  # the driver's words, not the SQL
        raise RecordsError(f"cannot open the tuning records '{os.fspath(records)}': {reason}") from None


def study_name(device_id: str, key: str, sampler: str) -> str:
    return f"{device_id}|{key}|{sampler}"


def startup_trials(budget: int) -> int:
    """Random measured trials (the default among them) before TPE models the results."""
    return max(4, budget // 8)


def _infeasible(trial: Any) -> tuple[float]:
    return (1.0,) if "invalid" in trial.user_attrs else (0.0,)


def _has_set_constraint() -> bool:
    """Optuna 5 marks infeasible trials with `Trial.set_constraint`; 4 takes a constraints_func."""
    return hasattr(_optuna().trial.Trial, "set_constraint")


def make_sampler(name: str, budget: int, seed: int | None = None) -> Any:
    optuna = _optuna()
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # group=True: one joint model per kernel family (the params each family proposes);
            # constant_liar keeps workers sharing one study (an SQL URL) off each other's proposals;
            # rejected proposals are infeasible: TPE ranks them after every measured trial
            return optuna.samplers.TPESampler(
                n_startup_trials=startup_trials(budget), multivariate=True, group=True, constant_liar=True,
                constraints_func=None if _has_set_constraint() else _infeasible, seed=seed)
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
    interrupted: int = 0
    ran: int = 0  # trials this run measured (the others: earlier runs and runs beside it)
    best_is_default: bool = False  # the best trial measured the default schedule itself

    @property
    def speedup(self) -> float | None:
        """default / best; exactly 1 when the best is the default schedule: the ratio of two
        timings of one schedule would only show their noise (0.8, 1.2) as a gain or loss."""
        if self.best_is_default and self.best_seconds:
            return 1.0
        if self.best_seconds and self.default_seconds:
            return self.default_seconds / self.best_seconds
        return None


def trial_schedule(trial: Any) -> dict[str, int]:
    """The schedule a trial measured (imported records and older studies: its params)."""
    sched = trial.user_attrs.get("schedule")
    return {k: int(v) for k, v in sched.items()} if isinstance(sched, dict) else dict(trial.params)


def is_measured(trial: Any) -> bool:
    """Whether a trial cost a measurement: finished, not a repeat, not interrupted."""
    from optuna.trial import TrialState

    return (trial.state in (TrialState.COMPLETE, TrialState.FAIL) and "duplicate_of" not in trial.user_attrs
            and "interrupted" not in trial.user_attrs)


# -- trials in flight: owner and heartbeat ---------------------------------------------------


def _start_time(pid: int) -> str:
    """The process's start (clock ticks since boot) on Linux, else "" (pid reuse goes unseen)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid())}


def _alive(owner: dict[str, Any]) -> bool:
    pid = int(owner.get("pid", 0))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return not owner.get("start") or _start_time(pid) in ("", owner["start"])


def _stale(trial: Any, now: float) -> bool:
    owner = trial.user_attrs.get("owner")
    if isinstance(owner, dict) and owner.get("host") == socket.gethostname():
        return not _alive(owner)
    beat = trial.user_attrs.get("alive_at")
    start = trial.datetime_start.timestamp() if trial.datetime_start else now
    return now - float(beat if beat is not None else start) > HEARTBEAT_GRACE


def reap_stale_trials(study: Any) -> list[Any]:
    """Mark the RUNNING trials of dead runs FAIL (``interrupted``); returns them."""
    optuna = _optuna()
    from optuna.trial import TrialState

    now = time.time()
    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _stale(t, now):
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "interrupted", "its run ended before it finished")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process reaped it first
        reaped.append(t)
    return reaped


def _reap(study: Any, default_params: dict[str, int] | None) -> None:
    """`reap_stale_trials`, and the default queued again if it was among them."""
    if any(t.user_attrs.get("default") for t in reap_stale_trials(study)) and default_params is not None:
        study.enqueue_trial(default_params, user_attrs={"default": True})


# -- the study's budget, shared by every run on it ---------------------------------------------


def _budget(trials: Sequence[Any], exclude: int | None = None) -> tuple[int, int]:
    """(measured, claimed) of a study's `trials`: see `budget_state`."""
    from optuna.trial import TrialState

    now = time.time()
    measured = claimed = 0
    for t in trials:
        if is_measured(t):
            measured += 1
        elif (t.state == TrialState.RUNNING and t._trial_id != exclude and t.user_attrs.get("claim")
              and not _stale(t, now)):
            claimed += 1
    return measured, claimed


def budget_state(study: Any, exclude: int | None = None) -> tuple[int, int]:
    """(measured, claimed): the study's measured trials, and its RUNNING trials that live runs
    claimed to measure (the trial with id `exclude` left out)."""
    return _budget(study.get_trials(deepcopy=False), exclude)


def claim_measurement(study: Any, trial: Any, budget: int) -> bool | None:
    """One try to claim one of the study's `budget` measurements for `trial` (RUNNING, this
    run's): True: claimed, measure it; None: not now, other runs' claims hold the rest of the
    budget (the claim is withdrawn: try again once one of them ends); False: the study holds
    `budget` measured trials. The claim is written before the others are counted, so of two
    runs claiming the last slot at once at least one sees the other (module docstring)."""
    study._storage.set_trial_user_attr(trial._trial_id, "claim", True)
    measured, claimed = budget_state(study, exclude=trial._trial_id)
    if measured + claimed < budget:
        return True
    study._storage.set_trial_user_attr(trial._trial_id, "claim", False)
    return False if measured >= budget else None


def _tell(study: Any, trial: Any, value: float | None = None, state: Any = None) -> None:
    """`study.tell`; UpdateFinishedTrialError when another run finished `trial` first. Optuna's
    queue of enqueued trials is not atomic on SQLite (no SELECT ... FOR UPDATE): two runs can
    pop one queued trial, and the second to tell it must give way."""
    try:
        study.tell(trial, value, state=state)
    except ValueError:  # "Cannot tell a COMPLETE trial": give way if another run finished it
        if study._storage.get_trial(trial._trial_id).state.is_finished():
            raise _optuna().exceptions.UpdateFinishedTrialError(
                f"trial {trial.number} was finished by another run") from None
        raise


def _taken(study: Any, trial: Any, owner: dict[str, Any]) -> bool:
    """Whether another run popped `trial` too and wrote its owner after this run's (then it is
    theirs; of two such runs the second to write keeps it, the other gives way)."""
    return study._storage.get_trial(trial._trial_id).user_attrs.get("owner") != owner


def _pause() -> None:
    """Sleep a random while: runs that collided on the last slot do not retry in lockstep."""
    time.sleep(random.uniform(*BUDGET_POLL))


def _claim(study: Any, trial: Any, budget: int, default_params: dict[str, int] | None) -> bool:
    """Claim a measurement for `trial`, waiting while other runs hold the rest of the budget;
    False once it is spent (the trial is then told FAIL, ``interrupted``: it counts nowhere)."""
    from optuna.trial import TrialState

    while True:
        got = claim_measurement(study, trial, budget)
        if got:
            return True
        if got is False:
            trial.set_user_attr("interrupted", "not measured: other runs filled the study's budget")
            _tell(study, trial, state=TrialState.FAIL)
            if trial.user_attrs.get("default") and default_params is not None:
                study.enqueue_trial(default_params, user_attrs={"default": True})
            return False
        _pause()
        _reap(study, default_params)


@contextmanager
def _heartbeat(study: Any, trial: Any) -> Iterator[None]:
    """Refresh the trial's ``alive_at`` every `HEARTBEAT_INTERVAL` s until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_INTERVAL):
            try:
                study._storage.set_trial_user_attr(trial._trial_id, "alive_at", time.time())
            except Exception:  # noqa: BLE001 - a missed heartbeat only delays reaping
                pass

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# -- the search loop ---------------------------------------------------------------------------


def _derived_seed(seed: int | None, n: int, salt: int = 0) -> int | None:
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, n, salt] if salt else [seed, n]).generate_state(1)[0])


def _suggest(trial: Any, param: str, n: int) -> int:
    return int(trial.suggest_int(param, 0, n - 1))


def confirmed(measurer: MeasurerLike, schedule: dict[str, int], first: Measurement, rounds: int) -> Measurement:
    """`first` and `rounds` more measurements of `schedule` as one: the median of every timed
    run; the first failure instead, if one fails."""
    times = list(first.times)
    for again in range(1, rounds + 1):
        m = measurer.measure(schedule, again)
        if not m.ok:
            return Measurement(None, f"confirming run {again}: {m.error}", times + m.times, first.build_seconds)
        times += m.times
    return Measurement(float(np.median(times)), None, times, first.build_seconds)


def _refinement(study: Any, space: SearchSpace, rng: np.random.Generator, seen: Container[str],
                top: int = 5) -> dict[str, int] | None:
    """An unmeasured legal neighbor of the best trial (of the next best, when all of its
    neighbors were measured; None past the `top` best)."""
    from optuna.trial import TrialState

    ranked = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    done: set[str] = set()
    for t in ranked:
        sched = trial_schedule(t)
        if signature(sched) in done:
            continue
        done.add(signature(sched))
        fresh = space.neighbors(sched, exclude=seen)
        if fresh:
            return fresh[int(rng.integers(len(fresh)))]
        if len(done) >= top:
            break
    return None


def _open_study(storage: Any, name: str, resume: bool, what: str) -> tuple[Any, bool]:
    """The study `name` and whether this call created it (of runs starting together, exactly
    one does); an existing study without `resume` is an error."""
    optuna = _optuna()
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                    sampler=optuna.samplers.RandomSampler())
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        if not resume:
            raise ViscError(f"the records already hold a study of {what}; pass --resume to continue it "
                            "(runs that tune side by side on one records database all need --resume)") from None
    return optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler()), False


def _described(study: Any) -> bool:
    """Whether the study's creator wrote its attributes (``encoding`` is written last)."""
    attrs = study.user_attrs
    return "encoding" in attrs or "default_seconds" in attrs


def _run_salt() -> int:
    """This process, as a number: runs that load one study side by side draw different proposals."""
    return zlib.crc32(repr(sorted(_owner().items())).encode())


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
    start_with_default: bool = True,
    confirm: int = 0,
    refine: int = 0,
    seeds: Sequence[dict[str, int]] = (),
    tags: Mapping[str, Any] | None = None,
) -> TuneResult:
    """Run `task`'s study until it has `trials` measured trials, counting those of every run on
    it (see the module docstring); `on_trial(measured, best_seconds)` reports the study's
    progress. `start_with_default=False`: the default schedule is measured (the study's
    ``default_seconds``) but not made a trial, so every trial is the sampler's own (comparing
    samplers without the head start the heuristic gives both). `confirm`: re-measurements of a
    trial near the best; `refine`: TPE's local moves; `seeds`: schedules TPE's startup measures
    first (`visc.tuner.transfer`; see the module docstring); `tags`: user attributes of every
    trial this run asks (which worker measured it)."""
    optuna = _optuna()
    from optuna.trial import TrialState

    if sampler not in SAMPLERS:
        raise ViscError(f"unknown sampler '{sampler}' (known: {', '.join(SAMPLERS)})")
    name = study_name(device_id, task.key, sampler)
    if isinstance(storage, str | os.PathLike):
        storage = open_storage(storage)
    study, created = _open_study(storage, name, resume, f"{task.describe()} on {device_id} ({sampler})")
    deadline = time.monotonic() + DESCRIBE_WAIT
    while not created and not _described(study) and time.monotonic() < deadline:
        time.sleep(0.1)  # created a moment ago by a run beside this one, which describes it now
    if study.user_attrs.get("encoding", ENCODING) != ENCODING or (
            "default_seconds" in study.user_attrs and "encoding" not in study.user_attrs):
        raise ViscError(f"the study '{name}' was written by an older visc (other parameter encoding); "
                        "tune into a new records file")
    space = measurer.space()
    default = dict(measurer.default_schedule)
    default_params = space.params(default) if start_with_default else None
    if not _described(study):  # new (or its creator died before describing it)
        for k, v in {"device": device_id, "key": task.key, "sampler": sampler, "workload": task.describe(),
                     "space_version": SPACE_VERSION, "module": task.module_text,
                     "default_schedule": default}.items():
            study.set_user_attr(k, v)
        if default_params is not None and not any(t.user_attrs.get("default") for t in study.get_trials(deepcopy=False)):
            study.enqueue_trial(default_params, user_attrs={"default": True})
        study.set_user_attr("encoding", ENCODING)  # last: the study is described
    _reap(study, default_params)
    if "default_seconds" not in study.user_attrs:
        study.set_user_attr("default_seconds", measurer.measure(default).seconds)
    salt = 0 if created else _run_salt()
    study.sampler = make_sampler(sampler, trials, _derived_seed(seed, len(study.trials), salt))
    set_constraint = _has_set_constraint()
    rng = np.random.default_rng(_derived_seed(seed, len(study.trials) + 1, salt))
    startup = startup_trials(trials) if sampler == "tpe" else 0
    pending = [dict(x) for x in seeds if space.params(x) is not None and not space.problems(x)]
    owner = {**_owner(), "run": uuid.uuid4().hex[:12]}
    ran = asks = 0
    reported = -1
    while True:
        everything = study.get_trials(deepcopy=False)
        finished = [t for t in everything if t.state in (TrialState.COMPLETE, TrialState.FAIL)
                    and "interrupted" not in t.user_attrs]
        seen: dict[str, Any] = {signature(trial_schedule(t)): t for t in finished}
        measured, claimed = _budget(everything)
        complete = [t.value for t in finished if t.state == TrialState.COMPLETE]
        best = min(complete) if complete else None
        if on_trial is not None and measured != reported:
            on_trial(measured, best)
            reported = measured
        if measured >= trials or asks >= 50 * trials:
            break
        if measured + claimed >= trials:  # the rest of the budget is being measured by other runs
            _pause()
            _reap(study, default_params)
            continue
        asks += 1
        if measured < startup and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            while pending and signature(pending[0]) in seen:
                pending.pop(0)
            if pending:
                study.enqueue_trial(space.params(pending.pop(0)), user_attrs={"startup": True, "transfer": True})
            else:
                legal = space.sample(rng, exclude=seen)
                if legal is not None:
                    study.enqueue_trial(space.params(legal), user_attrs={"startup": True})
        if (sampler == "tpe" and refine and measured >= startup and (measured - startup) % refine == refine - 1
                and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,))):
            near = _refinement(study, space, rng, seen)
            if near is not None:
                study.enqueue_trial(space.params(near), user_attrs={"refine": True})
        trial = study.ask()
        try:
            trial.set_user_attr("owner", owner)  # a run killed from here on leaves a reapable trial
            for k, v in (tags or {}).items():
                trial.set_user_attr(k, v)
            schedule = space.propose(partial(_suggest, trial))
            trial.set_user_attr("schedule", schedule)
            if _taken(study, trial, owner):
                continue  # a queued trial another run popped too (SQLite): the last owner written keeps it
            problems = space.problems(schedule)
            if problems:
                trial.set_user_attr("invalid", "; ".join(problems))
                if set_constraint:
                    trial.set_constraint("illegal", 1.0)
                _tell(study, trial, state=TrialState.PRUNED)
                continue
            earlier = seen.get(signature(schedule))
            if earlier is not None:
                trial.set_user_attr("duplicate_of", earlier.number)
                if earlier.state == TrialState.COMPLETE:
                    _tell(study, trial, earlier.value)
                else:
                    trial.set_user_attr("error", earlier.user_attrs.get("error", "failed before"))
                    _tell(study, trial, state=TrialState.FAIL)
                continue
            trial.set_user_attr("alive_at", time.time())
            try:
                with _heartbeat(study, trial):
                    if not _claim(study, trial, trials, default_params):
                        break  # other runs measured the rest of the budget while this one proposed
                    result = measurer.measure(schedule)
                    if result.ok and confirm and (best is None or result.seconds <= best * (1 + CONFIRM_WITHIN)):
                        result = confirmed(measurer, schedule, result, confirm)
                        trial.set_user_attr("confirmed", confirm)
            except optuna.exceptions.UpdateFinishedTrialError:
                raise
            except BaseException:
                # Ctrl-C or an error of the measurer: the trial in flight, not a failed schedule
                with suppress(optuna.exceptions.UpdateFinishedTrialError):
                    trial.set_user_attr("interrupted", "its run stopped before it finished")
                    _tell(study, trial, state=TrialState.FAIL)
                raise
            trial.set_user_attr("times", result.times)
            if result.ok:
                _tell(study, trial, result.seconds)
            else:
                trial.set_user_attr("error", result.error)
                _tell(study, trial, state=TrialState.FAIL)
            ran += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # a queued trial another run popped too and finished first: its result stands
    return dataclasses.replace(summarize(study, task.key), ran=ran)


def study_summary(storage: Any, device_id: str, key: str, sampler: str) -> TuneResult | None:
    """The summary of a task's study (None: the records hold none), read without a measurer:
    a run can skip a task whose budget other runs spent without building anything."""
    optuna = _optuna()
    try:
        study = optuna.load_study(study_name=study_name(device_id, key, sampler), storage=storage)
    except KeyError:
        return None
    return summarize(study, key)


def summarize(study: Any, key: str) -> TuneResult:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    interrupted = sum(1 for t in trials if "interrupted" in t.user_attrs)
    default = study.user_attrs.get("default_schedule")
    return TuneResult(
        key=key,
        study=study.study_name,
        best_seconds=best.value if best else None,
        best_schedule=trial_schedule(best) if best else None,
        default_seconds=study.user_attrs.get("default_seconds"),
        measured=sum(1 for t in trials if is_measured(t)),
        failed=sum(1 for t in trials if t.state == TrialState.FAIL) - interrupted,
        pruned=sum(1 for t in trials if t.state == TrialState.PRUNED),
        interrupted=interrupted,
        best_is_default=best is not None and (bool(best.user_attrs.get("default")) or (
            isinstance(default, dict) and signature(trial_schedule(best)) == signature(default))),
    )


__all__ = ["SAMPLERS", "ENCODING", "CONFIRM_WITHIN", "confirmed", "TuneResult", "tune_task", "summarize", "storage_url", "open_storage",
           "study_name", "startup_trials", "make_sampler", "ordered_choices", "trial_schedule", "is_measured",
           "reap_stale_trials", "budget_state", "claim_measurement", "study_summary"]
