"""Bounded FIFO of frame tokens: the edge of the lightweight-dataflow graph.

A stage's actor fires when its input FIFO holds a token and its output FIFO has room; with one
thread per actor that is a blocking `get` followed by a blocking `put`. The bound is what gives
backpressure: a fast producer stops instead of piling frames up in memory.

`close()` aborts: every waiter wakes, and later `put`/`get` raise `FifoClosed` at once. Tokens
still queued are dropped (the engine only closes a FIFO to stop the pipeline, never to mark an
end of stream, so draining them would only delay the shutdown).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FifoClosed(Exception):
    """`put`/`get` on a closed FIFO: the pipeline is shutting down."""


@dataclasses.dataclass(frozen=True)
class FifoStats:
    """Occupancy since the last reset; `mean_population` is weighted by time."""

    capacity: int
    puts: int
    max_population: int
    mean_population: float
    put_blocked_s: float  # total time producers waited for room
    get_starved_s: float  # total time consumers waited for a token


class Fifo(Generic[T]):
    """A bounded, thread-safe FIFO with blocking put/get, abortable by `close()`."""

    def __init__(self, capacity: int, name: str = "fifo"):
        if capacity < 1:
            raise ValueError(f"FIFO capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.name = name
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)
        self._closed = False
        self._reset_locked(time.perf_counter())

    def _reset_locked(self, now: float) -> None:
        self._t0 = self._t_last = now
        self._area = 0.0  # integral of population over time
        self._puts = 0
        self._max = len(self._items)
        self._blocked = 0.0
        self._starved = 0.0

    def _advance_locked(self, now: float) -> None:
        self._area += len(self._items) * (now - self._t_last)
        self._t_last = now

    def put(self, item: T) -> None:
        """Append `item`, blocking while the FIFO is full; raises `FifoClosed` once closed."""
        with self._lock:
            if len(self._items) >= self.capacity and not self._closed:
                start = time.perf_counter()
                while len(self._items) >= self.capacity and not self._closed:
                    self._not_full.wait()
                self._blocked += time.perf_counter() - start
            if self._closed:
                raise FifoClosed(self.name)
            self._advance_locked(time.perf_counter())
            self._items.append(item)
            self._puts += 1
            self._max = max(self._max, len(self._items))
            self._not_empty.notify()

    def get(self) -> T:
        """Pop the oldest token, blocking while empty; raises `FifoClosed` once closed."""
        with self._lock:
            if not self._items and not self._closed:
                start = time.perf_counter()
                while not self._items and not self._closed:
                    self._not_empty.wait()
                self._starved += time.perf_counter() - start
            if self._closed:
                raise FifoClosed(self.name)
            self._advance_locked(time.perf_counter())
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def close(self) -> None:
        """Wake every waiter and refuse later put/get; queued tokens are dropped. Idempotent."""
        with self._lock:
            self._advance_locked(time.perf_counter())
            self._closed = True
            self._items.clear()
            self._not_full.notify_all()
            self._not_empty.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def stats(self) -> FifoStats:
        with self._lock:
            now = time.perf_counter()
            self._advance_locked(now)
            span = now - self._t0
            mean = self._area / span if span > 0 else float(len(self._items))
            return FifoStats(
                self.capacity, self._puts, self._max, mean, self._blocked, self._starved
            )

    def reset_stats(self) -> None:
        """Start a new measurement window (e.g. after a warm-up); tokens stay queued."""
        with self._lock:
            self._reset_locked(time.perf_counter())
