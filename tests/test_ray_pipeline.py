"""Pipelines on the Ray engine, on a real two-node Ray cluster on 127.0.0.1 (`ray_cluster`):
the second stage on the worker node (the one offering the "edge1" resource) gives bitwise
what the same stages give in one process; a killed stage process is restarted and no frame
is lost, duplicated or reordered; when restarts run out the caller hears which stage."""

from __future__ import annotations

import functools
import os
import signal
import sys

import numpy as np
import pytest

import visc
from visc.errors import PipelineError, ViscError
from visc.runtime.bench import CopyStage, random_inputs
from visc.runtime.pipeline import Pipeline
from visc.stages import hand_cuts
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install \"visc[ray]\")")

pytestmark = pytest.mark.xdist_group("ray")  # one test cluster per session: these tests share a worker

ON_WORKER = {"resources": {"edge1": 0.001}}  # a share of it: any number of stages fit there


def _frames(pipe: Pipeline, count: int) -> list[dict[str, np.ndarray]]:
    return [dict(zip(pipe.input_names, random_inputs(pipe.inputs, seed=s), strict=True)) for s in range(count)]


def _on_threads(pipe: Pipeline) -> Pipeline:
    """The same compiled stages on the threads engine, in this process."""
    return Pipeline(pipe.models, pipe.infos, pipe.inputs, pipe.output_names, frames_in_flight=pipe.frames_in_flight)


def _two_stages(name: str, address: str, **options: object) -> Pipeline:
    proto = load_light_model(name, seed=1)
    (cut,) = hand_cuts(proto, 2)
    return visc.pipeline(proto, stages=[visc.Stage("cpu", until=cut, threads=1),
                                        visc.Stage("cpu", threads=1, ray={**ON_WORKER, **options})],
                         records=False, engine="ray", ray_address=address, frames_in_flight=3)


