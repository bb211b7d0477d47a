"""`visc.pipeline`: a model cut into stages that run as actors. Outputs are bitwise those of the
uncut model on the same target (each op keeps its kernel), heterogeneous stages compute what
each target computes alone, and the user surface (save/load, CLI, errors, close) holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from test_runtime_layer import BLOCKED_WHEN_DEPLOYED, BLOCKER

import visc
from visc.errors import CompileError, DeviceError, PipelineError
from visc.runtime.bench import random_inputs
from visc.stages import hand_cuts
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model

# light models whose CPU compiles are quick enough to also cut on the CPU backend in CI
CPU_MODELS = ("squeezenet", "bvlc_alexnet", "shufflenet")


def _opencl_works() -> bool:
    try:
        from visc.runtime.devices import get_context
        from visc.runtime.opencl import OpenCLExecutor  # noqa: F401

        get_context(None)
        return True
    except Exception:
        return False


def _cuda_works() -> bool:
    try:
        import pycuda.driver as drv

        drv.init()
        return drv.Device.count() > 0
    except Exception:
        return False


needs_opencl = pytest.mark.skipif(not _opencl_works(), reason="no OpenCL device")
needs_cuda = pytest.mark.skipif(not _cuda_works(), reason="no CUDA device (runs on the GPU machine)")


def _frame(pipe, seed: int = 0) -> dict[str, np.ndarray]:
    return dict(zip(pipe.input_names, random_inputs(pipe.inputs, seed=seed), strict=True))


def _stages(target: str, cuts: list[str]) -> list[visc.Stage]:
    return [visc.Stage(target=target, until=c) for c in cuts] + [visc.Stage(target=target)]


def _assert_identical(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert np.array_equal(g, w), f"max abs diff {np.max(np.abs(g.astype(np.float64) - w))}"
        assert np.any(w != 0)


def _check_cut_model(name: str, target: str, count: int) -> None:
    proto = load_light_model(name, seed=1)
    whole = visc.compile(proto, target=target, records=False)
    with visc.pipeline(proto, stages=_stages(target, hand_cuts(proto, count)), records=False) as pipe:
        assert len(pipe.stages) == count
        frames = [_frame(pipe, seed=s) for s in range(3)]
        want = [whole.run(f) for f in frames]
        _assert_identical(pipe.run(frames[0]), want[0])
        for got, w in zip(pipe.map(frames), want, strict=True):
            _assert_identical(got, w)


@needs_opencl
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_cut_on_opencl_is_bitwise_identical(name: str, count: int) -> None:
    _check_cut_model(name, "opencl", count)


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("name", CPU_MODELS)
def test_light_model_cut_on_cpu_is_bitwise_identical(name: str, count: int) -> None:
    _check_cut_model(name, "cpu", count)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_cut_on_cuda_is_bitwise_identical(name: str, count: int) -> None:
    _check_cut_model(name, "cuda", count)


@pytest.mark.parametrize("targets", [
    pytest.param(("opencl", "cpu"), marks=needs_opencl),
    pytest.param(("cpu", "opencl", "cpu"), marks=needs_opencl),
    pytest.param(("cuda", "cpu"), marks=[needs_cuda, pytest.mark.cuda]),
    pytest.param(("cuda", "opencl"), marks=[needs_cuda, needs_opencl, pytest.mark.cuda]),
    pytest.param(("cuda", "cpu", "cuda"), marks=[needs_cuda, pytest.mark.cuda]),
])
def test_heterogeneous_stages_compute_what_each_target_computes(targets: tuple[str, ...]) -> None:
    """An opencl+cpu pipeline against the same cuts run wholly on each target: stage i of the
    mixed pipeline must give exactly what stage i of its own target's pipeline gives on the
    same inputs (and those are bitwise the uncut models, tested above)."""
    proto = load_light_model("squeezenet", seed=1)
    cuts = hand_cuts(proto, len(targets))
    mixed = visc.pipeline(proto, stages=[visc.Stage(target=t, until=c) for t, c in zip(targets, [*cuts, None],
                                                                                        strict=True)], records=False)
    alone = {t: visc.pipeline(proto, stages=_stages(t, cuts), records=False) for t in set(targets)}
    try:
        frame = _frame(mixed)
        token = dict(frame)
        for i, t in enumerate(targets):
            token.update(alone[t].stages[i].fire(0, token))
        _assert_identical(mixed.run(frame), [token[n] for n in mixed.output_names])
        assert [s.model.target for s in mixed.stages] == list(targets)
    finally:
        mixed.close()
        for p in alone.values():
            p.close()


def _check_alternating(name: str, count: int, first: str, others: tuple[str, ...]) -> None:
    """``name`` cut in ``count``, stages alternating ``first`` and each of ``others`` in one
    engine: each stage's outputs bitwise what it computes in its own target's pipeline. The
    mixed pipelines are assembled from the single-target pipelines' compiled stages (a stage
    module's lowering depends only on its target; the squeezenet test above builds mixed ones
    with `visc.pipeline` itself)."""
    from visc.runtime.pipeline import Pipeline

    proto = load_light_model(name, seed=1)
    cuts = hand_cuts(proto, count)
    alone = {t: visc.pipeline(proto, stages=[visc.Stage(t, until=c, threads=2 if t == "cpu" else None)
                                             for c in [*cuts, None]], records=False) for t in (first, *others)}
    try:
        frames = [_frame(alone[first], seed=s) for s in range(2)]
        for other in others:
            targets = [first if i % 2 == 0 else other for i in range(count)]
            mixed = Pipeline([alone[t].models[i] for i, t in enumerate(targets)],
                             [alone[t].infos[i] for i, t in enumerate(targets)], alone[first].inputs,
                             alone[first].output_names, frames_in_flight=3)
            with mixed:
                want = []
                for frame in frames:
                    token = dict(frame)
                    for i, t in enumerate(targets):
                        token.update(alone[t].stages[i].fire(0, token))
                    want.append([token[n] for n in mixed.output_names])
                for got, w in zip(mixed.map(frames), want, strict=True):
                    _assert_identical(got, w)
    finally:
        for p in alone.values():
            p.close()


@pytest.mark.cuda
@needs_cuda
@needs_opencl
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_every_light_model_across_cuda_cpu_and_opencl(name: str, count: int) -> None:
    """The nine light models in 2 and 3 stages alternating cuda/cpu and cuda/opencl."""
    _check_alternating(name, count, "cuda", ("cpu", "opencl"))


@needs_opencl
def test_stages_on_one_device_hand_tensors_over_on_the_device() -> None:
    """Two OpenCL stages: the edge stays in device memory (a `Resident` the next stage copies
    device to device); an edge into a CPU stage comes back to the host."""
    from visc.runtime.device import Resident

    proto = load_light_model("squeezenet", seed=1)
    cuts = hand_cuts(proto, 3)
    stages = [visc.Stage("opencl", until=cuts[0]), visc.Stage("opencl", until=cuts[1]), visc.Stage("cpu")]
    with visc.pipeline(proto, stages=stages, records=False) as pipe:
        assert all(pipe.stages[0].keep) and not any(pipe.stages[1].keep) and not any(pipe.stages[2].keep)
        frame = _frame(pipe)
        want = pipe.run(frame)
        token: dict = dict(frame)
        out0 = pipe.stages[0].fire(0, token)
        assert out0 and all(isinstance(v, Resident) for v in out0.values())
        token.update(out0)
        out1 = pipe.stages[1].fire(0, token)
        assert all(isinstance(v, np.ndarray) for v in out1.values())
        token.update(out1)
        token.update(pipe.stages[2].fire(0, token))
        _assert_identical([token[n] for n in pipe.output_names], want)
        assert pipe.memory()["stages"][0]["slots"] == 2  # a slot computes while the other is read
        assert len(pipe.stage_seconds(frame, repeat=2)) == 3
        _assert_identical(pipe.run_sequential(frame), want)


@needs_opencl
def test_placement_stages_cut_where_the_device_changes() -> None:
    """stages="placement": the CPU fallback placement (here MaxPool) becomes stages, each run
    on its device; max pooling is exact, so the result is bitwise the all-OpenCL model's."""
    proto = load_light_model("squeezenet", seed=1)
    whole = visc.compile(proto, target="opencl", records=False)
    with visc.pipeline(proto, stages="placement", devices=["opencl"], fallback=["MaxPool"], records=False) as pipe:
        targets = [s.model.target for s in pipe.stages]
        assert targets == ["opencl", "cpu"] * 3 + ["opencl"]
        assert all(s.info.nodes == 1 for s in pipe.stages if s.model.target == "cpu")
        frame = _frame(pipe)
        _assert_identical(pipe.run(frame), whole.run(frame))
    with pytest.raises(CompileError, match="one GPU target"):
        visc.pipeline(proto, stages="placement", devices=["cpu"])


