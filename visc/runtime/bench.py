"""Inputs and timing shared by the CLI, the tuner and the benchmarks, so every number visc
reports is measured the same way: seeded non-zero inputs, warm-up runs, the median."""

from __future__ import annotations

import multiprocessing as mp
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


class CopyStage:
    """An empty pipeline stage that copies its one input to its one output (after ``delay_s``):
    what the engines' per-hop overhead is measured with (importable by a Ray worker, unlike a
    benchmark's class)."""

    def __init__(self, i: int, src: str, dst: str, delay_s: float = 0.0):
        self.name = f"copy{i}"
        self.inputs, self.outputs, self.replicas = [src], [dst], 1
        self.delay_s = delay_s

    def fire(self, slot: int, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.delay_s:
            time.sleep(self.delay_s)
        return {self.outputs[0]: inputs[self.inputs[0]].copy()}

    def close(self) -> None:
        pass


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


def interleaved_medians(fns: list[Callable[[], object]], warmup: int, repeat: int, block: int = 5,
                        settle: float = 0.1) -> list[float]:
    """Median wall time of each of `fns` over `repeat` timed calls, taken in alternating
    blocks of `block` calls (each block after `settle` seconds idle and one untimed call, the
    order reversed every other round), after `warmup` calls each. On a machine whose speed
    drifts (a shared VM, turbo, thermal limits), timing one system after the other puts the
    drift into their ratio; in blocks, both see the same phases. Each block starts past the
    other system's leftovers: onnxruntime's intra-op threads spin for more than 10 ms after
    its last run (on 2 cores, visc's CPU backend ran at half speed in that window, and at
    full speed 100 ms later), and caches hold the other's data. A function with a
    ``timed(n)`` method (`OrtProcess`) times its own calls."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    r = 0
    while any(len(t) < repeat for t in times):
        order = range(len(fns)) if r % 2 == 0 else range(len(fns) - 1, -1, -1)
        for i in order:
            if settle:
                time.sleep(settle)
            fns[i]()
            n = min(block, repeat - len(times[i]))
            timed = getattr(fns[i], "timed", None)
            if timed is not None:  # a peer in another process times its own calls
                times[i] += timed(n)
                continue
            for _ in range(n):
                start = time.perf_counter()
                fns[i]()
                times[i].append(time.perf_counter() - start)
        r += 1
    return [float(np.median(t)) for t in times]


def _missing_onnxruntime() -> Exception:
    """The error a comparison against onnxruntime raises when it is not installed."""
    from visc.errors import ViscError

    return ViscError("onnxruntime is not installed: pip install 'visc[test]' to compare against it")


def ort_session(model: str | bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session of `model` (a path or bytes), `threads` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise _missing_onnxruntime() from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def _ort_serve(conn: Any, model: bytes, threads: int | None) -> None:
    sess = ort_session(model, threads)
    feeds: dict[str, np.ndarray] = {}
    while True:
        try:
            cmd, arg = conn.recv()
        except EOFError:
            return
        if cmd == "feeds":
            feeds = arg
            conn.send(None)
        elif cmd == "run":
            outs = sess.run(None, feeds)
            conn.send(outs if arg else None)
        elif cmd == "timed":
            out = []
            for _ in range(arg):
                start = time.perf_counter()
                sess.run(None, feeds)
                out.append(time.perf_counter() - start)
            conn.send(out)
        else:
            return


class OrtProcess:
    """onnxruntime (CPU) in a process of its own, as the peer benchmarks time visc against.
    In one process, the two runtimes' thread pools slow each other: after PoCL had run
    kernels, onnxruntime took 7.1 ms on SqueezeNet instead of 4.1, and PoCL 12 ms instead
    of 6.6 (2-core VM). Calling the object runs one inference; `timed(n)` times n in the
    child; `outputs()` returns the outputs of one run."""

    def __init__(self, model: bytes, feeds: dict[str, np.ndarray], threads: int | None = None):
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:  # the parent never imports it
            raise _missing_onnxruntime()
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_ort_serve, args=(child, model, threads), daemon=True)
        self._proc.start()
        child.close()
        self._ask("feeds", feeds)

    def _ask(self, cmd: str, arg: Any = None) -> Any:
        self._conn.send((cmd, arg))
        try:
            return self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the onnxruntime process died (exit code {self._proc.exitcode})") from None

    def __call__(self) -> None:
        self._ask("run", False)

    def outputs(self) -> list[np.ndarray]:
        return self._ask("run", True)

    def timed(self, n: int) -> list[float]:
        return self._ask("timed", n)

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(("stop", None))
            except OSError:
                pass
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()

    def __enter__(self) -> OrtProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
