"""The command-line tools as a user meets them: bad input gives one clear paragraph, never a
traceback; compile -> run round-trips through the deployable file."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from visc.tools.model_zoo import light_model_path


def run_cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visc.tools.visc_cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def _assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("visc: error: ")
    assert proc.stderr.strip().count("\n") == 0, "the error must be one paragraph"
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def _small_model(path: str, op_type: str = "Relu", extra_nodes: list | None = None) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes = [helper.make_node(op_type, ["x"], ["t"], name="first")]
    nodes += extra_nodes or [helper.make_node("Relu", ["t"], ["y"], name="second")]
    graph = helper.make_graph(nodes, "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_truncated_onnx_file(tmp_path) -> None:
    data = open(light_model_path("squeezenet"), "rb").read()
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(data[: len(data) // 3])
    _assert_clean_error(run_cli("compile", str(bad), "-o", str(tmp_path / "m.visc")), "broken.onnx")
    assert not (tmp_path / "m.visc").exists()


def test_unsupported_ops_are_all_listed(tmp_path) -> None:
    path = str(tmp_path / "unsupported.onnx")
    _small_model(path, "Hardmax", [helper.make_node("Det", ["t"], ["y"], name="the_det")])
    _assert_clean_error(run_cli("import", path), "Hardmax", "first", "Det", "the_det")


def test_wrong_input_shape(tmp_path) -> None:
    _assert_clean_error(run_cli("compile", light_model_path("squeezenet"), "--input-shape", "data_0=1,3,224",
                                "-o", str(tmp_path / "m.visc")), "data_0")


def test_compile_run_roundtrip(tmp_path) -> None:
    src = str(tmp_path / "small.onnx")
    _small_model(src, "Sigmoid")
    out = str(tmp_path / "small.visc")
    proc = run_cli("compile", src, "-o", out, "-v")
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(out)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("run", out, "--input", f"x={tmp_path / 'x.npy'}", "--output", str(tmp_path / "y.npz"))
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npz")["y"]
    np.testing.assert_allclose(y, np.maximum(1 / (1 + np.exp(-x)), 0), rtol=1e-5, atol=1e-6)


def test_run_with_wrong_input_file_shape(tmp_path) -> None:
    src = str(tmp_path / "small.onnx")
    _small_model(src)
    out = str(tmp_path / "small.visc")
    assert run_cli("compile", src, "-o", out).returncode == 0
    np.save(tmp_path / "x.npy", np.ones((2, 3), np.float32))
    _assert_clean_error(run_cli("run", out, "--input", f"x={tmp_path / 'x.npy'}"), "'x'", "[2, 3]")


def test_corrupt_artifact(tmp_path) -> None:
    bad = tmp_path / "bad.visc"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    _assert_clean_error(run_cli("run", str(bad)), "bad.visc")


@pytest.mark.parametrize("cmd", [["import"], ["compile"], ["devices"]])
def test_help_and_basic_commands(cmd, tmp_path) -> None:
    if cmd == ["devices"]:
        proc = run_cli("devices")
        assert proc.returncode == 0 and proc.stdout.strip()
    else:
        proc = run_cli(*cmd, "--help")
        assert proc.returncode == 0 and "usage" in proc.stdout


def test_demo_runs_on_the_default_target() -> None:
    """`visc demo` with no target compiles for `default_target()` (the CPU backend on a
    machine without a GPU) and matches onnxruntime."""
    from visc.runtime.devices import default_target

    result = run_cli("demo", "--model", "squeezenet", "--repeat", "1")
    assert result.returncode == 0, result.stderr
    assert f"compiled for {default_target()} in" in result.stdout
    assert "max |visc - onnxruntime|" in result.stdout


def test_default_target_prefers_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import visc.runtime.cuda as cuda
    import visc.runtime.devices as devices

    monkeypatch.setattr(cuda, "detect_arch", lambda: None)
    cpu = devices.DeviceInfo(0, 0, "Portable Computing Language", "cpu", "CPU")
    gpu = devices.DeviceInfo(1, 0, "NVIDIA CUDA", "H100", "GPU")
    monkeypatch.setattr(devices, "list_devices", lambda: [cpu])
    assert devices.default_target() == "cpu"
    monkeypatch.setattr(devices, "list_devices", lambda: [cpu, gpu])
    assert devices.default_target() == "opencl"

    def no_opencl() -> list:
        raise devices.DeviceError("no OpenCL platform found")

    monkeypatch.setattr(devices, "list_devices", no_opencl)
    assert devices.default_target() == "cpu"


def test_demo_device_needs_opencl() -> None:
    _assert_clean_error(run_cli("demo", "--target", "cpu", "--device", "0"), "--device names an OpenCL device")
