"""The runtime as its own layer: `visc.runtime` imports neither xDSL nor the compiler side, a
saved model runs in a process that cannot import them, old (version-1) plans still load, and
executors with several frame slots run them concurrently with the same results."""

from __future__ import annotations

import ast
import functools
import json
import pathlib
import subprocess
import sys
import threading
import zipfile

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import helper

import visc
from visc.errors import DeviceError, KernelBuildError
from visc.model import CompiledModel
from visc.runtime.device import Device, node_error
from visc.runtime.plan import CPU_DEVICE, Plan

COMPILER_SIDE = ("xdsl", "visc.passes", "visc.dialects", "visc.frontend", "visc.backends", "visc.compiler",
                 "visc.tuner")
RUNTIME = pathlib.Path(visc.__file__).parent / "runtime"

# target, fallback op types: the three kinds of executor a model gets
CASES = {"cpu": ("cpu", None), "opencl": ("opencl", None), "mixed": ("opencl", ["MaxPool"])}


@functools.cache
def _opencl_builds() -> bool:
    """Whether the default OpenCL device compiles programs (PoCL fails on CPUs its LLVM
    cannot name)."""
    try:
        import pyopencl as cl

        from visc.runtime.devices import get_context

        ctx, dev = get_context()
        cl.Program(ctx, "__kernel void k(__global float* a) { a[0] = 1.0f; }").build(devices=[dev])
        return True
    except Exception:  # noqa: BLE001 - any failure: no usable OpenCL here
        return False


def _needs_device(case: str) -> None:
    if CASES[case][0] == "opencl" and not _opencl_builds():
        pytest.skip("the OpenCL device cannot build programs here")


