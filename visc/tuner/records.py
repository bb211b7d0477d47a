"""Records: the best schedule per (device, workload key), read from the tuning database.

The database is the Optuna storage the search writes (a SQLite file or any SQL URL); an
exported JSON file (`export_records`) holds the same records for sharing and loads the same
way. `RecordBook.apply` puts each matching record's schedule on its op before
`vision-default-schedule` runs, so the default fills only the ops no record covers.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from visc.dialects.vision import ReshapeOp, ScheduleAttr, VisionOp
from visc.errors import ViscError
from visc.tuner.search import _optuna, open_storage
from visc.tuner.workload import SPACE_VERSION, workload_key

EXPORT_FORMAT = "visc-tuning-records"


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


def _from_storage(records: str | os.PathLike[str], device: str | None) -> list[Record]:
    optuna = _optuna()
    if "://" not in os.fspath(records) and not os.path.exists(records):
        raise ViscError(f"tuning records '{os.fspath(records)}' do not exist")
    found = []
    for summary in optuna.get_all_study_summaries(open_storage(records), include_best_trial=True):
        attrs = summary.user_attrs
        best = summary.best_trial
        if best is None or "key" not in attrs or (device is not None and attrs.get("device") != device):
            continue
        found.append(Record(attrs["device"], attrs["key"], dict(best.params), float(best.value),
                            attrs.get("workload", ""), attrs.get("default_seconds"), summary.n_trials,
                            summary.study_name, int(attrs.get("space_version", SPACE_VERSION))))
    return found


def _from_json(path: str | os.PathLike[str], device: str | None) -> list[Record]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ViscError(f"cannot read tuning records '{os.fspath(path)}': {e}") from e
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ViscError(f"'{os.fspath(path)}' is not a visc records export (no \"format\": \"{EXPORT_FORMAT}\")")
    records = [Record(**r) for r in data.get("records", [])]
    return [r for r in records if device is None or r.device == device]


def all_records(records: str | os.PathLike[str], device: str | None = None) -> list[Record]:
    """Every study's best result (several per key when TPE and random both ran)."""
    return _from_json(records, device) if _is_json(records) else _from_storage(records, device)


def best_records(records: str | os.PathLike[str], device: str | None = None) -> list[Record]:
    """The fastest record per (device, key) of the current space version."""
    best: dict[tuple[str, str], Record] = {}
    for r in all_records(records, device):
        if r.space_version != SPACE_VERSION:
            continue
        old = best.get((r.device, r.key))
        if old is None or r.seconds < old.seconds:
            best[(r.device, r.key)] = r
    return sorted(best.values(), key=lambda r: (r.device, r.workload, r.key))


def export_records(records: str | os.PathLike[str], path: str | os.PathLike[str], device: str | None = None) -> int:
    """Write the best records as JSON; returns how many."""
    chosen = best_records(records, device)
    with open(path, "w") as f:
        json.dump({"format": EXPORT_FORMAT, "records": [asdict(r) for r in chosen]}, f, indent=1)
    return len(chosen)


def import_records(records: str | os.PathLike[str], path: str | os.PathLike[str]) -> int:
    """Add an export's records to a database, one single-trial study each (sampler
    ``imported``), so they take part in `best_records` like tuned ones; returns how many."""
    optuna = _optuna()
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    storage = open_storage(records)
    count = 0
    for r in _from_json(path, None):
        name = f"{r.device}|{r.key}|imported"
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
        if any(t.params == r.schedule and t.value == r.seconds for t in study.get_trials(deepcopy=False)):
            continue
        for k, v in {"device": r.device, "key": r.key, "sampler": "imported", "workload": r.workload,
                     "space_version": r.space_version, "default_seconds": r.default_seconds}.items():
            study.set_user_attr(k, v)
        dists = {k: CategoricalDistribution([v]) for k, v in r.schedule.items()}
        study.add_trial(create_trial(params=dict(r.schedule), distributions=dists, value=r.seconds,
                                     user_attrs={"source": r.source}))
        count += 1
    return count


class RecordBook:
    """The best schedules of one device, by workload key, for the compiler."""

    def __init__(self, device: str, schedules: dict[str, dict[str, int]]):
        self.device = device
        self.schedules = schedules
        self.applied = 0

    @staticmethod
    def load(records: str | os.PathLike[str], target: str, device: str | None = None) -> RecordBook:
        from visc.tuner.measure import device_identity

        ident = device_identity(target, device)
        return RecordBook(ident, {r.key: r.schedule for r in best_records(records, ident)})

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
            sched = self.schedules.get(workload_key(op))
            if sched is None or set(sched) - lowering.keys or lowering.check(op, Schedule(dict(sched))):
                continue
            op.attributes["schedule"] = ScheduleAttr(sched)
            count += 1
        self.applied += count
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


__all__ = ["Record", "RecordBook", "all_records", "best_records", "export_records", "import_records",
           "record_rows", "EXPORT_FORMAT"]
