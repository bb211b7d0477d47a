"""The choice between the CPU worker pool and the calling thread alone, from frame times
(`visc.runtime.cpu_pool_choice`), on synthetic times: deterministic, no timing in the test."""

from __future__ import annotations

from visc.runtime.cpu_pool_choice import FIRST_GAP, LAST_GAP, LAST_GAP_ALONE, SUSPECTS, PoolChoice


def _frames(choice: PoolChoice, count: int, pooled_s: float, alone_s: float) -> list[bool]:
    """Run ``count`` frames whose pooled and alone times are fixed; which way each went."""
    ways = []
    for _ in range(count):
        pooled = choice.use_pool()
        choice.record(pooled_s if pooled else alone_s)
        ways.append(pooled)
    return ways


def test_a_quiet_machine_stays_on_the_pool() -> None:
    choice = PoolChoice()
    assert all(_frames(choice, 2000, 1.0, 1.9))
    assert not choice.alone and choice.gap == FIRST_GAP


def test_a_taken_core_moves_frames_to_the_calling_thread_and_back() -> None:
    choice = PoolChoice()
    _frames(choice, 50, 1.0, 1.9)
    ways = _frames(choice, 40, 3.5, 1.9)  # another process took a worker's core
    assert choice.alone
    first_alone = ways.index(False)
    assert first_alone <= FIRST_GAP + SUSPECTS
    assert not any(ways[first_alone + 1:first_alone + FIRST_GAP])  # alone until the pool's next try
    ways = _frames(choice, 1000, 3.5, 1.9)
    pooled_tries = sum(ways)
    assert choice.alone and choice.gap == LAST_GAP_ALONE and 0 < pooled_tries <= 1000 // FIRST_GAP
    ways = _frames(choice, LAST_GAP_ALONE + 1, 1.0, 1.9)  # the core is free again
    assert not choice.alone and ways[-1]


def test_lost_tries_come_less_often() -> None:
    """A pooled frame slowed by something the calling thread alone cannot fix (a slower
    machine) triggers tries of alone at doubling intervals, not a try every few frames."""
    choice = PoolChoice()
    _frames(choice, 20, 1.0, 4.0)
    choice.best = 1.0  # keep the suspicion alive: the drift would otherwise absorb it
    tries = 0
    for _ in range(4000):
        choice.best = 1.0
        if not choice.use_pool():
            tries += 1
        choice.record(4.0 if choice.trying else 2.0)
    assert not choice.alone and choice.gap == LAST_GAP
    doublings = (LAST_GAP // FIRST_GAP).bit_length()
    assert tries <= doublings + 4000 // LAST_GAP


def test_a_slower_machine_drifts_the_best_time() -> None:
    """A pooled time that settles higher stops being suspect once the best time has crept up
    to it, so the pool is kept without tries."""
    choice = PoolChoice()
    _frames(choice, 20, 1.0, 4.0)
    _frames(choice, 200, 1.5, 4.0)
    ways = _frames(choice, 1000, 1.5, 4.0)
    assert all(ways) and choice.suspects == 0
