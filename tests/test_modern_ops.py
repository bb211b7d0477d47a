"""Ops of recent vision networks (issue 19): LayerNormalization, GroupNormalization and
InstanceNormalization as one kernel each in both of their schedule forms, GELU (Erf form and
the Gelu op) fused into one elementwise kernel, Einsum decomposed at import, Python-style float
Mod and opset-1 Not; and a ConvNeXt-style and a MobileViT-style model against onnxruntime on
the OpenCL and CPU targets, with their PTX assembled by ptxas."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from conftest import make_model, run_onnxruntime
from modern_models import convnext, mobilevit
from onnx import helper, numpy_helper
from onnx_node_cases import supported_cases
from test_pipeline import needs_cuda

import visc
from visc.backends.ptx import assemble, find_libdevice
from visc.compiler import compile_model, default_pipeline
from visc.errors import UnsupportedModelError
from visc.frontend.onnx import import_model
from visc.tools.visc_cli import rel_error

TARGETS = ("opencl", "cpu")
MODELS = {
    "convnext_erf_gelu": lambda: convnext(seed=1),
    "convnext_gelu_op": lambda: convnext(seed=2, gelu=("none", "tanh")),
    "mobilevit": lambda: mobilevit(seed=3),
}


def _input(model: onnx.ModelProto, seed: int = 7) -> np.ndarray:
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _launch_nodes(model: visc.CompiledModel) -> list[str]:
    """The kernel of each launch, in order: the op kind, then the ONNX nodes it runs."""
    return [launch.kernel for launch in model.plan.launches]


@pytest.mark.parametrize("target", [*TARGETS, pytest.param("cuda", marks=[pytest.mark.cuda, needs_cuda])])
@pytest.mark.parametrize("name", MODELS)
def test_model_matches_onnxruntime(name: str, target: str) -> None:
    model = MODELS[name]()
    x = _input(model)
    (want,) = run_onnxruntime(model, {"image": x})
    (got,) = visc.compile(model, target=target).run([x])
    assert np.abs(want).max() > 0.1
    assert rel_error(got, want) <= 1e-4, f"{name} on {target}: relative error {rel_error(got, want):.2e}"


def test_convnext_kernels() -> None:
    """Each LayerNormalization is one kernel (the channels-first ones, Transpose -> LN ->
    Transpose, too), and each GELU runs in the epilogue of the Linear before it."""
    compiled = visc.compile(convnext(seed=1), target="opencl")
    kernels = _launch_nodes(compiled)
    norms = [k for k in kernels if "layernormalization" in k]
    assert len(norms) == 4 and all(k.startswith("layer_norm_") for k in norms)
    assert sum("transpose" in k and "layernormalization" in k for k in norms) == 2
    gelus = [k for k in kernels if "erf" in k]
    assert len(gelus) == 2 and all(k.startswith("matmul_") for k in gelus)


def test_mobilevit_kernels() -> None:
    kernels = _launch_nodes(visc.compile(mobilevit(seed=3), target="opencl"))
    assert sum(k.startswith("group_norm_instancenormalization") for k in kernels) == 1
    assert sum(k.startswith("group_norm_groupnormalization") for k in kernels) == 1
    # the attention's Einsums are one matmul each (transpose_b absorbs K's layout)
    assert sum(k.startswith("matmul_einsum") for k in kernels) == 2
    assert not [k for k in kernels if "einsum" in k and not k.startswith("matmul_")]


# -- the normalization ops in both schedule forms ----------------------------------------------

PIPELINES = {  # thread per row on the CPU heuristic, work-group per row where GPUs want it
    "opencl-gpu": ("opencl", "gpu"),
    "opencl-cpu": ("opencl", "cpu"),
    "cpu-gpu": ("cpu", "gpu"),
    "cpu": ("cpu", "cpu"),
}


def _norm_model(op: str, shape: tuple[int, ...], dtype: type, **attrs: object) -> onnx.ModelProto:
    rng = np.random.default_rng(5)
    c = shape[attrs.pop("param_dim", -1)] if op == "LayerNormalization" else shape[1]
    inits = {"s": (1 + 0.2 * rng.standard_normal(c)).astype(dtype), "b": (0.1 * rng.standard_normal(c)).astype(dtype)}
    outputs = ["y", *attrs.pop("stats", [])]
    node = helper.make_node(op, ["x", "s", "b"], outputs, **attrs)
    return make_model([node], {"x": (shape, dtype)}, outputs, inits, opset=21 if op == "GroupNormalization" else 17)


NORM_CASES = {
    "layer_norm_last": ("LayerNormalization", (2, 96, 7), np.float32, {"axis": -1, "param_dim": -1}),
    "layer_norm_rows_of_3136": ("LayerNormalization", (1, 56, 56, 24), np.float32, {"axis": 3, "param_dim": -1}),
    "layer_norm_two_axes": ("LayerNormalization", (3, 4, 40), np.float32,
                            {"axis": 1, "param_dim": -1, "stats": ["mean", "inv_std"]}),
    "layer_norm_f16": ("LayerNormalization", (4, 300), np.float16, {"axis": -1, "param_dim": -1, "epsilon": 1e-3}),
    "layer_norm_f64": ("LayerNormalization", (4, 70), np.float64, {"axis": -1, "param_dim": -1}),
    "instance_norm": ("InstanceNormalization", (2, 8, 21, 19), np.float32, {}),
    "instance_norm_f16": ("InstanceNormalization", (1, 4, 33, 33), np.float16, {}),
    "group_norm": ("GroupNormalization", (2, 12, 9, 11), np.float32, {"num_groups": 3, "epsilon": 1e-3}),
    "group_norm_1d": ("GroupNormalization", (1, 8, 500), np.float32, {"num_groups": 8}),
}


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("case", NORM_CASES)
def test_normalization_matches_onnxruntime(case: str, pipeline: str) -> None:
    op, shape, dtype, attrs = NORM_CASES[case]
    model = _norm_model(op, shape, dtype, **dict(attrs))
    x = (np.random.default_rng(9).standard_normal(shape) * 3 + 1).astype(dtype)
    want = run_onnxruntime(model, {"x": x})
    target, device_type = PIPELINES[pipeline]
    compiled = compile_model(model, target=target, pipeline=default_pipeline(target, device_type))
    assert len(compiled.plan.launches) == 1
    got = compiled.run([x])
    tol = 2e-3 if dtype == np.float16 else 1e-5
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert rel_error(g, w) <= tol, f"{case} ({pipeline}): relative error {rel_error(g, w):.2e}"


@pytest.mark.parametrize("case", ["layer_norm_f16", "layer_norm_two_axes", "instance_norm", "layer_norm_last"])
def test_normalization_cuda_lowering_on_host(case: str) -> None:
    """The CUDA pipeline's kernels (work-group per row with barriers and shared memory, GPU
    schedules), lowered with libm and run on the host by the PTX tests' emulator."""
    from test_ptx_backend import lower_for_host

    op, shape, dtype, attrs = NORM_CASES[case]
    model = _norm_model(op, shape, dtype, **dict(attrs))
    x = (np.random.default_rng(9).standard_normal(shape) * 3 + 1).astype(dtype)
    emulator = lower_for_host(model)
    got = emulator.run([x])
    tol = 2e-3 if dtype == np.float16 else 1e-5
    for g, w in zip(got, run_onnxruntime(model, {"x": x}), strict=True):
        assert rel_error(g, w) <= tol, f"{case}: relative error {rel_error(g, w):.2e}"