def _assert_identical(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape and np.any(w != 0)
        assert np.array_equal(g, w), f"max abs diff {np.max(np.abs(g.astype(np.float64) - w))}"


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_with_a_stage_on_the_worker_node_is_bitwise(ray_cluster, name: str) -> None:
    pipe = _two_stages(name, ray_cluster)
    local = _on_threads(pipe)
    try:
        frames = _frames(pipe, 3)
        want = [local.run(f) for f in frames]
        for got, w in zip(pipe.map(frames), want, strict=True):
            _assert_identical(got, w)
        stats = pipe.stats()
        assert [s["fires"] for s in stats["stages"]] == [3, 3] and stats["engine"] == "ray"
        # memory as the plans say, without executors here; equal to what the executors report
        assert pipe.memory()["total"] == local.memory()["total"]
        # the stage ran in a Ray worker process of its own, not in this one
        assert all(f"{os.getpid()}" not in w.split(":")[-1] for s in stats["stages"] for w in s["where"])
    finally:
        pipe.close()
        local.close()


def test_stage_actors_load_with_the_runtime_alone(ray_cluster, tmp_path) -> None:
    """Worker processes import neither xDSL nor the compiler; a saved Ray pipeline loads and
    runs on the cluster with the runtime alone."""
    pipe = _two_stages("squeezenet", ray_cluster)
    try:
        frame = _frames(pipe, 1)[0]
        want = pipe.run(frame)
        engine = pipe.engine()
        for stage in range(2):
            modules = set(ray.get(engine.actors(stage)[0].modules.remote()))
            assert "visc" in modules and "numpy" in modules
            assert not modules & {"xdsl", "onnx", "onnxruntime"}, modules & {"xdsl", "onnx", "onnxruntime"}
        path = str(tmp_path / "p.visc")
        pipe.save(path)
    finally:
        pipe.close()
    loaded = visc.load(path)
    assert isinstance(loaded, Pipeline) and loaded.engine_kind == "ray" and loaded.infos[1].ray == ON_WORKER
    with loaded:
        _assert_identical(loaded.run(frame), want)


def test_replicas_order_stats_and_trace(ray_cluster, tmp_path) -> None:
    """Copy stages, the middle one with two replicas: every frame once, in input order; a
    trace with a row per stage replica."""
    from visc.runtime.ray_engine import RayEngine, RayStage

    stages = [RayStage(f"copy{i}", [f"t{i}"], [f"t{i + 1}"], functools.partial(CopyStage, i, f"t{i}", f"t{i + 1}"),
                       replicas=2 if i == 1 else 1, options=ON_WORKER if i == 1 else {}) for i in range(3)]
    with RayEngine(stages, ["t3"], frames_in_flight=4, address=ray_cluster) as engine:
        engine.ready()
        outs = list(engine.map({"t0": np.full(4, float(i))} for i in range(24)))
        assert [float(o["t3"][0]) for o in outs] == [float(i) for i in range(24)]
        assert [s["fires"] for s in engine.stats()["stages"]] == [24, 24, 24]
        assert {(f.stage, f.replica) for f in engine.firings()} == {(0, 0), (1, 0), (1, 1), (2, 0)}
        from visc.runtime.trace import chrome_trace

        chrome_trace(engine.firings(), engine.stage_names, tmp_path / "t.json")
        assert (tmp_path / "t.json").stat().st_size > 0


def _pid(actor: object) -> int:
    return int(ray.get(actor.pid.remote()))  # type: ignore[attr-defined]


def test_a_killed_stage_process_loses_no_frame(ray_cluster) -> None:
    """SIGKILL the worker-node stage's process mid-stream: Ray restarts it (its model loaded
    again) and runs the calls it held again; every frame comes back once, in order, bitwise."""
    pipe = _two_stages("squeezenet", ray_cluster, max_restarts=2)
    local = _on_threads(pipe)
    try:
        frames = _frames(pipe, 16)
        want = [local.run(f) for f in frames]
        pid = _pid(pipe.engine().actors(1)[0])
        got = []
        for k, outs in enumerate(pipe.map(frames)):
            got.append(outs)
            if k == 3:
                os.kill(pid, signal.SIGKILL)
        assert len(got) == len(frames)
        for g, w in zip(got, want, strict=True):
            _assert_identical(g, w)
    finally:
        pipe.close()
        local.close()


def test_a_stage_out_of_restarts_is_named(ray_cluster) -> None:
    pipe = _two_stages("squeezenet", ray_cluster, max_restarts=0)
    try:
        frames = _frames(pipe, 2)
        pipe.run(frames[0])
        engine = pipe.engine()
        engine.timeout_s = 60
        os.kill(_pid(engine.actors(1)[0]), signal.SIGKILL)
        with pytest.raises(PipelineError, match=r"stage1 \(cpu\)") as info:
            pipe.run(frames[1])
        assert info.value.stage == "stage1 (cpu)" and info.value.frame == 1
        with pytest.raises(PipelineError):  # the pipeline stays failed
            pipe.run(frames[0])
    finally:
        pipe.close()


def test_a_stage_that_gives_no_result_is_named_within_the_timeout(ray_cluster) -> None:
    """A stage stuck past ``timeout_s`` (as a frame on a node that is gone would be): the caller
    gets a PipelineError naming it after the timeout, never a hang."""
    import time

    from visc.runtime.ray_engine import RayEngine, RayStage

    stages = [RayStage("fast", ["t0"], ["t1"], functools.partial(CopyStage, 0, "t0", "t1")),
              RayStage("stuck", ["t1"], ["t2"], functools.partial(CopyStage, 1, "t1", "t2", 60.0), options=ON_WORKER)]
    with RayEngine(stages, ["t2"], address=ray_cluster, timeout_s=3.0) as engine:
        engine.ready()
        start = time.monotonic()
        with pytest.raises(PipelineError, match="stage 'stuck' gave no result for frame 0 within 3 s") as info:
            engine.run({"t0": np.ones(3)})
        assert info.value.stage == "stuck" and time.monotonic() - start < 30
        close = time.monotonic()
    assert time.monotonic() - close < 10  # close does not wait for the stuck firing


def test_without_ray_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ViscError, match=r'pip install "visc\[ray\]"'):
        visc.pipeline(load_light_model("squeezenet", seed=1), stages=2, devices=["cpu"], engine="ray")
    with pytest.raises(ViscError, match="unknown engine 'dask'"):
        visc.pipeline(load_light_model("squeezenet", seed=1), stages=2, devices=["cpu"], engine="dask")


def test_cli_runs_a_stage_on_the_worker_node(ray_cluster, tmp_path) -> None:
    """`visc pipeline --stage cpu:NODE --stage cpu@edge1 --engine ray`: the second stage on the
    node offering edge1, outputs identical to the same stages run one after the other."""
    import json
    import subprocess

    model = tmp_path / "sq.onnx"
    model.write_bytes(load_light_model("squeezenet", seed=1).SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "visc.tools.visc_cli", "pipeline", str(model), "--stage", "cpu:n21",
                           "--stage", "cpu@edge1", "--threads", "1", "--engine", "ray", "--ray-address", ray_cluster,
                           "--frames", "10", "--json", str(tmp_path / "s.json")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "outputs identical: True" in proc.stdout
    stats = json.loads((tmp_path / "s.json").read_text())["stats"]
    assert stats["engine"] == "ray" and stats["frames"] == 10
    assert "memory:" in proc.stdout
