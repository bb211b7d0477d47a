"""Whether a run of CPU launches goes to the worker pool or stays in the calling thread.

Each launch waits for the grains the workers claimed (`cpu_workers`). When another process
takes a worker's core, the worker is descheduled holding a grain, and the launch waits for
it up to a scheduler time slice: with a process spinning on one of two cores, MobileNetV2
ran 8.2 ms pooled against 4.3 ms in the calling thread alone (2.4 ms pooled on idle cores).
No counter inside the process tells that a core is taken, so the choice is made from the
frames' own times, as medians so that one slow frame (a page fault, another program's burst)
decides nothing: when three quarters of the last `WINDOW` pooled frames ran `SLOW` times
slower than the best one, `TRIAL` frames try the calling thread alone, and alone is kept if
their median beats the pooled median by `MARGIN`. While alone, `TRIAL` frames now and then try the pool
again, and it comes back as soon as it is no slower. Trials that lose come less and less
often (the gaps double): on a quiet machine a steady slowdown that the pool cannot help
costs a fraction of a percent, and on a busy one the pool's trials cost about 2% (three
frames in 128 at half speed).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

WINDOW = 8  # pooled frames whose median tells the pool's current speed
SLOW = 1.3  # 3/4 of them this much slower than the best pooled frame call for a trial of alone
TRIAL = 3  # frames a trial of the other way runs
MARGIN = 0.8  # alone is kept when its trial's median is below this much of the pooled median
FIRST_GAP = 8  # frames between trials; after a lost trial it doubles, up to:
LAST_GAP = 512  # while pooled (a lost trial of alone costs three frames at half speed)
LAST_GAP_ALONE = 128  # while alone: the pool comes back within this many frames of the core
DRIFT = 1.01  # the best pooled time creeps up this much per pooled frame (a machine slowing down)


def _window() -> deque[float]:
    return deque(maxlen=WINDOW)


@dataclass
class PoolChoice:
    """The choice for one run of launches (a frame, or a segment of one), from its times."""

    alone: bool = False  # the launches run in the calling thread
    best: float = float("inf")  # fastest pooled frame, drifting up
    pooled: deque[float] = field(default_factory=_window)  # the last pooled frames (not trials)
    single: deque[float] = field(default_factory=_window)  # the last alone frames (not trials)
    trial: list[float] = field(default_factory=list)  # the current trial's frames
    trying: bool = False  # a trial of the other way runs
    since: int = 0  # frames since the last trial ended
    gap: int = FIRST_GAP  # frames between trials

    def use_pool(self) -> bool:
        """Whether the next frame goes to the pool."""
        if not self.trying and self.since >= self.gap:
            if self.alone:
                self.trying = True
            elif len(self.pooled) == WINDOW and sorted(self.pooled)[WINDOW // 4] > SLOW * self.best:
                self.trying = True
        return self.alone == self.trying

    def record(self, seconds: float) -> None:
        """The frame `use_pool` was just asked for took ``seconds``."""
        if not self.trying:
            self.since += 1
            if self.alone:
                self.single.append(seconds)
            else:
                self.pooled.append(seconds)
                self.best = min(self.best * DRIFT, seconds)
            return
        self.trial.append(seconds)
        if len(self.trial) < TRIAL:
            return
        tried = statistics.median(self.trial)
        if self.alone:  # the pool is back when it is no slower than alone
            won = tried <= statistics.median(self.single)
        else:
            won = tried < MARGIN * statistics.median(self.pooled)
        if won:
            kept = self.pooled if self.alone else self.single
            kept.clear()
            kept.extend(self.trial)
            self.alone = not self.alone
            self.gap = FIRST_GAP
        else:
            self.gap = min(2 * self.gap, LAST_GAP_ALONE if self.alone else LAST_GAP)
        if not self.alone and self.pooled:
            self.best = min(self.best, *self.pooled)
        self.trial.clear()
        self.trying = False
        self.since = 0


__all__ = ["PoolChoice"]
