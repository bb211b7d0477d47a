"""Records: the best schedule per (device, workload key), read from the tuning database.

The database is the Optuna storage the search writes (a SQLite file or any SQL URL); an
exported JSON file (`export_records`) holds the same records for sharing and loads the same
way. `RecordBook.apply` puts each matching record's schedule on its op before
`vision-default-schedule` runs, so the default fills only the ops no record covers.

Shipped records: exports in the package's ``shipped/`` directory (or the directory named by
``$VISC_SHIPPED_RECORDS``), for the devices visc was tuned on. A compile without records
uses those whose device id (`visc.tuner.measure.device_identity`) is the compile target's,
so a known device gets its tuned schedules and any other device the heuristic. A shipped
file that cannot be read is skipped with a `ShippedRecordsWarning`, never a failed compile.
"""

from __future__ import annotations

import glob
import json
import os
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from visc.dialects.vision import ReshapeOp, ScheduleAttr, VisionOp
from visc.errors import OutputPathError, RecordsError, ViscError
from visc.tuner.search import _optuna, open_storage, trial_schedule
from visc.tuner.shipped import SHIPPED_DIR, SHIPPED_ENV, shipped_dir
from visc.tuner.validate import rejected
from visc.tuner.workload import SPACE_VERSION, TUNABLE, workload_key

EXPORT_FORMAT = "visc-tuning-records"


class ShippedRecordsWarning(UserWarning):
    """A shipped records file was skipped (unreadable or malformed)."""


@dataclass
class Record:
    device: str
    key: str
    schedule: dict[str, int]
    seconds: float
    workload: str = ""
    default_seconds: float | None = None
    trials: int = 0
    source: str = ""  # the study (or file) it came from
    space_version: int = SPACE_VERSION


