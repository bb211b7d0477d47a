"""Transfer: a new study starts from the best schedules of the most similar workloads already
tuned on the same device.

On the H100's staged conv spaces only a handful of ~20,000 legal schedules lie within 5% of a
workload's best, and a study without prior knowledge spends its random startup finding the
region they live in. Convs of one network differ in shapes but share that region (stage 2,
split-K, 4x4 to 8x4 register tiles): the best of a sibling shape lands within 10-20% of a new
shape's best, where refinement (`search`) takes over. So the startup's first trials are the best
schedules of the nearest other keys that are legal in the new space (AutoTVM's transfer learning
and Ansor's cost model reuse tuning history across tasks in the same spirit; here the history
enters as measured trials, which TPE then models like any other).

Similarity is read off each workload's one-line description (`Workload.describe`, which
records and exports keep): the same op kind and ranks (and depthwise or not), then the closest
sizes (a conv's implicit GEMM: output channels, output pixels, reduction length), window,
strides and epilogue (`Shape.distance`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from visc.tuner.space import SearchSpace, signature
from visc.tuner.workload import SPACE_VERSION, Task

_SHAPE = re.compile(r"^\d+(x\d+)*$")


@dataclass(frozen=True)
class Shape:
    """The parts of a workload description similarity compares."""

    kind: str
    ins: tuple[tuple[int, ...], ...]
    outs: tuple[tuple[int, ...], ...]
    attrs: tuple[tuple[str, str], ...]
    epilogue: bool

    @staticmethod
    def parse(text: str) -> Shape | None:
        """`Workload.describe()` text back into shapes (None: not one)."""
        words = text.split()
        if len(words) < 3 or "->" not in words:
            return None
        arrow = words.index("->")
        ins = [w for w in words[1:arrow] if _SHAPE.match(w)]
        outs = [w for w in words[arrow + 1:] if _SHAPE.match(w)]
        attrs = tuple(tuple(w.split("=", 1)) for w in words[arrow + 1:] if "=" in w)
        if not ins or not outs:
            return None
        dims = lambda ws: tuple(tuple(int(d) for d in w.split("x")) for w in ws)  # noqa: E731
        return Shape(words[0], dims(ins), dims(outs), attrs, "+epilogue" in words)  # type: ignore[arg-type]

    def _window(self) -> tuple[int, ...]:
        return self.ins[1][2:] if self._conv() else ()

    def _conv(self) -> bool:
        return self.kind == "conv2d" and len(self.ins) > 1 and len(self.ins[1]) == 4

    def family(self) -> tuple[Any, ...]:
        """What two workloads must share to be compared at all: the op, its operands' ranks (a
        conv's bias aside) and, for convs, whether depthwise (another kernel family)."""
        if self._conv():
            depthwise = dict(self.attrs).get("groups", "1") != "1" and self.ins[1][1] == 1
            return self.kind, len(self.ins[0]), len(self.outs[0]), depthwise
        return self.kind, tuple(len(s) for s in self.ins), tuple(len(s) for s in self.outs)

    def dims(self) -> tuple[int, ...]:
        """The sizes that shape the kernel: a conv's implicit GEMM (output channels, output
        pixels, reduction length), other ops' every operand dimension."""
        if self._conv():
            oc, cg, kh, kw = self.ins[1]
            return oc, math.prod(self.outs[0]) // max(self.outs[0][1], 1), cg * kh * kw
        return tuple(d for s in self.ins + self.outs for d in s)

    def distance(self, other: Shape) -> float | None:
        """Sum of |log2| ratios of `dims`, plus 1 for another window and for each other
        attribute, operand count (a conv's bias) or epilogue (None: another family)."""
        if self.family() != other.family():
            return None
        mine, theirs = dict(self.attrs), dict(other.attrs)
        return (sum(abs(math.log2(max(a, 1) / max(b, 1))) for a, b in zip(self.dims(), other.dims(), strict=True))
                + (self._window() != other._window())
                + sum(mine.get(k) != theirs.get(k) for k in set(mine) | set(theirs))
                + (len(self.ins) != len(other.ins)) + (self.epilogue != other.epilogue))


