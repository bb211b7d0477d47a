"""The threads dataflow engine: stages as actors over bounded FIFOs, pipelining frames.

Each stage replica is an actor on its own thread. It fires when its input FIFO holds a token
and its output FIFO has room (a blocking `get`, the stage's `fire`, a blocking `put`), so
successive frames overlap across stages and throughput approaches the slowest stage. A token
is one frame, `(frame index, {entry: array})`; after stage i it holds exactly the entries a
later stage or the final outputs still need (skip connections pass through, dead tensors are
dropped at once).

Memory stays bounded whatever the input rate: FIFOs are bounded, and admission control lets at
most `frames_in_flight` frames be admitted and not yet taken by the caller, which also bounds
the reorder buffer at the sink when replicas finish frames out of order.

While an engine runs, the interpreter's switch interval is lowered to `SWITCH_INTERVAL_S`
(restored when the last engine closes): a stage thread that comes back from native code (a
kernel, a copy, a wait) needs the GIL, and while another stage runs Python it would wait up
to the default 5 ms for it, which stretched a 0.3 ms CPU stage to 1.8 ms next to a CUDA stage.

A failure in any `fire` stops the whole pipeline; every later call raises `PipelineError`
naming the stage, frame and ONNX node. `close()` aborts at once: it closes the FIFOs, joins
the actors briefly, and leaves a stage still inside `fire` to exit (and close its runner) when
that firing returns, so a stage's runner is never closed under a running firing.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from visc.errors import InputShapeError, PipelineError, ViscError
from visc.runtime.fifo import Fifo, FifoClosed

Token = tuple[int, dict[str, np.ndarray]]

_ENGINE_IDS = itertools.count()
_JOIN_TIMEOUT_S = 0.25  # close() waits this long, in all, for the actors
SWITCH_INTERVAL_S = 2e-4  # the interpreter's switch interval while any engine runs


class _SwitchInterval:
    """Counts running engines; the first lowers `sys.setswitchinterval`, the last restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0.0

    def hold(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, SWITCH_INTERVAL_S))
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                sys.setswitchinterval(self._saved)


_SWITCH = _SwitchInterval()


class StageRunner(Protocol):
    """One stage of a cut model, as the engine drives it (an executor owning frame slots)."""

    name: str  # e.g. "stage0 (opencl)"
    inputs: list[str]  # token entries it reads
    outputs: list[str]  # entries it produces
    replicas: int  # copies of the actor (>= 1); replica r always uses frame slot r

    def fire(self, slot: int, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one frame on `slot`; calls on distinct slots may run concurrently."""
        ...

    def close(self) -> None: ...


class Firing(NamedTuple):
    """One firing of a stage replica; times from `time.perf_counter()`."""

    stage: int
    replica: int
    frame: int
    start: float
    end: float


def token_entries(
    stages: Sequence[StageRunner], outputs: Sequence[str]
) -> tuple[list[str], list[frozenset[str]]]:
    """(graph inputs, entries a token holds after each stage), computed backwards from the
    final outputs: after stage i, what a later stage reads or the caller gets, minus what a
    later stage produces."""
    needed = set(outputs)
    after: list[frozenset[str]] = []
    for stage in reversed(stages):
        after.append(frozenset(needed))
        needed = (needed - set(stage.outputs)) | set(stage.inputs)
    order = [n for s in stages for n in s.inputs] + list(outputs)
    graph_inputs = sorted(needed, key=order.index)
    return graph_inputs, after[::-1]


def next_token(stage: StageRunner, token: Mapping[str, Any], out: Mapping[str, Any],
               keep: frozenset[str]) -> dict[str, Any]:
    """The token after `stage` fired: the entries of ``token`` and its outputs ``out`` that
    ``keep`` names (what later stages or the caller still read); a missing output is an error."""
    missing = [name for name in stage.outputs if name not in out]
    if missing:
        raise ViscError(f"fire() returned no {', '.join(missing)}")
    nxt = {name: a for name, a in token.items() if name in keep}
    nxt.update((name, out[name]) for name in stage.outputs if name in keep)
    return nxt


def stage_row(name: str, replicas: int, fires: int, busy: float, idle: float, blocked: float, wall: float,
              fifo: tuple[int, float, int]) -> dict[str, Any]:
    """One stage's line of an engine's `stats()`; fractions are of ``replicas * wall``;
    ``fifo``: (capacity, mean and max occupancy) of its input FIFO."""
    span = wall * replicas
    return {"name": name, "replicas": replicas, "fires": fires, "busy_s": busy, "idle_s": idle,
            "blocked_s": blocked, "busy_frac": busy / span if span else 0.0,
            "idle_frac": idle / span if span else 0.0, "blocked_frac": blocked / span if span else 0.0,
            "mean_fire_ms": 1e3 * busy / fires if fires else 0.0, "fifo_capacity": fifo[0], "fifo_mean": fifo[1],
            "fifo_max": fifo[2]}


def engine_stats(frames: int, t0: float | None, t1: float | None, frames_in_flight: int, capacity: int,
                 rows: Callable[[float], list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    """An engine's `stats()`: throughput over the window ``t0`` (first submit) to ``t1`` (last
    delivery) and the stage rows ``rows(wall)`` gives."""
    wall = t1 - t0 if t0 is not None and t1 is not None and t1 > t0 else 0.0
    return {"frames": frames, "wall_s": wall, "fps": frames / wall if wall else 0.0,
            "frames_in_flight": frames_in_flight, "capacity": capacity, **extra, "stages": rows(wall)}


@dataclasses.dataclass
class _StageCounters:
    fires: int = 0
    busy: float = 0.0  # inside fire
    idle: float = 0.0  # waiting for an input token
    blocked: float = 0.0  # waiting for room in the output FIFO


@dataclasses.dataclass
class _Feed:
    """State shared by one `map()` generator and its feeder thread (under the engine lock)."""

    frames: collections.deque[int] = dataclasses.field(default_factory=collections.deque)
    done: bool = False
    cancelled: bool = False
    error: BaseException | None = None


class _Cancelled(Exception):
    """The map() generator was abandoned: its feeder stops submitting."""


@dataclasses.dataclass(frozen=True)
class _Failure:
    stage: str
    frame: int
    node: str | None
    cause: BaseException


def failing_node(exc: BaseException) -> str | None:
    """The ONNX node a stage's exception names (`visc.runtime.device.node_error`), if any."""
    node = getattr(exc, "node", None)
    if node is None:
        return None
    return node if isinstance(node, str) else str(getattr(node, "name", node))


