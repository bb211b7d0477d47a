"""The Ray engine: each stage replica is a Ray actor, possibly on another host; the same
caller API as `ThreadEngine` (submit/result/run/map, stats, firings, close).

Ray does the dataflow: a frame is a chain of actor calls, ``fire`` of stage i taking the
object reference stage i-1 returned, so the tensors go from node to node through Ray's object
store (numpy arrays are read zero-copy) and never through the caller. Each actor runs its
calls one at a time in submission order, so stage i works on frame k+1 while stage i+1 works
on frame k. The caller admits at most `frames_in_flight` frames whose results it has not
taken (the bound on memory in the object store), and takes results in frame order.

An actor builds its stage from a picklable factory (`ModelStage`: a stage's artifact bytes,
loaded with the runtime alone, so workers need neither the compiler nor xDSL) and appends
to each token the firing's wall-clock times, host and process (for `stats` and traces), so
the caller fetches one object per frame: Ray calls cost about a millisecond of CPU each. Actors are created with ``max_restarts``/``max_task_retries``: a stage
process that dies is restarted (its model loaded again) and the calls it held run again,
so no frame is lost, none is delivered twice, and the order holds. Once restarts run out,
or a node is gone, `result` raises a `PipelineError` naming the stage within ``timeout_s``
instead of waiting forever.
"""

from __future__ import annotations

import collections
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from visc.errors import InputShapeError, PipelineError, ViscError
from visc.runtime.engine import (
    Firing,
    StageRunner,
    engine_stats,
    failing_node,
    next_token,
    stage_row,
    token_entries,
)

DEFAULT_TIMEOUT_S = 300.0  # a frame not done after this long: its stage (actor or node) is named
DEFAULT_RESTARTS = 3
TIMES = "\0firings"  # token entry: the (start, end, where) of each stage's firing so far


def ray_module(what: str = 'engine="ray"') -> Any:
    """Ray, or a one-line error saying that ``what`` needs it and what to install."""
    try:
        import ray
    except ImportError:
        raise ViscError(f'{what} needs Ray: pip install "visc[ray]"') from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a HOST:PORT address; None for "auto" and ray:// URLs (Ray's to resolve)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return None
    return host, int(port)


