"""Inputs and timing shared by the CLI, the tuner and the benchmarks, so every number visc
reports is measured the same way: seeded non-zero inputs, warm-up runs, the median."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


def random_inputs(specs: Iterable[Any], seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs for tensor specs (`.shape`, `.dtype`): normal floats, integers in 1..9
    (never zero, so integer division is defined), random booleans."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(spec.shape).astype(dtype))
        elif dtype.kind == "b":
            arrays.append(rng.integers(0, 2, spec.shape).astype(dtype))
        else:
            arrays.append(rng.integers(1, 10, spec.shape).astype(dtype))
    return arrays


def median_seconds(fn: Callable[[], object], warmup: int, repeat: int) -> float:
    """Median wall time of `repeat` calls of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved_medians(fns: list[Callable[[], object]], warmup: int, repeat: int, block: int = 5) -> list[float]:
    """Median wall time of each of `fns` over `repeat` timed calls, taken in alternating
    blocks of `block` calls (each block after one untimed call, the order reversed every
    other round), after `warmup` calls each. On a machine whose speed drifts (a shared VM,
    turbo, thermal limits), timing one system after the other puts the drift into their
    ratio; in blocks, both see the same phases, and each block starts past the other
    system's leftovers (onnxruntime's threads spin for a while after a run, caches hold the
    other's data), which alternating single calls would charge to the next call."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    r = 0
    while any(len(t) < repeat for t in times):
        order = range(len(fns)) if r % 2 == 0 else range(len(fns) - 1, -1, -1)
        for i in order:
            fns[i]()
            for _ in range(min(block, repeat - len(times[i]))):
                start = time.perf_counter()
                fns[i]()
                times[i].append(time.perf_counter() - start)
        r += 1
    return [float(np.median(t)) for t in times]