@dataclass
class Donor:
    """An already tuned workload: its key, description and best schedules (fastest first)."""

    key: str
    workload: str
    schedules: list[dict[str, int]]


Timings = dict[str, tuple[str, list[tuple[float, dict[str, int]]]]]  # key -> (workload, [(seconds, schedule)])


def _timed(records: str | os.PathLike[str], device: str, found: Timings) -> None:
    """Every completed trial of `device`'s studies in a records database, by key."""
    import optuna
    from optuna.trial import TrialState

    from visc.tuner.search import open_storage, trial_schedule
    from visc.tuner.validate import rejected

    storage = open_storage(records)
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        attrs = summary.user_attrs
        if attrs.get("device") != device or "key" not in attrs or attrs.get("space_version", SPACE_VERSION) != SPACE_VERSION:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        timed = found.setdefault(attrs["key"], (attrs.get("workload", ""), []))[1]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            sched = trial_schedule(t)
            if not rejected(attrs, sched):
                timed.append((float(t.value), sched))


def timings(sources: Iterable[str | os.PathLike[str]], device: str) -> Timings:
    """What `sources` measured of `device`: records databases (every completed trial), exports
    (their record) or ``shipped`` (visc's records of the device). Read once, then passed to
    `donors_of` as `known` when only some sources change between tasks."""
    from visc.tuner.records import _is_json, best_records, shipped_records

    found: Timings = {}
    for source in sources:
        if os.fspath(source) == "shipped":
            chosen = shipped_records(device)
        elif _is_json(source):
            chosen = best_records(source, device)
        elif "://" not in os.fspath(source) and not os.path.exists(source):
            continue  # a records file not written yet: nothing tuned in it
        else:
            _timed(source, device, found)
            continue
        for r in chosen:
            found.setdefault(r.key, (r.workload, []))[1].append((r.seconds, r.schedule))
    return found


def donors_of(sources: Iterable[str | os.PathLike[str]], device: str, per_key: int = 2,
              known: Timings | None = None) -> list[Donor]:
    """The tuned workloads of `device` in `sources` (see `timings`) and in `known`: each key's
    fastest `per_key` distinct schedules over all of them."""
    found: Timings = {key: (workload, list(timed)) for key, (workload, timed) in (known or {}).items()}
    for key, (workload, timed) in timings(sources, device).items():
        found.setdefault(key, (workload, []))[1].extend(timed)
    donors = []
    for key, (workload, timed) in found.items():
        best: dict[str, dict[str, int]] = {}
        for _, sched in sorted(timed, key=lambda p: p[0]):
            best.setdefault(signature(sched), sched)
            if len(best) >= per_key:
                break
        donors.append(Donor(key, workload, list(best.values())))
    return donors


def transfer_seeds(task: Task, space: SearchSpace, donors: Sequence[Donor], limit: int,
                   per_key: int = 2) -> list[dict[str, int]]:
    """Up to `limit` schedules legal in `space`: the best `per_key` of each donor of the same
    family, nearest first (`task`'s own key is never a donor: its study is the one tuned)."""
    mine = Shape.parse(task.describe())
    if mine is None or limit <= 0:
        return []
    near = []
    for d in donors:
        theirs = Shape.parse(d.workload)
        gap = None if theirs is None or d.key == task.key else mine.distance(theirs)
        if gap is not None:
            near.append((gap, d.key, d))
    seeds: list[dict[str, int]] = []
    seen: set[str] = set()
    for _, _, donor in sorted(near, key=lambda p: (p[0], p[1])):
        for sched in donor.schedules[:per_key]:
            if signature(sched) not in seen and space.params(sched) is not None and not space.problems(sched):
                seen.add(signature(sched))
                seeds.append(dict(sched))
            if len(seeds) >= limit:
                return seeds
    return seeds


__all__ = ["Shape", "Donor", "Timings", "timings", "donors_of", "transfer_seeds"]