def _is_json(records: str | os.PathLike[str]) -> bool:
    return os.fspath(records).endswith(".json")


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_records(records: str | os.PathLike[str], write: bool = False) -> None:
    """One clear sentence, before any work, for a records path that cannot serve: missing, a
    directory, not an SQLite database, or (``write``: `visc tune`, `visc records import`)
    read-only or in a read-only folder, where SQLite also writes its journal. URLs are the
    server's business."""
    path = os.fspath(records)
    if "://" in path:
        return
    if os.path.isdir(path):
        raise RecordsError(f"tuning records '{path}': it is a directory, not a records database (an SQLite file)")
    if write and _is_json(path):
        raise RecordsError(f"tuning records '{path}': a .json export is read, never written to; tune into a "
                           "database (--records tuning.db), or add an export to one with `visc records import`")
    if not os.path.exists(path):
        if not write:
            raise RecordsError(f"tuning records '{path}' do not exist")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise RecordsError(f"tuning records '{path}': the folder '{folder}' does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RecordsError(f"tuning records '{path}': the folder '{folder}' is read-only")
        return
    if not os.access(path, os.R_OK):
        raise RecordsError(f"tuning records '{path}': the file is not readable (permission denied)")
    if not _is_json(path):
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
        if head and head != SQLITE_MAGIC:
            raise RecordsError(f"tuning records '{path}': the file is not a records database (not an SQLite "
                               "file; an export's name ends in .json)")
    if write:
        if not os.access(path, os.W_OK):
            raise RecordsError(f"tuning records '{path}': the file is read-only; make it writable (chmod u+w) "
                               "or give another --records file")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RecordsError(f"tuning records '{path}': the folder '{folder}' is read-only, and SQLite "
                               "writes its journal beside the database; copy the file to a writable folder")


def storage_failure(records: str | os.PathLike[str], error: BaseException) -> RecordsError:
    """A database error met while reading or writing `records` (a file made read-only or
    removed mid-run, a full disk), as one sentence: the first line of the innermost cause."""
    cause: BaseException = error
    for _ in range(20):  # the chain: Optuna's error, SQLAlchemy's, the driver's
        inner = getattr(cause, "orig", None) or cause.__cause__
        if not isinstance(inner, BaseException):
            break
        cause = inner
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return RecordsError(f"cannot use the tuning records '{os.fspath(records)}': {reason}")


def _from_storage(records: str | os.PathLike[str], device: str | None) -> list[Record]:
    optuna = _optuna()
    check_records(records)
    found = []
    for summary in optuna.get_all_study_summaries(open_storage(records), include_best_trial=True):
        attrs = summary.user_attrs
        best = summary.best_trial
        if best is None or "key" not in attrs or (device is not None and attrs.get("device") != device):
            continue
        if rejected(attrs, trial_schedule(best)):
            continue  # slower than the heuristic inside a model (`visc records validate`)
        found.append(Record(attrs["device"], attrs["key"], trial_schedule(best), float(best.value),
                            attrs.get("workload", ""), attrs.get("default_seconds"), summary.n_trials,
                            summary.study_name, int(attrs.get("space_version", SPACE_VERSION))))
    return found


def _from_json(path: str | os.PathLike[str], device: str | None) -> list[Record]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RecordsError(f"cannot read tuning records '{os.fspath(path)}': {e}") from e
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise RecordsError(f"'{os.fspath(path)}' is not a visc records export (no \"format\": \"{EXPORT_FORMAT}\")")
    records = [_record(r, i, path) for i, r in enumerate(data.get("records", []))]
    return [r for r in records if device is None or r.device == device]


def _record(item: Any, index: int, path: str | os.PathLike[str]) -> Record:
    """One exported record, checked: a hand-edited or truncated file fails here, by name."""
    names = {f.name for f in fields(Record)}
    try:
        if not isinstance(item, dict) or set(item) - names:
            raise ValueError(f"unknown fields {sorted(set(item) - names) if isinstance(item, dict) else item!r}")
        r = Record(**item)
        if not isinstance(r.schedule, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in r.schedule.items()):
            raise ValueError("the schedule is not a map of names to integers")
        if not isinstance(r.device, str) or not isinstance(r.key, str):
            raise ValueError("device and key must be strings")
        r.seconds = float(r.seconds)
        r.space_version = int(r.space_version)
    except (TypeError, ValueError) as e:
        raise RecordsError(f"tuning records '{os.fspath(path)}': record {index} is malformed: {e}") from None
    return r


def all_records(records: str | os.PathLike[str], device: str | None = None) -> list[Record]:
    """Every study's best result (several per key when TPE and random both ran)."""
    return _from_json(records, device) if _is_json(records) else _from_storage(records, device)


def best_records(records: str | os.PathLike[str], device: str | None = None) -> list[Record]:
    """The fastest record per (device, key) of the current space version."""
    return _best(all_records(records, device))


def _best(records: list[Record]) -> list[Record]:
    best: dict[tuple[str, str], Record] = {}
    for r in records:
        if r.space_version != SPACE_VERSION:
            continue
        old = best.get((r.device, r.key))
        if old is None or r.seconds < old.seconds:
            best[(r.device, r.key)] = r
    return sorted(best.values(), key=lambda r: (r.device, r.workload, r.key))


def export_records(records: str | os.PathLike[str], path: str | os.PathLike[str], device: str | None = None) -> int:
    """Write the best records as JSON; returns how many."""
    return write_export(best_records(records, device), path)


def write_export(chosen: list[Record], path: str | os.PathLike[str]) -> int:
    """Write `chosen` as a records export (written aside, then renamed: never half a file)."""
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump({"format": EXPORT_FORMAT, "records": [asdict(r) for r in chosen]}, f, indent=1)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OutputPathError(f"cannot write the records export '{os.fspath(path)}': {e.strerror or e}") from None
    return len(chosen)


def import_records(records: str | os.PathLike[str], path: str | os.PathLike[str]) -> int:
    """Add an export's records to a database, one single-trial study each (sampler
    ``imported``), so they take part in `best_records` like tuned ones; returns how many."""
    optuna = _optuna()
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    chosen = _from_json(path, None)  # a bad file fails here, before the database is created
    check_records(records, write=True)
    storage = open_storage(records)
    count = 0
    for r in chosen:
        name = f"{r.device}|{r.key}|imported"
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
        if any(trial_schedule(t) == r.schedule and t.value == r.seconds for t in study.get_trials(deepcopy=False)):
            continue
        for k, v in {"device": r.device, "key": r.key, "sampler": "imported", "workload": r.workload,
                     "space_version": r.space_version, "default_seconds": r.default_seconds}.items():
            study.set_user_attr(k, v)
        dists = {k: CategoricalDistribution([v]) for k, v in r.schedule.items()}
        study.add_trial(create_trial(params=dict(r.schedule), distributions=dists, value=r.seconds,
                                     user_attrs={"source": r.source, "schedule": dict(r.schedule)}))
        count += 1
    return count


def shipped_files(directory: str | os.PathLike[str] | None = None) -> list[str]:
    return sorted(glob.glob(os.path.join(os.fspath(directory or shipped_dir()), "*.json")))


def shipped_records(device: str, directory: str | os.PathLike[str] | None = None) -> list[Record]:
    """The best shipped records of `device` that beat the default schedule of their study
    (a record no faster than the default only adds risk); unreadable files are skipped with a
    warning."""
    found: list[Record] = []
    for path in shipped_files(directory):
        try:
            found += [r for r in _from_json(path, device) if r.space_version == SPACE_VERSION
                      and (r.default_seconds is None or r.seconds < r.default_seconds)]
        except ViscError as e:
            warnings.warn(_skipping(e), ShippedRecordsWarning, stacklevel=2)
    return _best(found)


def _skipping(error: ViscError) -> str:
    return f"skipping shipped tuning records: {error}"


def shipped_problems(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """The `ShippedRecordsWarning` messages a compile gives for the shipped files (one per
    unreadable file): kept with a cached model, which repeats them (`visc.model_cache`)."""
    problems = []
    for path in shipped_files(directory):
        try:
            _from_json(path, None)
        except ViscError as e:
            problems.append(_skipping(e))
    return problems


class RecordBook:
    """The best schedules of one device, by workload key, for the compiler; `source` says
    where they came from (a records path, or ``shipped:`` and the files)."""

    def __init__(self, device: str, schedules: dict[str, dict[str, int]], source: str = ""):
        self.device = device
        self.schedules = schedules
        self.source = source
        # what `apply` did, over every module it saw (for `visc compile`'s report): the keys
        # applied and the ops they went on, the keys of tunable ops (`TUNABLE`) it had none for
        self.applied: set[str] = set()
        self.applied_ops = 0
        self.missing: set[str] = set()

    @staticmethod
    def load(records: str | os.PathLike[str], target: str, device: str | None = None) -> RecordBook:
        from visc.tuner.measure import device_identity

        ident = device_identity(target, device)
        return RecordBook(ident, {r.key: r.schedule for r in best_records(records, ident)}, os.fspath(records))

    @staticmethod
    def shipped(target: str, device: str | None = None,
                directory: str | os.PathLike[str] | None = None) -> RecordBook | None:
        """The shipped records of the device `target`/`device` selects (None: no shipped
        file, the device cannot be identified, or no record is for it)."""
        from visc.tuner.measure import device_identity

        files = shipped_files(directory)
        if not files:
            return None
        try:
            ident = device_identity(target, device)
        except (ViscError, ImportError, OSError):
            return None  # no driver to name the device: nothing can match
        chosen = shipped_records(ident, directory)
        if not chosen:
            return None
        names = sorted({os.path.basename(f) for f in files})
        return RecordBook(ident, {r.key: r.schedule for r in chosen}, "shipped:" + ",".join(names))

    def apply(self, module: ModuleOp) -> int:
        """Put the recorded schedule on every op that has none and a record; a record the
        op's lowering rejects (a stale database) is skipped. Returns how many were applied."""
        from visc.passes.lowering.common import Schedule
        from visc.passes.lowering.vision_to_loops import LOWERINGS

        count = 0
        for op in module.walk():
            if not isinstance(op, VisionOp) or isinstance(op, ReshapeOp) or "schedule" in op.attributes:
                continue
            lowering = LOWERINGS.get(type(op))
            if lowering is None:
                continue
            key = workload_key(op)
            sched = self.schedules.get(key)
            if sched is None or set(sched) - lowering.keys or lowering.check(op, Schedule(dict(sched))):
                if op.name in TUNABLE:
                    self.missing.add(key)
                continue
            op.attributes["schedule"] = ScheduleAttr(sched)
            self.applied.add(key)
            count += 1
        self.applied_ops += count
        return count


def record_rows(records: list[Record]) -> list[dict[str, Any]]:
    """Table rows for `visc records best`."""
    rows = []
    for r in records:
        speedup = r.default_seconds / r.seconds if r.default_seconds and r.seconds else None
        rows.append({"device": r.device, "key": r.key, "workload": r.workload, "best_us": r.seconds * 1e6,
                     "default_us": (r.default_seconds or 0.0) * 1e6, "speedup": speedup or 0.0,
                     "trials": r.trials, "schedule": json.dumps(r.schedule, sort_keys=True)})
    return rows


__all__ = ["Record", "RecordBook", "check_records", "storage_failure", "all_records", "best_records", "export_records", "write_export", "import_records",
           "record_rows", "shipped_records", "shipped_problems", "shipped_files", "shipped_dir", "ShippedRecordsWarning",
           "EXPORT_FORMAT", "SHIPPED_DIR", "SHIPPED_ENV"]