def test_group_norm_opset18_scales_per_group() -> None:
    """Before opset 21, GroupNormalization's scale and bias hold one value per group (onnx's
    checker now rejects that deprecated form, so the importer runs without it here)."""
    from visc.compiler import compile_module
    from visc.frontend.onnx import _Importer

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 5, 5)).astype(np.float32)
    s, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph([helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, x.shape)],
                              [numpy_helper.from_array(s, "s"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    imported = _Importer(model, "g18").run(None)
    (got,) = compile_module(imported.module, imported.weights, "opencl").run([x])
    rows = x.reshape(2, 3, -1)
    norm = ((rows - rows.mean(-1, keepdims=True)) / np.sqrt(rows.var(-1, keepdims=True) + 1e-5)).reshape(2, 3, 2, 5, 5)
    want = (norm * s[:, None, None, None] + b[:, None, None, None]).reshape(x.shape)
    assert rel_error(got, want) <= 1e-5


# -- Einsum ------------------------------------------------------------------------------------

EINSUMS = {
    "bij,bjk->bik": [(3, 4, 5), (3, 5, 6)],
    "bhid,bhjd->bhij": [(2, 3, 7, 8), (2, 3, 9, 8)],
    "bhij,bhjd->bhid": [(2, 3, 7, 9), (2, 3, 9, 8)],
    "ij->ji": [(5, 7)],
    "bchw,bkc->bkhw": [(2, 6, 4, 5), (2, 3, 6)],
    "i,j->ij": [(4,), (6,)],
    "...ii->...i": [(2, 3, 5, 5)],
    "...ij,...jk->...ik": [(2, 1, 4, 3), (5, 3, 2)],
    "ij,jk,kl->il": [(3, 4), (4, 5), (5, 2)],
    "bij->b": [(3, 4, 5)],
    "ij,ij->ij": [(3, 4), (3, 4)],
    "ijk": [(2, 3, 4)],
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("equation", EINSUMS)
def test_einsum_matches_numpy(equation: str, target: str) -> None:
    rng = np.random.default_rng(4)
    shapes = EINSUMS[equation]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    names = [f"x{i}" for i in range(len(shapes))]
    model = make_model([helper.make_node("Einsum", names, ["y"], equation=equation)],
                       {n: (s, np.float32) for n, s in zip(names, shapes, strict=True)}, ["y"], opset=12)
    (got,) = visc.compile(model, target=target).run(arrays)
    want = np.einsum(equation, *arrays)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("equation", "ops"), [
    ("bhid,bhjd->bhij", ["vision.matmul"]),
    ("bchw,bkc->bkhw", ["vision.matmul"]),
    ("ij->ji", ["vision.transpose"]),
    ("bij,bjk->bik", ["vision.matmul"]),
])
def test_einsum_forms_exporters_emit_are_one_op(equation: str, ops: list[str]) -> None:
    shapes = EINSUMS[equation]
    names = [f"x{i}" for i in range(len(shapes))]
    model = make_model([helper.make_node("Einsum", names, ["y"], equation=equation)],
                       {n: (s, np.float32) for n, s in zip(names, shapes, strict=True)}, ["y"], opset=12)
    module = import_model(model).module
    compute = [op.name for op in module.walk() if op.name.startswith("vision.") and op.name != "vision.reshape"]
    assert compute == ops


def test_einsum_error_names_node_and_equation() -> None:
    model = make_model([helper.make_node("Einsum", ["a", "b"], ["y"], equation="ij,jk->ii", name="attn")],
                       {"a": ((2, 3), np.float32), "b": ((3, 2), np.float32)}, ["y"], opset=12)
    with pytest.raises(UnsupportedModelError, match=r"node 'attn' \(Einsum\): equation 'ij,jk->ii'"):
        import_model(model)


# -- GELU --------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["erf", "erf_mul", "none", "tanh"])
def test_gelu_is_one_elementwise_kernel(form: str) -> None:
    """GELU on a graph input (nothing to fuse into): one map, whatever form the model has."""
    from modern_models import _Graph

    g = _Graph(np.random.default_rng(0))
    y = g.gelu("image", form)
    model = g.model("image", [2, 33], y, [2, 33], 20)
    compiled = visc.compile(model, target="opencl")
    assert [k.split("_")[0] for k in _launch_nodes(compiled)] == ["map"]
    x = _input(model) * 3
    (want,) = run_onnxruntime(model, {"image": x})
    assert rel_error(compiled.run([x])[0], want) <= 1e-5


# -- Mod, Not ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_float_mod_signed_zeros(target: str) -> None:
    """Python-style float Mod (fmod=0) matches the node cases and onnxruntime bit for bit in
    sign too: 0 mod -2 is -0.0, and an infinite divisor keeps a finite dividend."""
    cases = [c for c in supported_cases() if c.name.startswith("test_mod_float_edge_cases_fmod_0")]
    assert len(cases) == 3
    for case in cases:
        inputs, outputs = case.data_sets[0]
        arrays = [numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v) for v in inputs]
        want = numpy_helper.to_array(outputs[0]) if isinstance(outputs[0], onnx.TensorProto) else outputs[0]
        (ort,) = run_onnxruntime(case.model, {vi.name: a for vi, a in zip(case.model.graph.input, arrays, strict=True)})
        (got,) = visc.compile(case.model, target=target).run(arrays)
        for ref in (want, ort):
            np.testing.assert_array_equal(got, ref)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))


