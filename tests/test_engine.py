"""The threads dataflow engine with fake stages (numpy functions that sleep a little): order,
pass-through, overlap, bounded memory, errors, shutdown and the trace views."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from visc.errors import InputShapeError, PipelineError, ViscError
from visc.runtime.engine import ThreadEngine, format_stats
from visc.runtime.fifo import Fifo, FifoClosed
from visc.runtime.trace import chrome_trace, gantt_png

Arrays = dict[str, np.ndarray]


class FakeStage:
    """A stage computing `fn(inputs)` after sleeping `delay(inputs)` seconds; it records the
    slot each thread uses and whether it was closed."""

    def __init__(
        self,
        name: str,
        inputs: list[str],
        outputs: list[str],
        fn: Callable[[Arrays], Arrays],
        delay: float | Callable[[Arrays], float] = 0.0,
        replicas: int = 1,
    ):
        self.name, self.inputs, self.outputs, self.replicas = name, inputs, outputs, replicas
        self.fn = fn
        self.delay = delay if callable(delay) else (lambda _: delay)
        self.slots: dict[int, set[int]] = {}  # thread id -> slots it used
        self.closed = False

    def fire(self, slot: int, inputs: Arrays) -> Arrays:
        assert 0 <= slot < self.replicas and set(inputs) == set(self.inputs)
        self.slots.setdefault(threading.get_ident(), set()).add(slot)
        time.sleep(self.delay(inputs))
        return self.fn(inputs)

    def close(self) -> None:
        self.closed = True


def frame(i: int) -> Arrays:
    return {"x": np.full(3, float(i))}


def engine_threads(engine: ThreadEngine) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(engine.name + "/")]


def wait_threads_gone(engine: ThreadEngine, timeout: float = 2.0) -> list[threading.Thread]:
    deadline = time.monotonic() + timeout
    while engine_threads(engine) and time.monotonic() < deadline:
        time.sleep(0.01)
    return engine_threads(engine)


def test_fifo_bounds_and_close():
    fifo: Fifo[int] = Fifo(2)
    fifo.put(1)
    fifo.put(2)
    blocked = threading.Thread(target=fifo.put, args=(3,))
    blocked.start()
    time.sleep(0.05)
    assert len(fifo) == 2 and blocked.is_alive()  # backpressure
    assert fifo.get() == 1
    blocked.join(1.0)
    assert [fifo.get(), fifo.get()] == [2, 3]
    stats = fifo.stats()
    assert stats.max_population == 2 and stats.puts == 3 and 0 < stats.mean_population <= 2
    assert stats.put_blocked_s > 0.03

    errors: list[BaseException] = []

    def starved_get() -> None:
        try:
            fifo.get()
        except FifoClosed as e:
            errors.append(e)

    waiter = threading.Thread(target=starved_get)
    waiter.start()
    time.sleep(0.02)
    fifo.close()
    waiter.join(1.0)
    assert not waiter.is_alive() and len(errors) == 1
    with pytest.raises(FifoClosed):
        fifo.put(4)
    with pytest.raises(ValueError):
        Fifo(0)


def test_outputs_in_input_order_with_replicas():
    rng = np.random.default_rng(0)
    delays = rng.uniform(0.0, 0.01, 30)
    s0 = FakeStage("s0", ["x"], ["h"], lambda a: {"h": a["x"] + 1})
    s1 = FakeStage(
        "s1",
        ["h"],
        ["y"],
        lambda a: {"y": a["h"] * 2},
        delay=lambda a: delays[int(a["h"][0]) - 1],
        replicas=3,
    )
    with ThreadEngine([s0, s1], ["y"]) as engine:
        results = list(engine.map(frame(i) for i in range(30)))
        assert engine.run(frame(7))["y"][0] == 16.0
        assert engine.stats()["frames"] == 31
    assert [r["y"][0] for r in results] == [2.0 * (i + 1) for i in range(30)]
    assert all(len(slots) == 1 for slots in s1.slots.values())  # replica r keeps slot r
    assert set().union(*s1.slots.values()) <= {0, 1, 2}
    assert s0.closed and s1.closed


def test_pass_through_of_skip_connections():
    s0 = FakeStage("s0", ["x"], ["a", "b"], lambda t: {"a": t["x"] + 1, "b": t["x"] * 10})
    s1 = FakeStage("s1", ["a"], ["c"], lambda t: {"c": t["a"] * 2})
    s2 = FakeStage("s2", ["c", "b"], ["d"], lambda t: {"d": t["c"] + t["b"]})
    with ThreadEngine([s0, s1, s2], ["d", "b", "x"], capacity=2) as engine:
        assert engine.graph_inputs == ["x"]
        assert engine.entries_after == [{"a", "b", "x"}, {"b", "c", "x"}, {"b", "d", "x"}]
        out = list(engine.map(frame(i) for i in range(6)))
    for i, r in enumerate(out):
        assert list(r) == ["d", "b", "x"]
        assert r["d"][0] == 2 * (i + 1) + 10 * i and r["b"][0] == 10 * i and r["x"][0] == i
    with ThreadEngine([s1, s2], ["d"]) as engine:
        assert engine.graph_inputs == ["a", "b"] and engine.entries_after == [{"b", "c"}, {"d"}]


def test_balanced_stages_overlap():
    def sleeper(name: str, src: str, dst: str) -> FakeStage:
        return FakeStage(name, [src], [dst], lambda t: {dst: t[src] + 1}, delay=0.01)

    with ThreadEngine([sleeper("s0", "x", "h"), sleeper("s1", "h", "y")], ["y"]) as engine:
        list(engine.map(frame(i) for i in range(4)))  # warm-up
        engine.reset_stats()
        list(engine.map(frame(i) for i in range(40)))
        stats = engine.stats()
    assert stats["frames"] == 40 and [s["fires"] for s in stats["stages"]] == [40, 40]
    sequential_s = 40 * sum(s["mean_fire_ms"] for s in stats["stages"]) / 1e3
    assert sequential_s / stats["wall_s"] >= 1.5, format_stats(stats)
    text = format_stats(stats)
    assert "s0" in text and "s1" in text and "frames/s" in text


def test_memory_is_bounded_with_a_slow_last_stage():
    flight, capacity = 3, 2
    live, worst, taken = 0, 0, 0  # live: frames between entering stage 0 and leaving the last
    lock = threading.Lock()

    def enter(t: Arrays) -> Arrays:
        nonlocal live, worst
        with lock:
            live += 1
            worst = max(worst, live)
        return {"h": t["x"]}

    def leave(t: Arrays) -> Arrays:
        nonlocal live
        with lock:
            live -= 1
        return {"y": t["g"]}

    fast = FakeStage("fast", ["x"], ["h"], enter)
    mid = FakeStage("mid", ["h"], ["g"], lambda t: {"g": t["h"]})
    slow = FakeStage("slow", ["g"], ["y"], leave, delay=0.02)
    with ThreadEngine([fast, mid, slow], ["y"], capacity, frames_in_flight=flight) as engine:
        for _ in engine.map(frame(i) for i in range(15)):
            assert engine.in_flight <= flight
            taken += 1
        stats = engine.stats()
    assert taken == 15 and live == 0 and 1 <= worst <= flight
    for s in stats["stages"]:
        assert s["fifo_max"] <= s["fifo_capacity"] == capacity


class NodeError(RuntimeError):
    def __init__(self, message: str, node: str | None):
        super().__init__(message)
        self.node = node


@pytest.mark.parametrize("node", ["Conv_7", None])
def test_stage_failure_surfaces_as_pipeline_error(node: str | None):
    def boom(t: Arrays) -> Arrays:
        if t["h"][0] == 5:
            raise NodeError("bad kernel", node)
        return {"y": t["h"]}

    s0 = FakeStage("stage0 (cpu)", ["x"], ["h"], lambda t: {"h": t["x"]})
    s1 = FakeStage("stage1 (opencl)", ["h"], ["y"], boom)
    seen = []
    with ThreadEngine([s0, s1], ["y"]) as engine:
        with pytest.raises(PipelineError) as info:
            for r in engine.map(frame(i) for i in range(20)):
                seen.append(int(r["y"][0]))
        err = info.value
        assert err.stage == "stage1 (opencl)" and err.frame == 5 and err.node == node
        assert "stage1 (opencl)" in str(err) and "frame 5" in str(err) and "bad kernel" in str(err)
        assert ("Conv_7" in str(err)) == (node is not None)
        assert isinstance(err.__cause__, NodeError)
        with pytest.raises(PipelineError, match="frame 5"):
            engine.run(frame(0))
    assert seen == list(range(len(seen))) and len(seen) <= 5
    assert not wait_threads_gone(engine)


def test_close_with_frames_in_flight_is_prompt():
    stages = [
        FakeStage("s0", ["x"], ["h"], lambda t: {"h": t["x"]}, delay=0.3),
        FakeStage("s1", ["h"], ["y"], lambda t: {"y": t["h"]}, delay=0.3),
    ]
    engine = ThreadEngine(stages, ["y"])
    frames = [engine.submit(frame(i)) for i in range(3)]
    time.sleep(0.05)  # stage 0 is inside fire
    start = time.perf_counter()
    engine.close()
    assert time.perf_counter() - start < 1.0
    engine.close()  # idempotent
    assert not wait_threads_gone(engine)
    assert all(s.closed for s in stages)
    with pytest.raises(ViscError, match="closed"):
        engine.result(frames[0])
    with pytest.raises(ViscError, match="closed"):
        engine.submit(frame(9))


def test_abandoned_map_then_close_is_clean():
    def endless():
        i = 0
        while True:
            yield frame(i)
            i += 1

    stages = [
        FakeStage("s0", ["x"], ["h"], lambda t: {"h": t["x"]}, delay=0.005),
        FakeStage("s1", ["h"], ["y"], lambda t: {"y": t["h"] + 1}, delay=0.005),
    ]
    engine = ThreadEngine(stages, ["y"], capacity=2)
    it = engine.map(endless())
    assert [next(it)["y"][0] for _ in range(3)] == [1.0, 2.0, 3.0]
    it.close()  # abandons frames in flight: their admission slots come back
    deadline = time.monotonic() + 2.0
    while any(t.name.endswith("/feeder") for t in engine_threads(engine)):
        assert time.monotonic() < deadline, "the feeder of an abandoned map() still runs"
        time.sleep(0.01)
    for i in range(5):  # more than frames_in_flight
        assert engine.run(frame(i))["y"][0] == i + 1
    engine.close()
    assert not wait_threads_gone(engine)


def test_bad_inputs_reach_the_caller():
    def frames_then_fail():
        yield frame(0)
        yield frame(1)
        raise ValueError("camera unplugged")

    stage = FakeStage("s0", ["x"], ["y"], lambda t: {"y": t["x"] * 3})
    with ThreadEngine([stage], ["y"]) as engine:
        with pytest.raises(InputShapeError, match="x"):
            engine.submit({"z": np.zeros(3)})
        got = []
        with pytest.raises(ValueError, match="camera unplugged"):
            for r in engine.map(frames_then_fail()):
                got.append(r["y"][0])
        assert got == [0.0, 3.0]
        assert engine.run(frame(2))["y"][0] == 6.0  # the engine itself is still fine


def test_chrome_trace_and_gantt(tmp_path):
    stages = [
        FakeStage("s0", ["x"], ["h"], lambda t: {"h": t["x"]}, delay=0.002),
        FakeStage("s1", ["h"], ["y"], lambda t: {"y": t["h"]}, delay=0.004, replicas=2),
    ]
    with ThreadEngine(stages, ["y"]) as engine:
        list(engine.map(frame(i) for i in range(12)))
        firings, names = engine.firings(), engine.stage_names
    assert len(firings) == 24
    chrome_trace(firings, names, tmp_path / "trace.json")
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == len(firings)
    assert all(e["dur"] >= 0 and e["ts"] >= 0 and "frame" in e["args"] for e in complete)
    lanes = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert "s0" in lanes and lanes & {"s1 #0", "s1 #1"}
    assert {e["tid"] for e in complete} <= {e["tid"] for e in events if e["name"] == "thread_name"}

    pytest.importorskip("matplotlib")
    gantt_png(firings, names, tmp_path / "gantt.png", frames=8)
    assert (tmp_path / "gantt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_switch_interval_is_lowered_while_an_engine_runs():
    """Stage threads coming back from native code wait for the GIL at most the switch
    interval: lowered while any engine runs, restored when the last one closes."""
    import sys

    from visc.runtime.engine import SWITCH_INTERVAL_S

    before = sys.getswitchinterval()
    first = ThreadEngine([FakeStage("a", ["x"], ["y"], lambda d: {"y": d["x"] + 1})], ["y"])
    second = ThreadEngine([FakeStage("b", ["x"], ["y"], lambda d: {"y": d["x"] * 2})], ["y"])
    try:
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL_S))
        assert first.run({"x": np.ones(3)})["y"].tolist() == [2.0, 2.0, 2.0]
        first.close()
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL_S))
        assert second.run({"x": np.ones(3)})["y"].tolist() == [2.0, 2.0, 2.0]
    finally:
        first.close()
        second.close()
    assert sys.getswitchinterval() == pytest.approx(before)
