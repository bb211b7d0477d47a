"""The choice between the CPU worker pool and the calling thread alone, from frame times
(`visc.runtime.cpu_pool_choice`), on synthetic times: deterministic, no timing in the test."""

from __future__ import annotations

from collections.abc import Callable

from visc.runtime.cpu_pool_choice import (
    FIRST_GAP,
    LAST_GAP,
    LAST_GAP_ALONE,
    TRIAL,
    WINDOW,
    PoolChoice,
)


def _frames(choice: PoolChoice, count: int, pooled_s: float | Callable[[int], float], alone_s: float) -> list[bool]:
    """Run ``count`` frames of the given pooled time (or a function of the frame's number)
    and alone time; which way each went."""
    ways = []
    for i in range(count):
        pooled = choice.use_pool()
        took = (pooled_s(i) if callable(pooled_s) else pooled_s) if pooled else alone_s
        choice.record(took)
        ways.append(pooled)
    return ways


def test_a_quiet_machine_stays_on_the_pool() -> None:
    choice = PoolChoice()
    assert all(_frames(choice, 2000, 1.0, 1.9))
    assert not choice.alone and choice.gap == FIRST_GAP


def test_single_slow_frames_decide_nothing() -> None:
    """One pooled frame in four three times slower (bursts of other programs) leaves the
    median where it was: no trial of alone."""
    choice = PoolChoice()
    assert all(_frames(choice, 2000, lambda i: 3.0 if i % 4 == 0 else 1.0, 1.9))


def test_a_taken_core_moves_frames_to_the_calling_thread_and_back() -> None:
    choice = PoolChoice()
    _frames(choice, 50, 1.0, 1.9)
    ways = _frames(choice, 40, 3.5, 1.9)  # another process took a worker's core
    assert choice.alone
    first_alone = ways.index(False)
    assert first_alone <= WINDOW
    assert not any(ways[first_alone:first_alone + TRIAL + FIRST_GAP])  # the trial, then alone until the next
    ways = _frames(choice, 2000, 3.5, 1.9)
    assert choice.alone and choice.gap == LAST_GAP_ALONE
    assert sum(ways) <= TRIAL * (2000 // LAST_GAP_ALONE + (LAST_GAP_ALONE // FIRST_GAP).bit_length())
    ways = _frames(choice, LAST_GAP_ALONE + TRIAL + 1, 1.0, 1.9)  # the core is free again
    assert not choice.alone and ways[-1]


def test_alone_must_win_clearly() -> None:
    """A slowdown alone helps only a little with (alone within `MARGIN` of pooled) keeps the
    pool, and its trials come at doubling gaps."""
    choice = PoolChoice()
    _frames(choice, 20, 1.0, 4.0)
    choice.best = 1.0
    tried = 0
    for _ in range(4000):
        choice.best = 1.0  # keep the slowdown a slowdown: the drift would otherwise absorb it
        if not choice.use_pool():
            tried += 1
        choice.record(1.7 if choice.trying else 2.0)
    assert not choice.alone and choice.gap == LAST_GAP
    doublings = (LAST_GAP // FIRST_GAP).bit_length()
    assert tried <= TRIAL * (doublings + 4000 // LAST_GAP)


def test_a_slower_machine_drifts_the_best_time() -> None:
    """A pooled time that settles higher stops being a slowdown once the best time has crept
    up to it, so the pool is kept without trials."""
    choice = PoolChoice()
    _frames(choice, 20, 1.0, 4.0)
    _frames(choice, 200, 1.5, 4.0)
    ways = _frames(choice, 1000, 1.5, 4.0)
    assert all(ways)