@pytest.fixture(scope="module")
def cpu_pipe():
    proto = load_light_model("squeezenet", seed=1)
    pipe = visc.pipeline(proto, stages=_stages("cpu", hand_cuts(proto, 2)), frames_in_flight=3, records=False)
    yield pipe
    pipe.close()


def test_cpu_stages_share_the_cores() -> None:
    """CPU stages that did not ask for threads split the cores left after one per GPU stage
    replica and one for the caller; a lone CPU stage takes them all."""
    from types import SimpleNamespace

    from visc.runtime.pipeline import share_cores

    def stage(on_host: bool, threads: int = 0, replicas: int = 1) -> SimpleNamespace:
        return SimpleNamespace(on_host=on_host, info=SimpleNamespace(threads=threads), replicas=replicas, cores=None)

    alone = [stage(True)]
    share_cores(alone, cores=16)
    assert alone[0].cores == 16
    gpu_then_cpu = [stage(False), stage(True)]
    share_cores(gpu_then_cpu, cores=16)
    assert gpu_then_cpu[0].cores is None and gpu_then_cpu[1].cores == 14
    mixed = [stage(True, replicas=2), stage(False), stage(True, threads=3), stage(True)]
    share_cores(mixed, cores=16)
    assert [s.cores for s in mixed] == [3, None, None, 3]  # (16 - 3 asked - 2) // 3 replicas
    tiny = [stage(True), stage(True), stage(False, replicas=4)]
    share_cores(tiny, cores=2)
    assert [s.cores for s in tiny] == [1, 1, None]


