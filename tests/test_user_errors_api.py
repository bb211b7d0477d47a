"""Every mistake a caller can make through the Python API is a `visc.ViscError` whose message
names what the caller gave (issue 21): input dtypes checked as onnxruntime checks them (with
``cast=True`` to convert), wrong input names and counts, compile arguments, a closed model, a
non-.visc file given to `visc.load`, and saves that fail without leaving a partial file."""

from __future__ import annotations

import errno
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper

import visc
import visc.onnx_backend as backend
from visc.errors import (
    ArtifactError,
    CompileError,
    InputShapeError,
    InputTypeError,
    ModelLoadError,
    ViscError,
)
from visc.runtime.plan import TensorSpec, normalize_inputs

TABLE = np.arange(15, dtype=np.float32).reshape(5, 3) / 7


def _model() -> onnx.ModelProto:
    """Two inputs of different dtypes: ``x`` (float32, Relu then Sigmoid) and ``idx`` (int64
    indices into a weight table)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["t"], name="first"),
        helper.make_node("Sigmoid", ["t"], ["y"], name="second"),
        helper.make_node("Gather", ["table", "idx"], ["z"], axis=0, name="lookup"),
    ]
    return make_model(nodes, {"x": ((1, 3, 4, 4), np.float32), "idx": ((2,), np.int64)}, ["y", "z"],
                      {"table": TABLE}, opset=13)


@pytest.fixture(scope="module")
def onnx_model() -> onnx.ModelProto:
    return _model()


@pytest.fixture(scope="module")
def model(onnx_model: onnx.ModelProto) -> visc.CompiledModel:
    return visc.compile(onnx_model, target="cpu", records=False)


@pytest.fixture(scope="module")
def pipe(onnx_model: onnx.ModelProto):
    with visc.pipeline(onnx_model, stages=[visc.Stage(target="cpu", until="first"), visc.Stage(target="cpu")],
                       records=False, threads=1) as p:
        yield p


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory, onnx_model: onnx.ModelProto) -> str:
    path = str(tmp_path_factory.mktemp("onnx") / "small.onnx")
    onnx.save(onnx_model, path)
    return path


X = np.random.default_rng(0).standard_normal((1, 3, 4, 4))  # float64, as numpy makes it
IDX = np.array([4, 1], dtype=np.int64)


def _ort(onnx_model: onnx.ModelProto, x: np.ndarray, idx: np.ndarray) -> list[np.ndarray]:
    return run_onnxruntime(onnx_model, {"x": x.astype(np.float32), "idx": idx.astype(np.int64)})


def _assert_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


# -- input dtypes -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint8, np.float16])
def test_wrong_dtype_array_is_rejected(model, dtype) -> None:
    with pytest.raises(InputTypeError) as info:
        model.run({"x": X.astype(dtype), "idx": IDX})
    message = str(info.value)
    assert "'x'" in message and np.dtype(dtype).name in message and "float32" in message
    assert "cast=True" in message
    assert isinstance(info.value, InputShapeError) and isinstance(info.value, ViscError)


def test_float_index_is_rejected_even_with_cast(model) -> None:
    with pytest.raises(InputTypeError, match=r"input 'idx' is a float64 array but the model takes int64"):
        model.run({"x": X.astype(np.float32), "idx": np.array([2.7, 1.0])})
    with pytest.raises(InputTypeError, match=r"input 'idx' takes int64 but the float64 value 2\.7 at \[0\]"):
        model.run({"x": X.astype(np.float32), "idx": np.array([2.7, 1.0])}, cast=True)
    with pytest.raises(InputTypeError, match="input 'idx'.*not a whole number"):
        model.run({"x": X.astype(np.float32), "idx": [1, float("nan")]})


def test_complex_is_rejected_even_with_cast(model) -> None:
    with pytest.raises(InputTypeError, match="input 'x' is complex128 .* imaginary part"):
        model.run({"x": X + 1j, "idx": IDX}, cast=True)


def test_cast_converts_like_onnxruntime_on_float32(model, onnx_model) -> None:
    got = model.run({"x": X, "idx": IDX.astype(np.int32)}, cast=True)
    _assert_close(got, _ort(onnx_model, X, IDX))
    whole = model.run({"x": X, "idx": np.array([4.0, 1.0])}, cast=True)  # whole floats are indices
    _assert_close(whole, _ort(onnx_model, X, IDX))
    small = (X * 10).astype(np.uint8)
    _assert_close(model.run([small, IDX], cast=True), _ort(onnx_model, small, IDX))


def test_python_lists_are_converted_without_cast(model, onnx_model) -> None:
    got = model.run({"x": X.tolist(), "idx": [4, 1]})  # no dtype of their own: converted
    _assert_close(got, _ort(onnx_model, X, IDX))
    with pytest.raises(InputTypeError, match="input 'idx'.*2.7"):
        model.run({"x": X.tolist(), "idx": [2.7, 1]})


def test_every_entry_point_checks_dtypes(model, onnx_model) -> None:
    bad = {"x": X, "idx": IDX}
    for call in (model.run, model.runner, model.benchmark, model.profile):
        with pytest.raises(InputTypeError, match="input 'x' is a float64 array"):
            call(bad)
    want = _ort(onnx_model, X, IDX)
    model.runner(bad, cast=True)()
    assert model.benchmark(bad, warmup=0, repeat=2, cast=True)["repeat"] == 2
    assert len(model.profile(bad, cast=True)) == len(model.plan.launches)
    _assert_close(model.run(bad, cast=True), want)


def test_pipeline_checks_dtypes_and_casts(pipe, onnx_model) -> None:
    bad = {"x": X, "idx": IDX}
    for call in (pipe.run, pipe.run_sequential, lambda f: list(pipe.map([f])), pipe.benchmark):
        with pytest.raises(InputTypeError, match="input 'x' is a float64 array.*cast=True"):
            call(bad)
    want = _ort(onnx_model, X, IDX)
    _assert_close(pipe.run(bad, cast=True), want)
    _assert_close(pipe.run_sequential(bad, cast=True), want)
    for got in pipe.map([bad, bad], cast=True):
        _assert_close(got, want)
    with pytest.raises(InputTypeError, match="input 'idx'.*not a whole number"):
        pipe.run({"x": X, "idx": np.array([0.5, 1.0])}, cast=True)


def test_onnx_backend_checks_dtypes(onnx_model) -> None:
    rep = backend.prepare(onnx_model, visc_target="cpu")
    want = _ort(onnx_model, X, IDX)
    _assert_close(list(rep.run([X.astype(np.float32), IDX])), want)
    with pytest.raises(InputTypeError, match="input 'x' is a float64 array"):
        rep.run([X, IDX])
    _assert_close(list(rep.run([X, IDX], cast=True)), want)
    with pytest.raises(InputShapeError, match=r"the model takes 2 inputs \['x', 'idx'\], got 1"):
        rep.run([X.astype(np.float32)])
    with pytest.raises(InputShapeError, match=r"missing input\(s\) \['idx'\]"):
        rep.run({"x": X.astype(np.float32)})


@pytest.mark.parametrize(("value", "dtype", "match"), [
    (np.array([2, 1 << 40]), "int32", r"span 2\.\.1099511627776, outside"),
    ([0, 2], "bool", r"span 0\.\.2, outside 0\.\.1"),
    ([np.inf, 1.0], "int64", "inf at \\[0\\] is not a whole number"),
    (["a", "b"], "float32", "holds <U1 values"),
])
def test_lossy_conversions_are_refused(value, dtype, match) -> None:
    spec = TensorSpec("v", (2,), dtype)
    with pytest.raises(InputTypeError, match=f"input 'v'.*{match}"):
        normalize_inputs([spec], [value], cast=True)


def test_conversions_that_keep_values() -> None:
    specs = [TensorSpec("a", (2,), "int32"), TensorSpec("b", (2,), "bool"), TensorSpec("c", (), "float32")]
    a, b, c = normalize_inputs(specs, [np.array([3, -4]), np.array([1.0, 0.0]), 2.5], cast=True)
    assert a.dtype == np.int32 and a.tolist() == [3, -4]
    assert b.dtype == np.bool_ and b.tolist() == [True, False]
    assert c.dtype == np.float32 and c.shape == () and float(c) == 2.5
    (same,) = normalize_inputs(specs[:1], np.array([5, 6], dtype=np.int32))
    assert same.dtype == np.int32 and same.flags.c_contiguous


# -- input names, counts and kinds --------------------------------------------------------


def test_wrong_input_names_are_listed(model) -> None:
    with pytest.raises(InputShapeError, match=r"missing \['idx'\], unexpected \['data'\]; the model takes "
                                              r"\['x', 'idx'\]"):
        model.run({"x": X.astype(np.float32), "data": IDX})


def test_wrong_number_of_inputs(model) -> None:
    with pytest.raises(InputShapeError, match=r"the model takes 2 inputs \['x', 'idx'\], got 1"):
        model.run([X.astype(np.float32)])
    with pytest.raises(InputShapeError, match=r"the model takes 2 inputs \['x', 'idx'\], got 1"):
        model.run(X.astype(np.float32))


@pytest.mark.parametrize("inputs", [None, "x.npy", 7])
def test_inputs_of_the_wrong_kind(model, inputs) -> None:
    with pytest.raises(InputShapeError, match=r"input|inputs"):
        model.run(inputs)


def test_ragged_list_is_not_an_array(model) -> None:
    with pytest.raises(InputShapeError, match=r"input 'idx' is not an array of shape \[2\]"):
        model.run({"x": X.astype(np.float32), "idx": [[1], [2, 3]]})


def test_wrong_shape_suggests_input_shapes(model) -> None:
    with pytest.raises(InputShapeError, match=r"input 'x' has shape \[1, 3, 8, 8\] but the model was compiled "
                                              r"for \[1, 3, 4, 4\]; recompile with input_shapes=\{'x': \(1, 3, 8, 8\)\}"):
        model.run({"x": np.zeros((1, 3, 8, 8), np.float32), "idx": IDX})


# -- compile arguments --------------------------------------------------------------------


def test_compile_missing_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.onnx")
    with pytest.raises(ModelLoadError, match=f"no ONNX model at '{missing}': the file does not exist"):
        visc.compile(missing)


def test_compile_a_directory(tmp_path: Path, onnx_model) -> None:
    onnx.save(onnx_model, str(tmp_path / "inside.onnx"))
    with pytest.raises(ModelLoadError, match=r"is a directory, not an ONNX model file \(it holds inside.onnx\)"):
        visc.compile(str(tmp_path))


def test_compile_a_compiled_model(tmp_path: Path, model) -> None:
    path = str(tmp_path / "m.visc")
    model.save(path)
    with pytest.raises(ModelLoadError, match=r"is a compiled visc model, not an ONNX file: run it with visc.load"):
        visc.compile(path)


@pytest.mark.parametrize("value", [None, 3, ["small.onnx"]])
def test_compile_a_wrong_kind_of_model(value) -> None:
    with pytest.raises(ModelLoadError, match=f"an ONNX file path, its bytes or an onnx.ModelProto, not "
                                             f"{type(value).__name__}"):
        visc.compile(value)


def test_input_shapes_naming_an_unknown_input(onnx_path: str) -> None:
    with pytest.raises(InputShapeError, match="no model input named 'data'; the inputs are 'x', 'idx'"):
        visc.compile(onnx_path, target="cpu", input_shapes={"data": (1, 3, 4, 4)})
    with pytest.raises(InputShapeError, match=r"input_shapes must map input names to shapes.*not a list"):
        visc.compile(onnx_path, target="cpu", input_shapes=[(1, 3, 4, 4)])


@pytest.mark.parametrize("target", ["gpu", "OpenCL", "llvm"])
def test_unknown_target(onnx_path: str, target: str) -> None:
    with pytest.raises(CompileError, match=f"unknown target '{target}' \\(available: opencl, cuda, cpu\\)"):
        visc.compile(onnx_path, target=target)


@pytest.mark.parametrize(("fallback", "hint"), [
    (["conv"], "'conv' (did you mean 'Conv'?)"),
    (["NonMaxSupression", "TopK"], "'NonMaxSupression' (did you mean 'NonMaxSuppression'?)"),
    (["Relu", "NotAnOp"], "'NotAnOp' (did you mean 'Not'?)"),
    (["Relu", "Bogus"], "'Bogus' (visc imports Abs, Acos"),
])
def test_unknown_fallback_op_type(onnx_path: str, fallback: list[str], hint: str) -> None:
    for target in ("opencl", "cpu"):
        with pytest.raises(CompileError) as info:
            visc.compile(onnx_path, target=target, fallback=fallback)
        assert f"fallback names no ONNX op type visc imports: {hint}" in str(info.value)
        assert "case-sensitive" in str(info.value)


def test_fallback_given_as_one_string(onnx_path: str) -> None:
    with pytest.raises(CompileError, match=r"not the string 'Conv,TopK'; pass \['Conv', 'TopK'\]"):
        visc.compile(onnx_path, fallback="Conv,TopK")


def test_pipeline_arguments(onnx_path: str) -> None:
    with pytest.raises(CompileError, match=r"unknown stage target 'gpu' \(available: opencl, cuda, cpu\)"):
        visc.pipeline(onnx_path, stages=[visc.Stage(target="gpu", until="first"), visc.Stage(target="cpu")])
    with pytest.raises(CompileError, match=r"unknown stage target 'gpu'"):  # said before profiling on cpu
        visc.pipeline(onnx_path, stages=2, devices=["cpu", "gpu"])
    with pytest.raises(CompileError, match=r"'relu' \(did you mean 'Relu'\?\)"):
        visc.pipeline(onnx_path, stages="placement", devices=["opencl"], fallback=["relu"])
    with pytest.raises(ModelLoadError, match="no ONNX model at"):
        visc.pipeline(onnx_path + ".missing", stages=1)


# -- lifetime -----------------------------------------------------------------------------


def test_run_after_close(onnx_model) -> None:
    with visc.compile(onnx_model, target="cpu", records=False) as model:
        model.run({"x": X.astype(np.float32), "idx": IDX})
    for call in (model.run, model.benchmark, model.profile, model.runner):
        with pytest.raises(ViscError, match=r"this model is closed \(close\(\) freed its device memory\)"):
            call({"x": X.astype(np.float32), "idx": IDX})
    model.close()  # twice is fine


def test_pipeline_run_after_close(onnx_model) -> None:
    p = visc.pipeline(onnx_model, stages=1, devices=["cpu"], records=False, threads=1)
    frame = {"x": X.astype(np.float32), "idx": IDX}
    p.run(frame)
    p.close()
    for call in (p.run, p.run_sequential, lambda f: list(p.map([f]))):
        with pytest.raises(ViscError, match="this pipeline is closed"):
            call(frame)


# -- visc.load ----------------------------------------------------------------------------


def test_load_an_onnx_file(onnx_path: str) -> None:
    with pytest.raises(ArtifactError, match=f"'{onnx_path}' is an ONNX model, not a compiled one: compile it with "
                                            f"visc.compile\\('{onnx_path}'\\)"):
        visc.load(onnx_path)


def test_load_other_wrong_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="is a directory, not a compiled model file"):
        visc.load(str(tmp_path))
    with pytest.raises(ArtifactError, match="no compiled model at"):
        visc.load(str(tmp_path / "missing.visc"))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ArtifactError, match="'.*notes.txt' is not a visc compiled model"):
        visc.load(str(text))


# -- saves that fail ----------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".visc-"))


def _disk_full(after: int) -> Callable[..., None]:
    """A `ZipFile.writestr` that fails with ENOSPC from entry ``after`` + 1 on."""
    real, calls = zipfile.ZipFile.writestr, [0]

    def writestr(zf: zipfile.ZipFile, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(zf, *args, **kwargs)

    return writestr


@pytest.mark.parametrize("after", [0, 1])
def test_failed_save_leaves_nothing(model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    path = tmp_path / "m.visc"
    monkeypatch.setattr(zipfile.ZipFile, "writestr", _disk_full(after))
    with pytest.raises(ArtifactError, match=f"cannot save to '{path}': No space left on device; nothing was written"):
        model.save(str(path))
    assert not path.exists() and _leftovers(tmp_path) == []


def test_failed_save_keeps_the_previous_file(model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.visc"
    model.save(str(path))
    before = path.read_bytes()
    monkeypatch.setattr(zipfile.ZipFile, "writestr", _disk_full(2))
    with pytest.raises(ArtifactError, match="No space left on device"):
        model.save(str(path))
    monkeypatch.undo()
    assert path.read_bytes() == before and _leftovers(tmp_path) == []
    assert visc.load(str(path)).input_names == ["x", "idx"]


def test_failed_rename_leaves_nothing(model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: str, dst: str) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ArtifactError, match="cannot save to .*m.visc': Permission denied"):
        model.save(str(tmp_path / "m.visc"))
    assert list(tmp_path.iterdir()) == []


def test_failed_pipeline_save_leaves_nothing(pipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.visc"
    monkeypatch.setattr(zipfile.ZipFile, "writestr", _disk_full(3))  # inside the second stage
    with pytest.raises(ArtifactError, match=f"cannot save to '{path}'"):
        pipe.save(str(path))
    assert list(tmp_path.iterdir()) == []


def test_save_to_a_directory_or_a_missing_folder(model, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=f"cannot save to '{tmp_path}': it is a directory"):
        model.save(str(tmp_path))
    missing = tmp_path / "no" / "m.visc"
    with pytest.raises(ArtifactError, match=f"the folder '{tmp_path / 'no'}' does not exist"):
        model.save(str(missing))
    assert list(tmp_path.iterdir()) == []
