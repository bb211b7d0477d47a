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