def test_stats_trace_and_plot(cpu_pipe, tmp_path) -> None:
    frame = _frame(cpu_pipe)
    list(cpu_pipe.map(frame for _ in range(4)))
    cpu_pipe.reset_stats()
    list(cpu_pipe.map(frame for _ in range(12)))
    stats = cpu_pipe.stats()
    assert stats["frames"] == 12 and stats["fps"] > 0
    assert [s["fires"] for s in stats["stages"]] == [12, 12]
    cpu_pipe.trace(str(tmp_path / "t.json"))
    events = [e for e in json.loads((tmp_path / "t.json").read_text())["traceEvents"] if e.get("ph") == "X"]
    assert len(events) == 24
    pytest.importorskip("matplotlib")
    cpu_pipe.plot(str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_report_counts_slots(cpu_pipe) -> None:
    memory = cpu_pipe.memory()
    for m in memory["stages"]:
        assert m["total"] == m["weights"] + m["slots"] * (m["arena"] + m["io"])
    assert memory["total"] == sum(m["total"] for m in memory["stages"])


def test_a_fast_producer_never_runs_ahead_of_frames_in_flight(cpu_pipe) -> None:
    frame = _frame(cpu_pipe)
    pulled = delivered = 0
    ahead: list[int] = []

    def frames():
        nonlocal pulled
        for _ in range(15):
            pulled += 1
            ahead.append(pulled - delivered)
            yield frame

    for _ in cpu_pipe.map(frames()):
        delivered += 1
    # one frame may be pulled by the feeder while it waits for admission
    assert max(ahead) <= cpu_pipe.frames_in_flight + 1


def test_a_failing_stage_names_stage_node_and_frame() -> None:
    proto = load_light_model("squeezenet", seed=1)
    with visc.pipeline(proto, stages=_stages("cpu", hand_cuts(proto, 2)), records=False) as pipe:
        stage = pipe.stages[1]
        real = stage.executor().run
        calls = {"n": 0}

        def flaky(inputs, slot=0):
            calls["n"] += 1
            if calls["n"] == 4:
                err = DeviceError("launch 3 failed at ONNX node 'n50'")
                err.node = "n50"
                raise err
            return real(inputs, slot)

        stage.executor().run = flaky  # type: ignore[method-assign]
        frame = _frame(pipe)
        with pytest.raises(PipelineError) as info:
            list(pipe.map(frame for _ in range(8)))
        assert info.value.frame == 3 and info.value.node == "n50" and "stage1" in info.value.stage
        assert "frame 3" in str(info.value) and "n50" in str(info.value)


def test_close_with_frames_in_flight_returns_promptly() -> None:
    proto = load_light_model("squeezenet", seed=1)
    pipe = visc.pipeline(proto, stages=_stages("cpu", hand_cuts(proto, 2)), records=False)
    frame = _frame(pipe)
    it = pipe.map(frame for _ in range(1000))
    next(it)
    prefix = pipe.engine().name + "/"
    start = time.perf_counter()
    pipe.close()
    assert time.perf_counter() - start < 1.0
    time.sleep(0.5)
    assert not [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]
    with pytest.raises(visc.ViscError):
        pipe.run(frame)


def test_auto_partition_balances_measured_costs() -> None:
    proto = load_light_model("squeezenet", seed=1)
    whole = visc.compile(proto, target="cpu", records=False)
    with visc.pipeline(proto, stages=2, devices=["cpu"], records=False) as pipe:
        assert len(pipe.stages) == 2 and all(s.info.nodes > 0 for s in pipe.stages)
        frame = _frame(pipe)
        _assert_identical(pipe.run(frame), whole.run(frame))


def test_bad_stage_specs_are_clear_errors() -> None:
    proto = load_light_model("squeezenet", seed=1)
    with pytest.raises(CompileError, match="neither a node nor a tensor"):
        visc.pipeline(proto, stages=[visc.Stage("cpu", until="nosuch"), visc.Stage("cpu")])
    with pytest.raises(CompileError, match="has no `until`"):
        visc.pipeline(proto, stages=[visc.Stage("cpu"), visc.Stage("cpu")])
    with pytest.raises(CompileError, match="unknown stage target"):
        visc.pipeline(proto, stages=[visc.Stage("tpu", until="n17"), visc.Stage("cpu")])
    with pytest.raises(CompileError, match="devices"):
        visc.pipeline(proto, stages=3, devices=["cpu", "cpu"])


def test_a_tensor_name_cuts_after_its_producer() -> None:
    proto = load_light_model("squeezenet", seed=1)
    node = next(n for n in proto.graph.node if n.name == "n17")
    with visc.pipeline(proto, stages=[visc.Stage("cpu", until=node.output[0]), visc.Stage("cpu")],
                       records=False) as pipe:
        assert pipe.stages[0].info.last_node.split("+")[-1] == "n17"


def test_saved_pipeline_loads_and_runs_with_the_runtime_alone(cpu_pipe, tmp_path) -> None:
    path = tmp_path / "sq.visc"
    cpu_pipe.save(str(path))
    frame = _frame(cpu_pipe, seed=4)
    np.savez(tmp_path / "in.npz", **frame)
    want = cpu_pipe.run(frame)
    script = BLOCKER.format(blocked=BLOCKED_WHEN_DEPLOYED) + f"""
import numpy as np
import visc.runtime.pipeline, visc.model
from visc.runtime.artifact import load_artifact
pipe = load_artifact({str(path)!r})
frame = dict(np.load({str(tmp_path / "in.npz")!r}))
outs = pipe.run(frame)
streamed = list(pipe.map([frame, frame]))
np.savez({str(tmp_path / "out.npz")!r}, *outs, *streamed[1])
pipe.close()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "out.npz") as data:
        got = [data[f"arr_{i}"] for i in range(len(data.files))]
    _assert_identical(got[: len(want)], want)
    _assert_identical(got[len(want):], want)


def test_cli_pipeline_streams_frames_and_writes_trace_and_plot(tmp_path) -> None:
    from visc.tools.model_zoo import light_model_path  # noqa: F401

    model = tmp_path / "sq.onnx"
    model.write_bytes(load_light_model("squeezenet", seed=1).SerializeToString())
    out = tmp_path / "p.visc"
    cmd = [sys.executable, "-m", "visc.tools.visc_cli", "pipeline", str(model), "--stage", "cpu:n21",
           "--stage", "cpu", "--frames", "12", "--trace", str(tmp_path / "t.json"), "--json",
           str(tmp_path / "s.json"), "-o", str(out)]
    if pytest.importorskip("matplotlib"):
        cmd += ["--plot", str(tmp_path / "g.png")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "frames/s" in proc.stdout and "outputs identical: True" in proc.stdout
    assert "stage1 (cpu)" in proc.stdout
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["identical"] and stats["stats"]["frames"] == 12
    assert (tmp_path / "g.png").exists() and out.exists()
    again = subprocess.run([sys.executable, "-m", "visc.tools.visc_cli", "pipeline", str(out), "--frames", "4"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    run = subprocess.run([sys.executable, "-m", "visc.tools.visc_cli", "run", str(out)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 1 and "visc pipeline" in run.stderr and "Traceback" not in run.stderr
    bad = subprocess.run([sys.executable, "-m", "visc.tools.visc_cli", "pipeline", str(model), "--stage",
                          "cpu:nosuch", "--stage", "cpu"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "visc: error:" in bad.stderr and "Traceback" not in bad.stderr