def _tiny_model() -> onnx.ModelProto:
    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((4, 8, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Conv", ["p", "w2"], ["c2"], name="conv2"),
             helper.make_node("Relu", ["c2"], ["y"], name="relu2")]
    return make_model(nodes, {"x": ((1, 3, 16, 16), np.float32)}, ["y"], {"w1": w1, "w2": w2})


@functools.cache
def _compiled(case: str) -> visc.CompiledModel:
    target, fallback = CASES[case]
    return visc.compile(_tiny_model(), target=target, fallback=fallback)


def _inputs(seed: int) -> list[np.ndarray]:
    return [np.random.default_rng(seed).standard_normal((1, 3, 16, 16)).astype(np.float32)]


# -- layering --------------------------------------------------------------------------------


def _imported_modules(path: pathlib.Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_runtime_imports_no_compiler_side() -> None:
    offending = [f"{path.name}: {name}" for path in sorted(RUNTIME.glob("*.py")) for name in _imported_modules(path)
                 if any(name == b or name.startswith(b + ".") for b in COMPILER_SIDE)]
    assert not offending


# a script prelude (``.format(blocked=...)``) that makes importing any of ``blocked`` fail
BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"the runtime imported {{name}}")
        return None

sys.meta_path.insert(0, Block())
"""
BLOCKED_WHEN_DEPLOYED = (*COMPILER_SIDE, "onnx", "onnxruntime")

BLOCKING_RUNNER = BLOCKER + """import numpy as np
import visc
data = np.load(sys.argv[2])
model = visc.load(sys.argv[1])
got = model.run([data["x"]])
assert all(np.array_equal(g, data[f"y{{i}}"]) for i, g in enumerate(got)), "outputs differ"
assert not [m for m in sys.modules if m.split(".")[0] in ("xdsl", "onnx")]
print("ran on", model.device_name)
"""


@pytest.mark.parametrize("case", list(CASES))
def test_saved_model_runs_without_the_compiler(case: str, tmp_path) -> None:
    _needs_device(case)
    model = _compiled(case)
    x = _inputs(1)
    want = model.run(x)
    path, data = str(tmp_path / "m.visc"), str(tmp_path / "io.npz")
    model.save(path)
    np.savez(data, x=x[0], **{f"y{i}": y for i, y in enumerate(want)})
    done = subprocess.run([sys.executable, "-c", BLOCKING_RUNNER.format(blocked=BLOCKED_WHEN_DEPLOYED), path, data],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "ran on" in done.stdout


# -- plan versions ---------------------------------------------------------------------------


def _as_version_1(plan: Plan) -> dict:
    data = json.loads(plan.to_json())
    data["version"] = 1
    for launch in data["launches"]:
        del launch["device"], launch["writes"]
    return data


def test_plan_records_devices_and_writes() -> None:
    mixed, cpu = _compiled("mixed").plan, _compiled("cpu").plan
    assert mixed.version == cpu.version == 2
    assert [la.device for la in mixed.launches] == ["", CPU_DEVICE, ""]  # conv+relu, pool, conv+relu
    assert all(la.device == CPU_DEVICE for la in cpu.launches)
    assert "cpu_kernels" not in _compiled("mixed").metadata and "launch_writes" not in _compiled("mixed").metadata
    # every launch writes its output and reads the rest; the writes are known at compile time
    for la in mixed.launches:
        assert la.writes is not None and 0 < len(la.writes) < len(la.args)
    assert Plan.from_json(mixed.to_json()) == mixed


def test_version_1_plan_loads(tmp_path) -> None:
    for case in ("cpu", "mixed"):
        model = _compiled(case)
        old = Plan.from_json(json.dumps(_as_version_1(model.plan)))
        assert old.version == 1 and all(la.device == "" and la.writes is None for la in old.launches)
        assert all(la.written == list(range(len(la.args))) for la in old.launches)
        # an artifact of that time: the plan without devices, the CPU launches in its metadata
        path = str(tmp_path / f"{case}.visc")
        model.save(path)
        with zipfile.ZipFile(path) as zf:
            files = {name: zf.read(name) for name in zf.namelist()}
        manifest = json.loads(files["manifest.json"])
        manifest["plan"] = _as_version_1(model.plan)
        if case == "mixed":
            manifest["metadata"]["cpu_kernels"] = sorted({la.kernel for la in model.plan.launches
                                                          if la.device == CPU_DEVICE})
            manifest["metadata"]["launch_writes"] = [la.writes for la in model.plan.launches]
        files["manifest.json"] = json.dumps(manifest).encode()
        with zipfile.ZipFile(path, "w") as zf:
            for name, blob in files.items():
                zf.writestr(name, blob)
        loaded = visc.load(path)
        # version 1 knew the writes of mixed plans only
        assert [(la.device, la.writes) for la in loaded.plan.launches] == \
            [(la.device, la.writes if case == "mixed" else None) for la in model.plan.launches]
        if case == "cpu":
            np.testing.assert_array_equal(loaded.run(_inputs(3))[0], model.run(_inputs(3))[0])


# -- frame slots -----------------------------------------------------------------------------


def _run_concurrently(ex: Device, frames: list[list[np.ndarray]]) -> dict[int, np.ndarray]:
    """Frame i's first output, frames run three times over from two threads, one per slot."""
    got: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        try:
            for _ in range(3):
                for i in range(slot, len(frames), 2):
                    got[i] = ex.run(frames[i], slot=slot)[0]
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    workers = [threading.Thread(target=worker, args=(s,)) for s in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    assert not errors, errors
    return got


@pytest.mark.parametrize("case", list(CASES))
def test_slots_run_concurrently_with_the_same_results(case: str) -> None:
    _needs_device(case)
    model = _compiled(case)
    frames = [_inputs(10 + i) for i in range(6)]
    want = [model.run(x)[0] for x in frames]
    for threads in ((1, 2) if case == "cpu" else (None,)):
        ex = model.make_executor(slots=2, threads=threads)
        assert isinstance(ex, Device) and ex.slots == 2 and ex is not model.executor()
        got = _run_concurrently(ex, frames)
        for i, w in enumerate(want):
            np.testing.assert_array_equal(got[i], w)
        one, two = model.memory(), ex.memory()
        assert one["slots"] == 1 and two["slots"] == 2
        assert two["total"] == two["weights"] + 2 * (two["arena"] + two["io"])
        assert two["weights"] == one["weights"] and two["arena"] == one["arena"] and two["io"] == one["io"]
        ex.close()
        ex.close()  # idempotent
        with pytest.raises(Exception):  # noqa: B017 - whichever error the device gives
            ex.run(frames[0])


def test_errors_name_the_onnx_node() -> None:
    plan = _compiled("cpu").plan
    k = next(i for i, la in enumerate(plan.launches) if la.node)
    error = node_error(DeviceError, plan, k, "failed")
    assert error.node == plan.launches[k].node and f"'{plan.launches[k].node}'" in str(error)
    bad = Plan.from_json(plan.to_json())
    bad.launches[k].block = (2, 1, 1)  # not a host-function launch
    with pytest.raises(KernelBuildError) as info:
        CompiledModel(bad, _compiled("cpu").sources, _compiled("cpu").weights, "cpu").executor()
    assert info.value.node == plan.launches[k].node  # type: ignore[attr-defined]


def test_mixed_executor_over_two_host_devices(monkeypatch) -> None:
    """The mixed executor's copies and slots, with a second CPU executor standing in for the
    GPU (so this runs wherever the CPU backend does): every other launch on the "GPU"."""
    import dataclasses

    from visc.runtime import mixed
    from visc.runtime.cpu import CPUExecutor

    model = _compiled("cpu")
    plan = dataclasses.replace(model.plan, launches=[dataclasses.replace(la, device=CPU_DEVICE if k % 2 else "")
                                                     for k, la in enumerate(model.plan.launches)])
    monkeypatch.setattr(mixed, "gpu_executor", lambda target, share, source, weights, device, slots:
                        CPUExecutor(share, source, weights, threads=1, slots=slots))
    ex = mixed.MixedExecutor(plan, "opencl", model.sources["cpu"], model.sources["cpu"], model.weights, slots=2)
    frames = [_inputs(20 + i) for i in range(4)]
    want = [model.run(x)[0] for x in frames]
    got = [ex.run(x, slot=i % 2)[0] for i, x in enumerate(frames)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    # each device change copies the one buffer the next launch reads (the input included)
    assert ex.copies == len(plan.launches) - 1 + (plan.launches[0].device != CPU_DEVICE)
    together = _run_concurrently(ex, frames)
    for i, w in enumerate(want):
        np.testing.assert_array_equal(together[i], w)
    profile = ex.profile_run(frames[0])
    assert [k for k, _ in profile] == [la.kernel for la in plan.launches]
    memory = ex.memory()
    assert memory["total"] == memory["weights"] + 2 * (memory["arena"] + memory["io"])
    ex.close()
