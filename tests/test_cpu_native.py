"""Ahead-of-time CPU code (visc/runtime/cpu_native.py): a cpu artifact carries object code
for the CPU that built it and loads by linking it (LLVM's optimizer never runs); a host
lacking one of its features gets a warning and a rebuild from the IR; units compiled once
come from the compile cache; the compile processes give the objects the compiler gives in
this process, and a worker that dies or fails does not lose the compile."""

from __future__ import annotations

import dataclasses
import zipfile

import numpy as np
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper

import visc
from visc.errors import ArtifactError, KernelBuildError
from visc.runtime import cpu_native
from visc.runtime.compile_cache import CompileCache
from visc.runtime.cpu_native import (
    NativeCode,
    build_native,
    host_signature,
    missing_features,
    split_units,
)


def _model(rng: np.random.Generator):
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Sigmoid", ["g"], ["y"])]
    return make_model(nodes, {"x": ([1, 3, 12, 12], np.float32)}, ["y"], {"w": w})


@pytest.fixture
def compiled(rng, tmp_path):
    onnx_model = _model(rng)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    model = visc.compile(onnx_model, target="cpu", cache=False)
    path = str(tmp_path / "m.visc")
    model.save(path)
    return onnx_model, x, model, path


def test_the_artifact_links_its_object_code_without_compiling(compiled, monkeypatch) -> None:
    onnx_model, x, model, path = compiled
    assert "native" in model.report.seconds
    with zipfile.ZipFile(path) as zf:
        assert "native/cpu.bin" in zf.namelist()
    expected = run_onnxruntime(onnx_model, {"x": x})[0]

    def no_llvm(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("loading a cpu artifact compiled its kernels")

    monkeypatch.setattr(cpu_native, "compile_unit", no_llvm)
    loaded = visc.load(path)
    np.testing.assert_allclose(loaded.run({"x": x})[0], expected, rtol=1e-5, atol=1e-6)


def test_a_host_lacking_a_feature_warns_and_rebuilds_from_the_ir(compiled) -> None:
    onnx_model, x, _, path = compiled
    loaded = visc.load(path)
    native = NativeCode.from_bytes(loaded.native["cpu"])
    alien = dataclasses.replace(native.signature, features=(*native.signature.features, "visc-test-feature"))
    loaded.native["cpu"] = dataclasses.replace(native, signature=alien).to_bytes()
    with pytest.warns(RuntimeWarning, match="lacks visc-test-feature.*compiling it again"):
        out = loaded.run({"x": x})[0]
    np.testing.assert_allclose(out, run_onnxruntime(onnx_model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_missing_features_and_architecture() -> None:
    host = host_signature()
    assert missing_features(host, host) == []
    other = dataclasses.replace(host, features=(*host.features, "zz-new"))
    assert missing_features(other, host) == ["zz-new"]
    arm = dataclasses.replace(host, triple="aarch64-unknown-linux-gnu" if host.triple.startswith("x86") else
                              "x86_64-unknown-linux-gnu")
    assert "architecture" in missing_features(arm, host)[0]


@pytest.mark.parametrize("damage", [lambda b: b[:-7], lambda b: b"nonsense" + b[8:], lambda b: b[:20]])
def test_damaged_object_code_is_a_clear_artifact_error(compiled, damage) -> None:
    _, _, model, _ = compiled
    with pytest.raises(ArtifactError, match="CPU object code is damaged"):
        NativeCode.from_bytes(damage(model.native["cpu"]))


def test_units_come_from_the_cache(compiled, tmp_path, monkeypatch) -> None:
    _, _, model, _ = compiled
    cache = CompileCache(tmp_path / "cache")
    first = build_native(model.sources["cpu"], cache=cache, jobs=1)
    assert cache.info()["kinds"]["cpu-obj"]["entries"] == len(first.objects) == len(split_units(model.sources["cpu"])[1])
    monkeypatch.setattr(cpu_native, "compile_unit", lambda *a, **k: pytest.fail("compiled a cached unit"))
    assert build_native(model.sources["cpu"], cache=cache, jobs=1).objects == first.objects


def test_worker_processes_give_the_same_objects(compiled, monkeypatch) -> None:
    _, _, model, _ = compiled
    here = build_native(model.sources["cpu"], cache=False, jobs=1)
    monkeypatch.setattr(cpu_native, "POOL_MIN_CHARS", 0)
    apart = build_native(model.sources["cpu"], cache=False, jobs=2)
    assert apart.objects == here.objects and len(here.objects) >= 2


def test_a_dead_worker_is_replaced_by_this_process(compiled, monkeypatch) -> None:
    _, _, model, _ = compiled
    monkeypatch.setattr(cpu_native, "POOL_MIN_CHARS", 0)
    cpu_native.prestart_workers(2)
    for worker in list(cpu_native._idle):
        worker.proc.kill()
        worker.proc.wait()
    native = build_native(model.sources["cpu"], cache=False, jobs=2)
    assert native.objects == build_native(model.sources["cpu"], cache=False, jobs=1).objects


def test_a_unit_llvm_rejects_is_a_kernel_build_error_from_a_worker_too(monkeypatch) -> None:
    head = f'target triple = "{host_signature().triple}"\n'
    bad = ['define void @"good"() {\n  ret void\n}', 'define void @"broken"() {\n  ret i32 7\n}']
    monkeypatch.setattr(cpu_native, "POOL_MIN_CHARS", 0)
    for jobs in (1, 2):
        with pytest.raises(KernelBuildError, match="broken"):
            build_native(head + "\n".join(bad) + "\n", cache=False, jobs=jobs, signature=host_signature())


def test_compile_jobs_reads_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(cpu_native.JOBS_ENV, "3")
    assert cpu_native.compile_jobs() == 3
    monkeypatch.setenv(cpu_native.JOBS_ENV, "many")
    with pytest.raises(KernelBuildError, match="VISC_COMPILE_JOBS"):
        cpu_native.compile_jobs()