def check_listening(address: str, timeout: float = 10.0) -> None:
    """A HOST:PORT where nothing listens is an error now (`ray.init` retries for minutes)."""
    endpoint = _host_port(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except OSError as e:
        raise ViscError(f"no Ray cluster at {address}: {e}") from None


def _same_endpoint(address: str, other: str) -> bool:
    """Whether HOST:PORT ``address`` names ``other`` ("auto" and ray:// URLs: Ray's to judge)."""
    endpoint = _host_port(address)
    if endpoint is None:
        return True
    host, port = endpoint
    other_host, _, other_port = other.rpartition(":")
    try:
        return str(port) == other_port and socket.gethostbyname(host) in (socket.gethostbyname(other_host),
                                                                            "127.0.0.1")
    except OSError:
        return False


def connect(address: str | None = None, what: str = 'engine="ray"') -> Any:
    """Ray, connected: to ``address`` (HOST:PORT of the head; "auto": the cluster this host
    belongs to; None: that, else a local one started for this process) unless already."""
    ray = ray_module(what)
    if address:
        check_listening(address)
    if ray.is_initialized():
        here = ray.get_runtime_context().gcs_address
        if address and not _same_endpoint(address, here):
            raise ViscError(f"this process is connected to the Ray cluster at {here}, not {address} "
                            "(one cluster per process)")
    else:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ViscError(f"cannot connect to the Ray cluster at {address}: {e}") from None
    return ray


@dataclass
class RayStage:
    """A stage as the Ray engine runs it: ``make()`` (picklable) builds its `StageRunner`
    inside the actor; ``options``: Ray actor options (``resources``, ``num_gpus``,
    ``num_cpus``, ``max_restarts``, a scheduling strategy...)."""

    name: str
    inputs: list[str]
    outputs: list[str]
    make: Callable[[], StageRunner]
    replicas: int = 1
    options: dict[str, Any] = field(default_factory=dict)


class StageActor:
    """The body of a stage actor (wrapped with `ray.remote` when the engine starts)."""

    def __init__(self, make: Callable[[], StageRunner]):
        self.runner = make()
        self.where = f"{socket.gethostname()}:{os.getpid()}"

    def fire(self, token: dict[str, Any], keep: frozenset[str]) -> dict[str, Any]:
        runner = self.runner
        start = time.time()
        out = runner.fire(0, {name: token[name] for name in runner.inputs})
        end = time.time()
        nxt = next_token(runner, token, out, keep)
        nxt[TIMES] = [*token.get(TIMES, ()), (start, end, self.where)]
        return nxt

    def pid(self) -> int:
        return os.getpid()

    def modules(self) -> list[str]:
        """The top-level packages this actor's process imported (a deployment check)."""
        import sys

        return sorted({name.split(".")[0] for name in sys.modules})

    def close(self) -> None:
        self.runner.close()


@dataclass
class _Frame:
    tokens: list[Any]  # per stage, the reference to its output token
    replicas: list[int]


class RayEngine:
    """Runs `stages` as Ray actors (see the module docstring)."""

    def __init__(self, stages: Sequence[RayStage], outputs: Sequence[str], frames_in_flight: int = 4,
                 address: str | None = "auto", timeout_s: float = DEFAULT_TIMEOUT_S, max_firings: int = 100_000):
        if not stages:
            raise ValueError("the engine needs at least one stage")
        if frames_in_flight < 1:
            raise ValueError(f"frames_in_flight must be at least 1, got {frames_in_flight}")
        self._ray = ray = connect(address)
        self.frames_in_flight = self.capacity = frames_in_flight
        self.outputs = list(outputs)
        self.timeout_s = timeout_s
        self._stages = list(stages)
        self.graph_inputs, self.entries_after = token_entries(self._stages, self.outputs)  # type: ignore[arg-type]
        remote = ray.remote(StageActor)
        # each stage's factory (its artifact bytes) in the object store, referenced for the
        # engine's lifetime: an actor restarted after a crash builds its stage from it again
        self._makes = [ray.put(stage.make) for stage in self._stages]
        self._actors: list[list[Any]] = []
        for stage, make in zip(self._stages, self._makes, strict=True):
            options = {"num_cpus": 0, "max_restarts": DEFAULT_RESTARTS, **stage.options}
            options.setdefault("max_task_retries", options["max_restarts"])
            self._actors.append([remote.options(**options).remote(make) for _ in range(max(1, stage.replicas))])
        self._cond = threading.Condition()
        self._next_frame = 0
        self._frames: dict[int, _Frame] = {}
        self._failure: PipelineError | None = None
        self._closed = False
        self._firings: collections.deque[Firing] = collections.deque(maxlen=max_firings)
        self._where: list[set[str]] = [set() for _ in self._stages]
        self._t_start: float | None = None
        self._t_last: float | None = None
        self._frames_done = 0

    # -- caller side -------------------------------------------------------------------

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self._stages]

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._frames)

    def actors(self, stage: int) -> list[Any]:
        """The actor handles of stage ``stage``'s replicas."""
        return list(self._actors[stage])

    def ready(self) -> None:
        """Wait until every actor has built its stage (the first frame then measures no load)."""
        groups = [[a.pid.remote() for a in replicas] for replicas in self._actors]
        try:
            self._ray.get([r for group in groups for r in group], timeout=self.timeout_s)
        except Exception as e:
            timed_out = isinstance(e, self._ray.exceptions.GetTimeoutError)
            raise self._stage_error(self._first_failed(groups, timed_out), -1, e) from e

    def submit(self, inputs: Mapping[str, np.ndarray]) -> int:
        """Admit one frame and return its index; blocks while `frames_in_flight` frames are
        admitted and not yet taken (take results from another thread, or use `map`)."""
        missing = [n for n in self.graph_inputs if n not in inputs]
        if missing:
            raise InputShapeError(f"the frame has no input {', '.join(missing)}")
        token = {n: np.asarray(inputs[n]) for n in self.graph_inputs}
        with self._cond:
            while len(self._frames) >= self.frames_in_flight:
                self._check_locked()
                self._cond.wait()
            self._check_locked()
            frame = self._next_frame
            self._next_frame += 1
            if self._t_start is None:
                self._t_start = time.time()
            ref: Any = token  # Ray stores it (large arrays go to the object store once)
            tokens, replicas = [], []
            for i, actors in enumerate(self._actors):
                r = frame % len(actors)
                ref = actors[r].fire.remote(ref, self.entries_after[i])
                tokens.append(ref)
                replicas.append(r)
            self._frames[frame] = _Frame(tokens, replicas)
        return frame

    def result(self, frame: int, timeout: float | None = None) -> dict[str, np.ndarray]:
        """The final outputs of `frame`; each result is taken once."""
        with self._cond:
            self._check_locked()
            if frame not in self._frames:
                raise ValueError(f"frame {frame} was not submitted or its result was already taken")
            record = self._frames[frame]
        wait = self.timeout_s if timeout is None else timeout
        ray = self._ray
        try:
            token = ray.get(record.tokens[-1], timeout=wait)
        except Exception as e:
            timed_out = isinstance(e, ray.exceptions.GetTimeoutError)
            if timed_out and timeout is not None:
                raise TimeoutError(f"frame {frame} is not done after {timeout} s") from None
            stage = self._first_failed([[t] for t in record.tokens], timed_out)
            error = self._stage_error(stage, frame, e)
            with self._cond:
                if self._failure is None and not self._closed:
                    self._failure = error
                self._cond.notify_all()
            raise error from e
        with self._cond:
            self._frames.pop(frame, None)
            for i, (start, end, where) in enumerate(token[TIMES]):
                self._firings.append(Firing(i, record.replicas[i], frame, start, end))
                self._where[i].add(where)
            self._frames_done += 1
            self._t_last = time.time()
            self._cond.notify_all()
        return {name: token[name] for name in self.outputs}

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.result(self.submit(inputs))

    def map(self, frames: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """Results of `frames` in input order, `frames_in_flight` at a time; abandoning the
        generator drops the frames still in flight."""
        queue: collections.deque[int] = collections.deque()
        source = iter(frames)
        try:
            while True:
                while len(queue) < self.frames_in_flight:
                    nxt = next(source, None)
                    if nxt is None:
                        break
                    queue.append(self.submit(nxt))
                if not queue:
                    return
                yield self.result(queue.popleft())
        finally:
            with self._cond:
                for frame in queue:
                    self._frames.pop(frame, None)
                self._cond.notify_all()

    # -- failures ------------------------------------------------------------------------

    def _first_failed(self, refs: Sequence[Sequence[Any]], timed_out: bool) -> int:
        """The stage to blame: after a timeout, the first whose references are not ready;
        after an error, the first whose references raise (an upstream stage may still be
        finishing the frame when a downstream actor's death is already known)."""
        ray = self._ray
        for i, group in enumerate(refs):
            if timed_out:
                ready, _ = ray.wait(list(group), num_returns=len(group), timeout=0)
                if len(ready) < len(group):
                    return i
            try:
                ray.get(list(group), timeout=0 if timed_out else min(self.timeout_s, 30.0))
            except Exception:
                return i
        return len(refs) - 1

    def _stage_error(self, i: int, frame: int, e: BaseException) -> PipelineError:
        ray = self._ray
        name = self._stages[i].name if 0 <= i < len(self._stages) else "?"
        cause: BaseException = getattr(e, "cause", None) or e
        node = failing_node(cause)
        at = f" at ONNX node '{node}'" if node else ""
        on = f" frame {frame}" if frame >= 0 else " start-up"
        if isinstance(e, ray.exceptions.GetTimeoutError):
            text = (f"stage '{name}' gave no result for{on} within {self.timeout_s:g} s "
                    "(its actor is restarting, or its node is gone)")
        elif isinstance(e, ray.exceptions.RayActorError):
            text = f"stage '{name}' failed on{on}: its actor died and could not be restarted ({e})"
        else:
            text = f"stage '{name}' failed on{on}{at}: {type(cause).__name__}: {cause}"
        return PipelineError(text, name, frame, node)

    def _check_locked(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise ViscError("the engine is closed")

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Drop the frames in flight and end the actors (their stages close with them)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._frames.clear()
            self._cond.notify_all()
        for replicas in self._actors:
            for actor in replicas:
                try:
                    self._ray.kill(actor, no_restart=True)
                except Exception:  # an actor already gone
                    pass

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- statistics ----------------------------------------------------------------------

    def firings(self) -> list[Firing]:
        """Every firing of the frames taken since the last reset (wall-clock times)."""
        with self._cond:
            return list(self._firings)

    def reset_stats(self) -> None:
        with self._cond:
            self._firings.clear()
            self._t_start = self._t_last = None
            self._frames_done = 0

    def stats(self) -> dict[str, Any]:
        """As `ThreadEngine.stats`; a stage's idle time is everything but its firings (actors
        do not wait on FIFOs of their own), and ``where`` names the host:pid that ran it."""
        with self._cond:
            firings = list(self._firings)
            frames, t0, t1 = self._frames_done, self._t_start, self._t_last
            where = [sorted(w) for w in self._where]

        def rows(wall: float) -> list[dict[str, Any]]:
            out = []
            for i, stage in enumerate(self._stages):
                mine = [f for f in firings if f.stage == i]
                busy = sum(f.end - f.start for f in mine)
                row = stage_row(stage.name, stage.replicas, len(mine), busy, max(0.0, wall * stage.replicas - busy),
                                0.0, wall, (self.capacity, 0.0, 0))
                out.append({**row, "where": where[i]})
            return out

        return engine_stats(frames, t0, t1, self.frames_in_flight, self.capacity, rows, engine="ray")


__all__ = ["RayEngine", "RayStage", "StageActor", "connect", "check_listening", "ray_module"]
