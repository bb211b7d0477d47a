"""The CUDA executor on a real NVIDIA GPU (marked `cuda`; skipped without pycuda, the
driver or a device): all nine light models and every supported ONNX node-test case against
onnxruntime / the ONNX reference outputs, stream launches and CUDA-graph replay, timing
and error paths. `scripts/gpu/run_h100.sh` runs this file on an H100."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import make_model
from onnx import helper, numpy_helper
from onnx_node_cases import ORT_REFERENCE, skip_reason, supported_cases

import visc
from visc.compiler import compile_model
from visc.errors import DeviceError, InputShapeError
from visc.frontend.specialize import bind_inputs, graph_parameter_inputs
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.visc_cli import random_inputs, rel_error


def _gpu_available() -> str | None:
    """None when CUDA can run here, else why not."""
    try:
        import pycuda.driver as drv

        drv.init()
        if drv.Device.count() == 0:
            return "no CUDA device"
        from visc.runtime.cuda import driver_bindings

        driver_bindings()
    except Exception as e:  # noqa: BLE001 - any failure means: no CUDA here
        return f"CUDA unavailable: {e}"
    return None


_WHY_NOT = _gpu_available()
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(_WHY_NOT is not None, reason=_WHY_NOT or "")]

NODE_CASES = [c for c in supported_cases() if not skip_reason(c.name)]


def _ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_on_cuda(name: str) -> None:
    onnx_model = load_light_model(name, seed=3)
    model = visc.compile(onnx_model, target="cuda")
    inputs = random_inputs(model.plan.inputs, seed=7)
    want = _ort(onnx_model, dict(zip(model.input_names, inputs, strict=True)))
    executor = model.executor()
    for use_graph in (True, False):
        got = executor.run(model._normalize_inputs(inputs), use_graph=use_graph)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and np.abs(w).max() > 0
            assert rel_error(g, w) <= 1e-4, f"{name} (graph={use_graph}): relative error {rel_error(g, w):.2e}"


def _array(value: object) -> np.ndarray:
    return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(value)


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_node_case_on_cuda(case) -> None:
    inits = {i.name for i in case.model.graph.initializer}
    names = [vi.name for vi in case.model.graph.input if vi.name not in inits]
    params = set(graph_parameter_inputs(case.model))
    for inputs, outputs in case.data_sets:
        named = {n: _array(v) for n, v in zip(names, inputs, strict=False)}
        model = bind_inputs(case.model, {n: a for n, a in named.items() if n in params})
        feeds = {n: a for n, a in named.items() if n not in params}
        compiled = compile_model(model, target="cuda", input_shapes={n: a.shape for n, a in feeds.items()})
        got = compiled.run(feeds)
        want = [_array(v) for v in outputs]
        if case.name in ORT_REFERENCE:
            want = _ort(case.model, named)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            w = np.asarray(w)
            assert g.shape == w.shape
            if w.dtype.kind in "fc":
                np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=max(case.rtol, 1e-5),
                                           atol=max(case.atol, 1e-6), equal_nan=True)
            else:
                np.testing.assert_array_equal(g, w)


def _small_model() -> onnx.ModelProto:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["y"], name="gap")]
    return make_model(nodes, {"x": ((1, 3, 16, 16), np.float32)}, ["y"], {"w": w})


def test_graph_replay_is_one_launch_per_run() -> None:
    model = visc.compile(_small_model(), target="cuda")
    ex = model.executor()
    x = random_inputs(model.plan.inputs, seed=1)
    first = model.run(x)
    assert ex.graph_nodes() == ex.num_launches == len(model.plan.launches)
    again = model.run(x)
    np.testing.assert_array_equal(first[0], again[0])
    other = random_inputs(model.plan.inputs, seed=2)
    assert not np.array_equal(model.run(other)[0], first[0])  # the graph reads the new input


def test_timing_interfaces() -> None:
    model = visc.compile(_small_model(), target="cuda")
    ex = model.executor()
    x = random_inputs(model.plan.inputs, seed=1)
    model.run(x)
    profile = model.profile(x)
    assert [name for name, _ in profile] == [launch.kernel for launch in model.plan.launches]
    assert all(t > 0 for _, t in profile)
    kernels = ex.kernel_times(repeat=3)
    assert [node for _, node, _ in kernels] == [launch.node for launch in model.plan.launches]
    assert all(t > 0 for _, _, t in kernels)
    ex.set_inputs(x)
    ex.launch(use_graph=True)
    assert ex.device_time(use_graph=True, repeat=3) > 0
    assert ex.device_time(use_graph=False, repeat=3) > 0
    cold = ex.kernel_times(repeat=3, cold=True)
    assert [node for _, node, _ in cold] == [node for _, node, _ in kernels] and all(t > 0 for _, _, t in cold)


def test_cold_profile_holds_the_stream() -> None:
    """A cold profile run empties the L2 and holds the stream for `hold` seconds after the
    input copies, so its first start event is queued behind the hold instead of firing while
    the GPU waits for the copies or the host; it still computes the same result."""
    model = visc.compile(_small_model(), target="cuda")
    ex = model.executor()
    x = random_inputs(model.plan.inputs, seed=1)
    want = model.run(x)[0]
    drv = ex._drv
    with ex.active():
        start, end = drv.Event(), drv.Event()
        start.record(ex._stream)
    profile = ex.profile_run(x, cold=True, hold=3e-3)
    with ex.active():
        end.record(ex._stream)
        end.synchronize()
        elapsed = end.time_since(start) * 1e-3
    assert elapsed >= 3e-3 + sum(t for _, t in profile)
    assert all(t > 0 for _, t in profile)
    np.testing.assert_array_equal(model.run(x)[0], want)


def test_saved_model_runs_on_cuda(tmp_path) -> None:
    onnx_model = _small_model()
    model = visc.compile(onnx_model, target="cuda")
    path = str(tmp_path / "small.visc")
    model.save(path)
    loaded = visc.load(path)
    x = random_inputs(loaded.plan.inputs, seed=4)
    want = _ort(onnx_model, dict(zip(loaded.input_names, x, strict=True)))
    assert rel_error(loaded.run(x)[0], want[0]) <= 1e-5
    assert "sm_" in loaded.device_name


def test_executor_errors() -> None:
    model = visc.compile(_small_model(), target="cuda")
    with pytest.raises(InputShapeError, match="has shape"):
        model.executor().run([np.zeros((1, 3, 8, 8), np.float32)])
    from visc.runtime.cuda import CUDAExecutor

    with pytest.raises(DeviceError, match="does not exist"):
        CUDAExecutor(model.plan, model.source, model.weights, device="cuda:99")
    with pytest.raises(DeviceError, match="not a device index"):
        CUDAExecutor(model.plan, model.source, model.weights, device="h100")


def test_close_releases_the_executor() -> None:
    model = visc.compile(_small_model(), target="cuda")
    ex = model.executor()
    model.run(random_inputs(model.plan.inputs, seed=1))
    ex.close()
    ex.close()  # idempotent


@pytest.mark.parametrize("fallback", [None, ["NonMaxSuppression", "TopK"]], ids=["all-cuda", "nms-topk-on-cpu"])
@pytest.mark.parametrize("name", ["yolo", "ssd"])
def test_detection_models_on_cuda(name: str, fallback: list[str] | None) -> None:
    from detection_models import MODELS, image

    model, x = MODELS[name](), image()
    want = _ort(model, {"image": x})
    compiled = visc.compile(model, target="cuda", fallback=fallback)
    got = compiled.run({"image": x})
    if fallback:
        ex = compiled.executor()
        assert any(ex.on_cpu) and not all(ex.on_cpu)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got[2], want[2])
