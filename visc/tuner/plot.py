"""Best-time-versus-trial curves read back from the tuning database, and their PNG.

A curve counts measured trials only, in trial order: pruned proposals (rejected by the space),
repeats of an earlier schedule (told its earlier result) and trials a killed run left
unfinished cost no measurement, so the
x axis is what a search paid for. A failed trial counts but never lowers the curve.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from visc.errors import ViscError
from visc.tuner.search import _optuna, is_measured, open_storage


@dataclass
class Curve:
    """One study's measured trials: `times[i]` is trial i's seconds (None: failed)."""

    sampler: str
    times: list[float | None] = field(default_factory=list)
    default_seconds: float | None = None  # the study's own measurement of the default schedule

    def best_so_far(self) -> list[float | None]:
        out: list[float | None] = []
        best: float | None = None
        for t in self.times:
            if t is not None and (best is None or t < best):
                best = t
            out.append(best)
        return out

    @property
    def best(self) -> float | None:
        done = [t for t in self.times if t is not None]
        return min(done) if done else None

    def trials_to_reach(self, target_seconds: float) -> int | None:
        """Measured trials until the best time is at most `target_seconds` (None: never)."""
        for i, b in enumerate(self.best_so_far()):
            if b is not None and b <= target_seconds:
                return i + 1
        return None


@dataclass
class TaskCurves:
    """Every sampler's curve for one (device, workload key)."""

    device: str
    key: str
    workload: str
    default_seconds: float | None
    curves: dict[str, Curve] = field(default_factory=dict)


def read_curves(records: str | os.PathLike[str], device: str | None = None,
                keys: Sequence[str] | None = None) -> list[TaskCurves]:
    """The curves of the studies in `records` (optionally one device's, and only `keys`),
    grouped per task in the order the studies were created."""
    optuna = _optuna()
    from optuna.trial import TrialState

    if "://" not in os.fspath(records) and not os.path.exists(records):
        raise ViscError(f"tuning records '{os.fspath(records)}' do not exist")
    storage = open_storage(records)
    wanted = set(keys) if keys is not None else None
    tasks: dict[tuple[str, str], TaskCurves] = {}
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        attrs = summary.user_attrs
        if "key" not in attrs or (device is not None and attrs.get("device") != device):
            continue
        if wanted is not None and attrs["key"] not in wanted:
            continue
        task = tasks.setdefault((attrs["device"], attrs["key"]), TaskCurves(
            attrs["device"], attrs["key"], attrs.get("workload", ""), attrs.get("default_seconds")))
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        curve = Curve(attrs.get("sampler", summary.study_name.rsplit("|", 1)[-1]),
                      default_seconds=attrs.get("default_seconds"))
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            if not is_measured(t):  # interrupted trials and repeats cost no measurement of their own
                continue
            curve.times.append(float(t.value) if t.state == TrialState.COMPLETE else None)
        task.curves[curve.sampler] = curve
    return list(tasks.values())


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ViscError("plotting needs matplotlib: pip install matplotlib (or pip install 'visc[tune]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PANEL_CHARS = 64  # characters of an 8-point panel title across a 5.2-inch panel
TITLE_CHARS_PER_COLUMN = 52  # characters of the 10-point figure title per panel column


def _wrapped(text: str, width: int, lines: int) -> str:
    """``text`` on at most ``lines`` lines of ``width`` characters (the last one shortened)."""
    import textwrap

    parts = textwrap.wrap(text, width) or [""]
    if len(parts) > lines:
        parts = parts[: lines - 1] + [textwrap.shorten(" ".join(parts[lines - 1:]), width, placeholder=" ...")]
    return "\n".join(parts)


def plot_curves(tasks: Sequence[TaskCurves], out: str | os.PathLike[str], title: str | None = None) -> None:
    """One panel per task: best time (us) versus measured trial, one line per sampler, and
    the default schedule's time dashed."""
    if not tasks:
        raise ViscError("nothing to plot: no tuning studies match")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    cols = min(3, len(tasks))
    rows = (len(tasks) + cols - 1) // cols
    # constrained layout reserves the figure title's space (tight_layout may let it overprint
    # the first row's panels); titles wrap to their width instead of running past it
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False, layout="constrained")
    colors = {"tpe": "tab:blue", "random": "tab:orange"}
    for ax, task in zip(axes.flat, tasks, strict=False):
        for name in sorted(task.curves):
            ys = task.curves[name].best_so_far()
            pts = [(i + 1, y * 1e6) for i, y in enumerate(ys) if y is not None]
            if pts:
                ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", label=name,
                        color=colors.get(name))
        if task.default_seconds:
            ax.axhline(task.default_seconds * 1e6, color="gray", linestyle="--", linewidth=1, label="default")
        ax.set_title(_wrapped(task.workload or task.key[:16], PANEL_CHARS, 2), fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("measured trial")
        ax.set_ylabel("best time (us)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(_wrapped(title, TITLE_CHARS_PER_COLUMN * cols, 3), fontsize=10)
    try:
        fig.savefig(os.fspath(out), dpi=100)
    except OSError as e:
        raise ViscError(f"cannot write the plot '{os.fspath(out)}': {e}") from e
    finally:
        plt.close(fig)


def plot_records(records: str | os.PathLike[str], out: str | os.PathLike[str], device: str | None = None,
                 keys: Sequence[str] | None = None) -> int:
    """Write the PNG of `records`' studies; returns how many tasks it shows."""
    tasks = read_curves(records, device, keys)
    plot_curves(tasks, out, title=device)
    return len(tasks)


__all__ = ["Curve", "TaskCurves", "read_curves", "plot_curves", "plot_records"]