def test_old_opsets_take_ops_whose_definition_has_not_changed() -> None:
    """Below opset 7, ops defined the same way since (Not) import; others are named."""
    not_model = make_model([helper.make_node("Not", ["x"], ["y"])], {"x": ((3,), np.bool_)}, ["y"], opset=1)
    (got,) = visc.compile(not_model, target="opencl").run([np.array([True, False, True])])
    np.testing.assert_array_equal(got, [False, True, False])
    and_model = make_model([helper.make_node("And", ["x", "z"], ["y"])],
                           {"x": ((3,), np.bool_), "z": ((3,), np.bool_)}, ["y"], opset=1)
    with pytest.raises(UnsupportedModelError, match=r"opset 1 is older than the oldest supported \(7\), and And changed"):
        import_model(and_model)


# -- CUDA: PTX for the models, assembled by ptxas ------------------------------------------------


@pytest.mark.skipif(find_libdevice() is None, reason="libdevice.10.bc (CUDA toolkit) not found")
@pytest.mark.parametrize("name", MODELS)
def test_model_ptx_assembles(name: str) -> None:
    compiled = visc.compile(MODELS[name](), target="cuda", arch="sm_80")
    assert ".extern" not in compiled.source
    kinds = {launch.kernel.split("_")[0] for launch in compiled.plan.launches}
    assert kinds & {"layer", "group"}
    if shutil.which("ptxas") is not None:
        for arch in ("sm_80", "sm_90"):
            assemble(compiled.source, arch)


# -- torchvision's ConvNeXt-Tiny (tests/models, weights stripped; benchmarks/export_models.py) --

def _convnext_tiny() -> tuple[onnx.ModelProto, np.ndarray]:
    import os

    from visc.tools.stripped_models import refill_weights

    path = os.path.join(os.path.dirname(__file__), "models", "convnext_tiny.onnx")
    image = np.random.default_rng(1).random((1, 3, 224, 224), dtype=np.float32)
    return refill_weights(onnx.load(path), seed=0), image


@pytest.mark.parametrize("target", ["cpu", "opencl", pytest.param("cuda", marks=[pytest.mark.cuda, needs_cuda])])
def test_torchvision_convnext_tiny_matches_onnxruntime(target: str) -> None:
    model, image = _convnext_tiny()
    (want,) = run_onnxruntime(model, {"image": image})
    (got,) = visc.compile(model, target=target).run({"image": image})
    assert want.std() > 0.1  # the refilled weights give logits that vary
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-4
