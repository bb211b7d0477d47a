"""Views of an engine's firings, so a user sees the stages overlap: a Chrome-trace/Perfetto
JSON file (open it in https://ui.perfetto.dev or chrome://tracing) and a PNG Gantt chart.

A firing is any `(stage, replica, frame, start, end)` tuple with `time.perf_counter()` times,
such as `ThreadEngine.firings()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from visc.errors import ViscError

FiringTuple = tuple[int, int, int, float, float]

_DPI = 120
_WIDTH_IN = 11.0


def _lane_names(
    lanes: Sequence[tuple[int, int]], stage_names: Sequence[str]
) -> dict[tuple[int, int], str]:
    """Lane (stage, replica) -> its name; replicas get a suffix only where a stage has several."""
    multi = {s for s, r in lanes if r > 0}
    return {(s, r): stage_names[s] + (f" #{r}" if s in multi else "") for s, r in lanes}


def chrome_trace(
    firings: Iterable[FiringTuple], stage_names: Sequence[str], path: str | Path
) -> None:
    """Write the firings as Chrome-trace complete events ("X", microseconds from the first
    firing), one row (tid) per stage replica, named by metadata events."""
    firings = list(firings)
    t0 = min((f[3] for f in firings), default=0.0)
    lanes = sorted({(f[0], f[1]) for f in firings})
    tids = {lane: k + 1 for k, lane in enumerate(lanes)}
    events: list[dict] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "visc pipeline"}}
    ]
    for lane, name in _lane_names(lanes, stage_names).items():
        tid = tids[lane]
        events.append(
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}}
        )
        events.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": 1,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    for stage, replica, frame, start, end in firings:
        events.append(
            {
                "name": f"frame {frame}",
                "cat": "stage",
                "ph": "X",
                "pid": 1,
                "tid": tids[(stage, replica)],
                "ts": (start - t0) * 1e6,
                "dur": (end - start) * 1e6,
                "args": {"frame": frame, "stage": stage_names[stage], "replica": replica},
            }
        )
    Path(path).write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))


def gantt_png(
    firings: Iterable[FiringTuple],
    stage_names: Sequence[str],
    path: str | Path,
    frames: int = 20,
) -> None:
    """A Gantt chart of the first `frames` frames: one row per stage (split into lanes for
    replicas), one bar per firing colored by frame, x in ms. Needs matplotlib (Agg)."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ViscError("the Gantt chart needs matplotlib: pip install matplotlib") from e
    firings = list(firings)
    shown = sorted({f[2] for f in firings})[:frames]
    if not shown:
        raise ViscError("no firings were recorded, so there is no Gantt chart to draw")
    rank = {frame: k for k, frame in enumerate(shown)}
    chosen = [f for f in firings if f[2] in rank]
    t0 = min(f[3] for f in chosen)
    span_ms = max(1e-3, (max(f[4] for f in chosen) - t0) * 1e3)
    replicas = [1] * len(stage_names)
    for stage, replica, *_ in chosen:
        replicas[stage] = max(replicas[stage], replica + 1)

    fig = Figure(figsize=(_WIDTH_IN, 1.2 + 0.55 * len(stage_names)), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab20"]
    px_per_ms = 0.8 * _WIDTH_IN * _DPI / span_ms  # about: the axes take most of the width
    for stage, replica, frame, start, end in chosen:
        height = 0.8 / replicas[stage]
        y = stage - 0.4 + replica * height
        x, w = (start - t0) * 1e3, (end - start) * 1e3
        ax.broken_barh(
            [(x, w)],
            (y, 0.95 * height),
            facecolors=cmap(rank[frame] % 20),
            edgecolors="black",
            linewidth=0.3,
        )
        label = str(frame)
        if w * px_per_ms >= 7 * len(label) + 4 and height >= 0.2:
            ax.text(x + w / 2, y + 0.475 * height, label, ha="center", va="center", fontsize=7)
    ax.set_yticks(range(len(stage_names)), list(stage_names))
    ax.set_ylim(len(stage_names) - 0.5, -0.5)  # stage 0 on top
    ax.set_xlim(0, span_ms * 1.01)
    ax.set_xlabel("time (ms)")
    ax.set_title(f"pipeline firings, frames {shown[0]}..{shown[-1]} (bar label: frame)")
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    fig.tight_layout()
    fig.savefig(str(path), format="png")