class ThreadEngine:
    """Runs `stages` as a pipeline of actors, one thread per stage replica."""

    def __init__(
        self,
        stages: Sequence[StageRunner],
        outputs: Sequence[str],
        capacity: int = 4,
        frames_in_flight: int | None = None,
        max_firings: int = 100_000,
    ):
        if not stages:
            raise ValueError("the engine needs at least one stage")
        for stage in stages:
            if stage.replicas < 1:
                raise ValueError(f"stage '{stage.name}' has {stage.replicas} replicas")
        self.frames_in_flight = capacity if frames_in_flight is None else frames_in_flight
        if self.frames_in_flight < 1:
            raise ValueError(f"frames_in_flight must be at least 1, got {frames_in_flight}")
        self.name = f"visc-engine-{next(_ENGINE_IDS)}"
        self.capacity = capacity
        self.outputs = list(outputs)
        self._stages = list(stages)
        self.graph_inputs, self.entries_after = token_entries(self._stages, self.outputs)
        # FIFO i feeds stage i; the last stage delivers straight into the reorder buffer,
        # which admission control bounds.
        self._fifos: list[Fifo[Token]] = [Fifo(capacity, f"into {s.name}") for s in self._stages]
        self._cond = threading.Condition()
        self._next_frame = 0
        self._pending: set[int] = set()  # admitted, result not yet taken
        self._done: dict[int, dict[str, np.ndarray]] = {}  # reorder buffer
        self._abandoned: set[int] = set()  # frames of an abandoned map(): discard at sink
        self._failure: _Failure | None = None
        self._closed = False
        self._t_start: float | None = None  # stats window: first submit/delivery ...
        self._t_last: float | None = None  # ... to the last delivery
        self._frames_done = 0
        self._stats_lock = threading.Lock()
        self._counters = [_StageCounters() for _ in self._stages]
        self._firings: collections.deque[Firing] = collections.deque(maxlen=max_firings)
        self._live = [s.replicas for s in self._stages]
        self._runner_closed = [False] * len(self._stages)
        self._threads = [
            threading.Thread(
                target=self._work, args=(i, r), name=f"{self.name}/stage{i}.r{r}", daemon=True
            )
            for i, s in enumerate(self._stages)
            for r in range(s.replicas)
        ]
        _SWITCH.hold()
        self._unhold = weakref.finalize(self, _SWITCH.release)
        for t in self._threads:
            t.start()

    # -- caller side -------------------------------------------------------------------

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self._stages]

    @property
    def in_flight(self) -> int:
        """Frames admitted whose result has not been taken yet."""
        with self._cond:
            return len(self._pending)

    def submit(self, inputs: Mapping[str, np.ndarray]) -> int:
        """Admit one frame and return its index; blocks while `frames_in_flight` frames are
        admitted and not yet taken (take results from another thread, or use `map`)."""
        return self._submit(inputs, None)

    def result(self, frame: int, timeout: float | None = None) -> dict[str, np.ndarray]:
        """The final outputs of `frame` (in `outputs` order); each result is taken once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._check_locked()
                if frame in self._done:
                    break
                if frame not in self._pending or frame in self._abandoned:
                    raise ValueError(
                        f"frame {frame} was not submitted or its result was already taken"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"frame {frame} is not done after {timeout} s")
                self._cond.wait(remaining)
            token = self._done.pop(frame)
            self._pending.discard(frame)
            self._frames_done += 1
            self._t_last = time.perf_counter()
            self._cond.notify_all()
        return {name: token[name] for name in self.outputs}

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One frame through the whole pipeline."""
        return self.result(self.submit(inputs))

    def map(self, frames: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """Results of `frames`, in input order. A feeder thread submits while this generator
        takes results, so at most `frames_in_flight` frames are held; abandoning the
        generator cancels the feeder and discards the frames still in flight."""
        feed = _Feed()
        feeder = threading.Thread(
            target=self._feed, args=(iter(frames), feed), name=f"{self.name}/feeder", daemon=True
        )
        feeder.start()
        try:
            while True:
                with self._cond:
                    while not feed.frames and not feed.done:
                        self._check_locked()
                        self._cond.wait()
                    if not feed.frames:  # the feeder finished
                        self._check_locked()
                        if feed.error is not None:
                            raise feed.error
                        return
                    frame = feed.frames.popleft()
                yield self.result(frame)
        finally:
            self._abandon(feed)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop at once (frames in flight are dropped) and close the stage runners.
        Idempotent; a stage still inside `fire` closes its runner when that firing returns."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._unhold()
        for fifo in self._fifos:
            fifo.close()
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            idle = [i for i, live in enumerate(self._live) if live == 0]
            idle = [i for i in idle if not self._runner_closed[i]]
            for i in idle:
                self._runner_closed[i] = True
        for i in idle:
            self._close_runner(i)

    def __enter__(self) -> ThreadEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- statistics ----------------------------------------------------------------------

    def firings(self) -> list[Firing]:
        """Every firing since the last reset (the newest `max_firings`)."""
        with self._stats_lock:
            return list(self._firings)

    def reset_stats(self) -> None:
        """Start a new measurement window, e.g. for the steady state after a warm-up."""
        with self._cond:
            self._t_start = self._t_last = None
            self._frames_done = 0
        with self._stats_lock:
            self._counters = [_StageCounters() for _ in self._stages]
            self._firings.clear()
        for fifo in self._fifos:
            fifo.reset_stats()

    def stats(self) -> dict[str, Any]:
        """Throughput over the window (first submit to last delivery) and, per stage, how its
        replicas split their time; fractions are of `replicas * wall_s`."""
        with self._cond:
            frames, t0, t1 = self._frames_done, self._t_start, self._t_last
        with self._stats_lock:
            counters = [dataclasses.replace(c) for c in self._counters]

        def rows(wall: float) -> list[dict[str, Any]]:
            out = []
            for stage, c, fifo in zip(self._stages, counters, self._fifos, strict=True):
                fs = fifo.stats()
                out.append(stage_row(stage.name, stage.replicas, c.fires, c.busy, c.idle, c.blocked, wall,
                                     (fs.capacity, fs.mean_population, fs.max_population)))
            return out

        return engine_stats(frames, t0, t1, self.frames_in_flight, self.capacity, rows)

    # -- internals -----------------------------------------------------------------------

    def _check_locked(self) -> None:
        if self._failure is not None:
            f = self._failure
            where = f" at ONNX node '{f.node}'" if f.node else ""
            raise PipelineError(
                f"stage '{f.stage}' failed on frame {f.frame}{where}: "
                f"{type(f.cause).__name__}: {f.cause}",
                f.stage,
                f.frame,
                f.node,
            ) from f.cause
        if self._closed:
            raise ViscError("the dataflow engine is closed")

    def _submit(self, inputs: Mapping[str, np.ndarray], feed: _Feed | None) -> int:
        missing = [name for name in self.graph_inputs if name not in inputs]
        if missing:
            raise InputShapeError(f"missing pipeline input(s): {', '.join(missing)}")
        token = {name: inputs[name] for name in self.graph_inputs}
        with self._cond:
            while True:
                self._check_locked()
                if feed is not None and feed.cancelled:
                    raise _Cancelled
                if len(self._pending) < self.frames_in_flight:
                    break
                self._cond.wait()
            frame = self._next_frame
            self._next_frame += 1
            self._pending.add(frame)
            if feed is not None:
                feed.frames.append(frame)
                self._cond.notify_all()
            if self._t_start is None:
                self._t_start = time.perf_counter()
        try:
            self._fifos[0].put((frame, token))
        except FifoClosed:
            with self._cond:
                self._check_locked()
            raise
        return frame

    def _feed(self, frames: Iterator[Mapping[str, np.ndarray]], feed: _Feed) -> None:
        try:
            for inputs in frames:
                self._submit(inputs, feed)
        except _Cancelled:
            pass
        except BaseException as e:  # handed to the map() generator
            feed.error = e
        finally:
            with self._cond:
                feed.done = True
                self._cond.notify_all()

    def _abandon(self, feed: _Feed) -> None:
        """Cancel a map()'s feeder and release the admission slots of its untaken frames."""
        with self._cond:
            feed.cancelled = True
            for frame in feed.frames:
                if frame in self._done:
                    del self._done[frame]
                    self._pending.discard(frame)
                elif frame in self._pending:
                    self._abandoned.add(frame)
            feed.frames.clear()
            self._cond.notify_all()

    def _deliver(self, frame: int, token: dict[str, np.ndarray]) -> None:
        with self._cond:
            if frame in self._abandoned:
                self._abandoned.discard(frame)
                self._pending.discard(frame)
            elif not self._closed:
                self._done[frame] = token
            if self._t_start is None:
                self._t_start = time.perf_counter()
            self._cond.notify_all()

    def _fail(self, stage: int, frame: int, exc: BaseException) -> None:
        with self._cond:
            if self._failure is None and not self._closed:
                name = self._stages[stage].name
                self._failure = _Failure(name, frame, failing_node(exc), exc)
            self._cond.notify_all()
        for fifo in self._fifos:
            fifo.close()

    def _work(self, i: int, replica: int) -> None:
        """The actor loop of replica `replica` of stage `i`."""
        stage = self._stages[i]
        fin = self._fifos[i]
        fout = self._fifos[i + 1] if i + 1 < len(self._fifos) else None
        keep = self.entries_after[i]
        try:
            while True:
                t_wait = time.perf_counter()
                try:
                    frame, token = fin.get()
                except FifoClosed:
                    return
                t_fire = time.perf_counter()
                try:
                    out = stage.fire(replica, {name: token[name] for name in stage.inputs})
                    t_end = time.perf_counter()
                    nxt = next_token(stage, token, out, keep)
                except BaseException as e:  # any failure stops the pipeline, never hangs it
                    self._fail(i, frame, e)
                    return
                del token, out  # drop dead tensors before waiting for room downstream
                t0 = self._t_start
                with self._stats_lock:
                    c = self._counters[i]
                    c.fires += 1
                    c.busy += t_end - t_fire
                    c.idle += max(0.0, t_fire - max(t_wait, t0 if t0 is not None else t_wait))
                    self._firings.append(Firing(i, replica, frame, t_fire, t_end))
                if fout is None:
                    self._deliver(frame, nxt)
                    continue
                try:
                    fout.put((frame, nxt))
                except FifoClosed:
                    return
                with self._stats_lock:
                    self._counters[i].blocked += time.perf_counter() - t_end
        finally:
            self._replica_exited(i)

    def _replica_exited(self, i: int) -> None:
        with self._cond:
            self._live[i] -= 1
            close_now = self._live[i] == 0 and self._closed and not self._runner_closed[i]
            if close_now:
                self._runner_closed[i] = True
        if close_now:
            self._close_runner(i)

    def _close_runner(self, i: int) -> None:
        try:
            self._stages[i].close()
        except Exception as e:  # close() must not fail half-way through the stages
            warnings.warn(f"closing stage '{self._stages[i].name}' failed: {e}", stacklevel=2)


def format_stats(stats: Mapping[str, Any]) -> str:
    """A plain-text table of `ThreadEngine.stats()`."""
    lines = [
        f"{stats['frames']} frames in {stats['wall_s']:.3f} s: {stats['fps']:.1f} frames/s "
        f"(frames in flight {stats['frames_in_flight']}, FIFO capacity {stats['capacity']})",
    ]
    header = ("stage", "repl", "fires", "mean ms", "busy", "idle", "blocked", "fifo mean", "max")
    rows = [
        (
            s["name"],
            str(s["replicas"]),
            str(s["fires"]),
            f"{s['mean_fire_ms']:.2f}",
            f"{100 * s['busy_frac']:.1f}%",
            f"{100 * s['idle_frac']:.1f}%",
            f"{100 * s['blocked_frac']:.1f}%",
            f"{s['fifo_mean']:.2f}",
            f"{s['fifo_max']}/{s['fifo_capacity']}",
        )
        for s in stats["stages"]
    ]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)
