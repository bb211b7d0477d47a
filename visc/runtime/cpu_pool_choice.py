"""Whether a run of CPU launches goes to the worker pool or stays in the calling thread.

Each launch waits for the grains the workers claimed (`cpu_workers`). When another process
takes a worker's core, the worker is descheduled holding a grain, and the launch waits for
it up to a scheduler time slice: with a process spinning on one of two cores, MobileNetV2
ran 8.2 ms pooled against 4.3 ms in the calling thread alone (2.4 ms pooled on idle cores).
No counter inside the process tells that a core is taken, so the choice is made from the
frames' own times: a pooled frame much slower than the best pooled frame seen is a suspect;
a few suspects in a row make the next frame try the calling thread alone, and alone wins if
it is faster. While alone, a frame now and then tries the pool again. Tries that lose come
less and less often (the intervals double): on a quiet machine a steady slowdown that the
pool cannot help costs a fraction of a percent, and on a busy one the pool's tries cost
about 1.5% (one frame in 64 at half speed).
"""

from __future__ import annotations

from dataclasses import dataclass

SLOW = 1.3  # a pooled frame this much slower than the best pooled frame is a suspect
SUSPECTS = 3  # suspects in a row before a frame tries the calling thread alone
FIRST_GAP = 8  # frames between tries of the other way; after a lost try it doubles, up to:
LAST_GAP = 512  # while pooled (a lost try of alone costs a frame at half speed)
LAST_GAP_ALONE = 64  # while alone: the pool comes back within this many frames of the core
RETURN_MARGIN = 0.9  # a pooled try while alone wins back the pool when this much faster
DRIFT = 1.01  # the best pooled time creeps up this much per pooled frame (a machine slowing down)


@dataclass
class PoolChoice:
    """The choice for one run of launches (a frame, or a segment of one), from its times."""

    alone: bool = False  # the launches run in the calling thread
    best: float = float("inf")  # fastest pooled frame, drifting up
    single: float = float("inf")  # the last alone frame's time
    recent: float = float("inf")  # the last pooled frame's time
    suspects: int = 0  # slow pooled frames in a row
    since: int = 0  # frames since the last try of the other way
    gap: int = FIRST_GAP  # frames between tries of the other way
    trying: bool = False  # this frame tries the other way

    def use_pool(self) -> bool:
        """Whether the next frame goes to the pool."""
        if self.alone:
            self.trying = self.since >= self.gap
            return self.trying
        self.trying = self.suspects >= SUSPECTS and self.since >= self.gap
        return not self.trying

    def record(self, seconds: float) -> None:
        """The frame `use_pool` was just asked for took ``seconds``."""
        self.since += 1
        pooled = self.alone == self.trying
        if not pooled:
            self.single = seconds
        if self.trying:
            self.since = 0
            won = seconds < RETURN_MARGIN * self.single if self.alone else seconds < self.recent
            if won:
                self.alone = not self.alone
                self.gap = FIRST_GAP
                self.suspects = 0
            else:
                self.gap = min(2 * self.gap, LAST_GAP_ALONE if self.alone else LAST_GAP)
            self.trying = False
            if pooled:
                self.recent = seconds
                self.best = min(self.best, seconds)
            return
        if pooled:
            self.suspects = self.suspects + 1 if seconds > SLOW * self.best else 0
            self.recent = seconds
            self.best = min(self.best * DRIFT, seconds)


__all__ = ["PoolChoice"]
