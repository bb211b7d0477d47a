"""The ONNX importer: numerics against onnxruntime (through visc.reference), opset
differences, the model zoo, and the errors a user sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import pytest
from conftest import light_model_path, make_model, run_onnxruntime
from onnx import helper, numpy_helper
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math
from xdsl.parser import Parser

from visc.dialects import vision
from visc.errors import InputShapeError, ModelLoadError, UnsupportedModelError
from visc.frontend import import_model
from visc.reference import evaluate

F32 = np.float32


def compare(
    model: onnx.ModelProto,
    feeds: Mapping[str, np.ndarray],
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
):
    """Import `model`, run it with visc.reference and onnxruntime, compare every output."""
    imported = import_model(model, input_shapes)
    got = evaluate(imported.module, imported.weights, [feeds[n] for n in imported.input_names])
    want = run_onnxruntime(model, feeds)
    assert len(got) == len(want)
    for g, w, shape, dt in zip(got, want, imported.output_shapes, imported.output_dtypes, strict=True):
        assert g.shape == w.shape == shape
        assert g.dtype == w.dtype == dt
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, w)
    return imported


def node(op: str, ins: Sequence[str], outs: Sequence[str] = ("y",), **attrs) -> onnx.NodeProto:
    return helper.make_node(op, list(ins), list(outs), **attrs)


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(F32)


# --------------------------------------------------------------------------- small graphs

# (id, nodes, inputs {name: shape/dtype}, initializers, opset)
X4 = {"x": ((2, 3, 7, 9), F32)}
CASES = [
    ("softmax_opset11_coerces_to_2d", [node("Softmax", ["x"], axis=1)], {"x": ((2, 3, 4), F32)}, {}, 11),
    ("log_softmax_opset11_default_axis", [node("LogSoftmax", ["x"])], {"x": ((2, 3, 4), F32)}, {}, 11),
    ("softmax_opset13_axis1", [node("Softmax", ["x"], axis=1)], {"x": ((2, 3, 4), F32)}, {}, 13),
    ("clip_opset7_attrs", [node("Clip", ["x"], min=-0.5, max=0.25)], {"x": ((3, 4), F32)}, {}, 7),
    ("clip_opset12_runtime_max", [node("Clip", ["x", "lo", "hi"])],
     {"x": ((3, 4), F32), "hi": ((), F32)}, {"lo": np.array(-0.3, F32)}, 12),
    ("clip_int32", [node("Clip", ["x", "lo", "hi"])], {"x": ((3, 4), np.int32)},
     {"lo": np.array(-1, np.int32), "hi": np.array(1, np.int32)}, 13),
    ("pad_opset7_attrs_reflect", [node("Pad", ["x"], pads=[0, 0, 1, 2, 0, 0, 2, 1], mode="reflect")], X4, {}, 7),
    ("pad_opset11_constant", [node("Pad", ["x", "p", "v"])], X4,
     {"p": np.array([0, 1, 2, 0, 0, 0, 1, 3]), "v": np.array(1.5, F32)}, 11),
    ("pad_opset18_axes_edge", [node("Pad", ["x", "p", "", "a"], mode="edge")], X4,
     {"p": np.array([1, 2, 3, 1]), "a": np.array([-1, 2])}, 18),
    ("pad_negative_crop", [node("Pad", ["x", "p"])], X4, {"p": np.array([0, 0, -1, 2, 0, 0, 1, -2])}, 13),
    ("split_opset11_attr", [node("Split", ["x"], ["a", "b"], axis=1, split=[1, 2])], X4, {}, 11),
    ("split_opset13_input", [node("Split", ["x", "s"], ["a", "b"], axis=-1)], X4, {"s": np.array([4, 5])}, 13),
    ("split_opset18_num_outputs_uneven", [node("Split", ["x"], ["a", "b", "c"], axis=3, num_outputs=3)], X4, {}, 18),
    ("slice_opset9_attrs", [node("Slice", ["x"], starts=[1, -4], ends=[3, 100], axes=[2, 3])], X4, {}, 9),
    ("slice_opset13_negative_steps", [node("Slice", ["x", "s", "e", "a", "st"])], X4,
     {"s": np.array([-1, 8]), "e": np.array([-100, 0]), "a": np.array([2, 3]), "st": np.array([-2, -3])}, 13),
    ("squeeze_unsqueeze_opset11", [node("Unsqueeze", ["x"], ["u"], axes=[0, 3]), node("Squeeze", ["u"], axes=[0])],
     {"x": ((2, 3, 4), F32)}, {}, 11),
    ("squeeze_unsqueeze_opset13", [node("Unsqueeze", ["x", "a"], ["u"]), node("Squeeze", ["u", "b"])],
     {"x": ((2, 3, 4), F32)}, {"a": np.array([0, -1]), "b": np.array([0])}, 13),
    ("reduce_mean_opset13_attr", [node("ReduceMean", ["x"], axes=[1, 3], keepdims=0)], X4, {}, 13),
    ("reduce_mean_opset18_input", [node("ReduceMean", ["x", "a"])], X4, {"a": np.array([-1])}, 18),
    ("reduce_sum_opset11_attr", [node("ReduceSum", ["x"], axes=[0, 2])], X4, {}, 11),
    ("reduce_sum_opset13_all", [node("ReduceSum", ["x"], keepdims=0)], X4, {}, 13),
    ("reduce_max_uint8", [node("ReduceMax", ["x"], axes=[1])], {"x": ((3, 5), np.uint8)}, {}, 13),
    ("reduce_min_int32", [node("ReduceMin", ["x"], axes=[0], keepdims=0)], {"x": ((3, 5), np.int32)}, {}, 13),
    ("resize_opset10_nearest", [node("Resize", ["x", "s"], mode="nearest")], X4,
     {"s": np.array([1, 1, 2, 3], F32)}, 10),
    ("resize_opset13_linear_sizes", [node("Resize", ["x", "", "", "z"], mode="linear")], X4,
     {"z": np.array([2, 3, 11, 4])}, 13),
    ("resize_opset11_cubic_align_corners",
     [node("Resize", ["x", "r", "s"], mode="cubic", coordinate_transformation_mode="align_corners")], X4,
     {"r": np.zeros(0, F32), "s": np.array([1, 1, 1.5, 0.5], F32)}, 11),
    ("resize_opset19_nearest_ceil_asymmetric",
     [node("Resize", ["x", "", "s"], mode="nearest", nearest_mode="round_prefer_ceil",
           coordinate_transformation_mode="asymmetric")], X4, {"s": np.array([1, 1, 0.6, 1.7], F32)}, 19),
    ("resize_opset18_axes_linear_pytorch",
     [node("Resize", ["x", "", "", "z"], mode="linear", axes=[3, 2],
           coordinate_transformation_mode="pytorch_half_pixel")], X4, {"z": np.array([5, 1])}, 18),
    ("upsample_opset9_nearest", [node("Upsample", ["x", "s"], mode="nearest")], X4,
     {"s": np.array([1, 1, 2, 2], F32)}, 9),
    ("upsample_opset7_linear", [node("Upsample", ["x"], mode="linear", scales=[1.0, 1.0, 2.0, 2.0])], X4, {}, 7),
    ("maxpool_ceil_dilations", [node("MaxPool", ["x"], kernel_shape=[3, 2], strides=[2, 2], dilations=[1, 2],
                                     pads=[1, 0, 1, 1], ceil_mode=1)], X4, {}, 12),
    ("avgpool_ceil_count_include_pad", [node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                                             pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)], X4, {}, 11),
    ("avgpool_exclude_pad", [node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], X4, {}, 11),
    ("avgpool_same_lower", [node("AveragePool", ["x"], kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER")],
     X4, {}, 11),
    ("maxpool_same_upper", [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")],
     X4, {}, 11),
    ("maxpool_1d", [node("MaxPool", ["x"], kernel_shape=[3], strides=[2])], {"x": ((2, 3, 10), F32)}, {}, 12),
    ("maxpool_uint8", [node("MaxPool", ["x"], kernel_shape=[2, 2])], {"x": ((1, 2, 5, 5), np.uint8)}, {}, 12),
    ("maxpool_3d", [node("MaxPool", ["x"], kernel_shape=[2, 3, 2], strides=[1, 2, 2], pads=[0, 1, 1, 1, 1, 0])],
     {"x": ((1, 2, 4, 5, 6), F32)}, {}, 12),
    ("avgpool_3d_ceil", [node("AveragePool", ["x"], kernel_shape=[2, 2, 3], strides=[2, 2, 2], ceil_mode=1)],
     {"x": ((1, 2, 5, 5, 6), F32)}, {}, 12),
    ("pad_uint8_high_value", [node("Pad", ["x", "p", "v"])],
     {"x": ((3, 5), np.uint8)}, {"p": np.array([1, 0, 0, 2]), "v": np.array(200, np.uint8)}, 13),
    ("lppool", [node("LpPool", ["x"], kernel_shape=[2, 2], p=2)], X4, {}, 11),
    ("global_pools", [node("GlobalAveragePool", ["x"], ["a"]), node("GlobalMaxPool", ["x"], ["b"])], X4, {}, 13),
    ("conv_same_upper_stride2", [node("Conv", ["x", "w", "b"], auto_pad="SAME_UPPER", strides=[2, 2])], X4,
     {"w": "4x3x3x2", "b": "4"}, 11),
    ("conv_same_lower", [node("Conv", ["x", "w"], auto_pad="SAME_LOWER", kernel_shape=[2, 4])], X4,
     {"w": "5x3x2x4"}, 11),
    ("conv_valid_dilated", [node("Conv", ["x", "w"], auto_pad="VALID", dilations=[2, 3])], X4, {"w": "2x3x2x2"}, 11),
    ("conv_depthwise_asym_pads", [node("Conv", ["x", "w", "b"], group=3, pads=[0, 2, 1, 0], strides=[1, 2])], X4,
     {"w": "6x1x3x3", "b": "6"}, 11),
    ("conv_1d", [node("Conv", ["x", "w"], pads=[1, 2], strides=[2])], {"x": ((2, 4, 11), F32)}, {"w": "3x4x3"}, 11),
    ("conv_runtime_weight", [node("Conv", ["x", "w"], group=3)], {**X4, "w": ((3, 1, 2, 2), F32)}, {}, 11),
    ("conv_transpose_pads_output_padding",
     [node("ConvTranspose", ["x", "w", "b"], strides=[2, 3], pads=[1, 0, 0, 2], output_padding=[1, 2])], X4,
     {"w": "3x2x3x3", "b": "2"}, 11),
    ("conv_transpose_output_shape_groups",
     [node("ConvTranspose", ["x", "w"], strides=[2, 2], group=3, output_shape=[15, 18])], X4, {"w": "3x2x2x3"}, 11),
    ("conv_transpose_dilated_1d", [node("ConvTranspose", ["x", "w"], dilations=[2], strides=[2])],
     {"x": ((1, 2, 6), F32)}, {"w": "2x3x3"}, 11),
    ("gemm_trans_alpha_beta", [node("Gemm", ["a", "b", "c"], transA=1, transB=1, alpha=0.5, beta=2.0)],
     {"a": ((4, 3), F32)}, {"b": "5x4", "c": "5"}, 11),
    ("gemm_no_c", [node("Gemm", ["a", "b"])], {"a": ((3, 4), F32), "b": ((4, 2), F32)}, {}, 13),
    ("matmul_1d_2d", [node("MatMul", ["a", "b"])], {"a": ((4,), F32)}, {"b": "4x3"}, 13),
    ("matmul_batch_broadcast", [node("MatMul", ["a", "b"])], {"a": ((2, 1, 3, 4), F32), "b": ((5, 4, 2), F32)}, {}, 13),
    ("matmul_2d_1d", [node("MatMul", ["a", "b"])], {"a": ((3, 4), F32), "b": ((4,), F32)}, {}, 13),
    ("batchnorm_opset9", [node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)], X4,
     {"s": "3", "b": "3", "m": "3", "v": "+3"}, 9),
    ("batchnorm_opset15_runtime_scale", [node("BatchNormalization", ["x", "s", "b", "m", "v"])],
     {**X4, "s": ((3,), F32)}, {"b": "3", "m": "3", "v": "+3"}, 15),
    ("lrn", [node("LRN", ["x"], size=3, alpha=1e-3, beta=0.5, bias=2.0)], X4, {}, 13),
    ("activations", [node("LeakyRelu", ["x"], ["a"], alpha=0.2), node("HardSigmoid", ["a"], ["b"]),
                     node("Elu", ["x"], ["c"], alpha=0.7), node("Selu", ["c"], ["d"]),
                     node("Softplus", ["x"], ["e"]), node("HardSwish", ["e"], ["f"]),
                     node("Erf", ["x"], ["g"]), node("Sigmoid", ["g"], ["h"]), node("Tanh", ["h"], ["i"]),
                     node("Sum", ["b", "d", "f", "i"], ["y"])], X4, {}, 14),
    ("unary_math", [node("Abs", ["x"], ["a"]), node("Sqrt", ["a"], ["b"]), node("Exp", ["x"], ["c"]),
                    node("Log", ["c"], ["d"]), node("Neg", ["d"], ["e"]), node("Reciprocal", ["b"], ["f"]),
                    node("Floor", ["x"], ["g"]), node("Ceil", ["x"], ["h"]), node("Round", ["x"], ["i"]),
                    node("Mean", ["e", "f", "g", "h", "i"], ["y"])], X4, {}, 13),
    ("prelu_channel_slope", [node("PRelu", ["x", "s"])], X4, {"s": "3x1x1"}, 16),
    ("binary_broadcast", [node("Add", ["x", "c"], ["a"]), node("Mul", ["a", "k"], ["b"]),
                          node("Sub", ["b", "x"], ["d"]), node("Div", ["d", "c"], ["e"]),
                          node("Max", ["e", "x", "k"], ["f"]), node("Min", ["f", "k"], ["y"])], X4,
     {"c": "+9", "k": np.array([0.5], F32)}, 13),
    ("pow_float_and_int_exponents", [node("Pow", ["x", "p"], ["a"]), node("Pow", ["a", "q"], ["y"])],
     {"x": ((3, 4), F32)}, {"p": np.array(2, np.int64), "q": np.array([1.0, 2.0, 3.0, 0.5], F32)}, 15),
    ("int_div_mod_truncation", [node("Div", ["a", "b"], ["q"]), node("Mod", ["a", "b"], ["r"]),
                                node("Mod", ["a", "b"], ["f"], fmod=1)],
     {"a": ((4, 5), np.int32), "b": ((4, 5), np.int32)}, {}, 13),
    ("cast_equal_where", [node("Cast", ["x"], ["i"], to=onnx.TensorProto.INT64), node("Equal", ["i", "k"], ["e"]),
                          node("Where", ["e", "x", "z"], ["w"]), node("Cast", ["e"], ["y"], to=onnx.TensorProto.FLOAT),
                          node("Cast", ["i"], ["u"], to=onnx.TensorProto.UINT8)],
     {"x": ((3, 4), F32), "z": ((4,), F32)}, {"k": np.array(0, np.int64)}, 13),
    ("compare_logic", [node("Less", ["a", "b"], ["l"]), node("GreaterOrEqual", ["a", "b"], ["g"]),
                       node("Not", ["l"], ["n"]), node("And", ["n", "g"], ["y"]), node("Xor", ["l", "g"], ["o"])],
     {"a": ((3, 4), F32), "b": ((4,), F32)}, {}, 13),
    ("expand_runtime", [node("Expand", ["x", "s"])], {"x": ((3, 1), F32)}, {"s": np.array([2, 1, 4])}, 13),
    ("gather_runtime_data_const_indices", [node("Gather", ["x", "i"], axis=1)], X4,
     {"i": np.array([[2, -1], [0, 0]], np.int64)}, 13),
    ("gather_runtime_indices", [node("Gather", ["x", "i"], axis=0)], {"x": ((5, 3), F32), "i": ((4,), np.int32)},
     {}, 13),
    ("flatten_transpose_concat", [node("Flatten", ["x"], ["f"], axis=2), node("Transpose", ["f"], ["t"]),
                                  node("Concat", ["t", "c"], ["y"], axis=-1)], X4, {"c": "63x5"}, 13),
    ("depth_space", [node("DepthToSpace", ["x"], ["d"], blocksize=2, mode="CRD"),
                     node("SpaceToDepth", ["d"], ["s"], blocksize=2),
                     node("DepthToSpace", ["s"], ["y"], blocksize=2)], {"x": ((1, 8, 3, 2), F32)}, {}, 13),
    ("tile", [node("Tile", ["x", "r"])], {"x": ((2, 3), F32)}, {"r": np.array([2, 3])}, 13),
    ("dropout_mask", [node("Dropout", ["x"], ["y", "m"])], {"x": ((3, 4), F32)}, {}, 13),
    ("dropout_opset7_ratio", [node("Dropout", ["x"], ratio=0.3)], {"x": ((3, 4), F32)}, {}, 7),
    ("identity_and_constant", [node("Constant", [], ["c"], value=numpy_helper.from_array(np.arange(4, dtype=F32))),
                               node("Add", ["x", "c"], ["a"]), node("Identity", ["a"])], {"x": ((3, 4), F32)}, {}, 13),
]


def _initializer(spec: object, rng: np.random.Generator) -> np.ndarray:
    """'4x3x3' -> random normal weights of that shape; '+3' -> positive values."""
    if isinstance(spec, str):
        positive = spec.startswith("+")
        shape = [int(d) for d in spec.lstrip("+").split("x")]
        return (rng.uniform(0.5, 1.5, shape) if positive else rng.standard_normal(shape)).astype(F32)
    return np.asarray(spec)


def _feed(shape: Sequence[int], dtype: type, rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    if dt.kind == "u":
        return rng.integers(0, np.iinfo(dt).max, shape, dtype=dt, endpoint=True)
    values = rng.integers(-9, 10, shape).astype(dt)
    return np.where(values == 0, 3, values).astype(dt)  # no zero divisors


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_against_onnxruntime(case, rng):
    _, nodes, inputs, inits, opset = case
    outputs = [o for n in nodes for o in n.output if o not in {i for m in nodes for i in m.input}]
    initializers = {k: _initializer(v, rng) for k, v in inits.items()}
    model = make_model(nodes, inputs, outputs, initializers, opset)
    feeds = {k: _feed(shape, dt, rng) for k, (shape, dt) in inputs.items()}
    if "i" in feeds and case[0] == "gather_runtime_indices":
        feeds["i"] = np.array([4, -5, 0, 2], np.int32)
    compare(model, feeds)


def test_uint8_linear_resize_rounds_like_the_onnx_reference(rng):
    """onnxruntime truncates interpolated uint8 values; visc follows the ONNX reference
    implementation (round half to even, saturate)."""
    from onnx.reference import ReferenceEvaluator

    nodes = [node("Resize", ["x", "", "s"], mode="linear")]
    model = make_model(nodes, {"x": ((1, 2, 4, 5), np.uint8)}, ["y"], {"s": np.array([1, 1, 1.5, 0.7], F32)}, 13)
    x = rng.integers(0, 256, (1, 2, 4, 5), dtype=np.uint8)
    imported = import_model(model)
    (got,) = evaluate(imported.module, imported.weights, [x])
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    (ort,) = run_onnxruntime(model, {"x": x})
    assert np.abs(got.astype(int) - ort.astype(int)).max() <= 1


def test_unsigned_reductions_read_high_values_as_large(rng):
    from onnx.reference import ReferenceEvaluator

    nodes = [node("ReduceL1", ["x"], ["a"], axes=[1]), node("ReduceMax", ["x"], ["b"], axes=[0]),
             node("ReduceSum", ["x"], ["c"], axes=[1], keepdims=0)]
    model = make_model(nodes, {"x": ((3, 5), np.uint32)}, ["a", "b", "c"], opset=11)
    x = rng.integers(0, 2**32, (3, 5), dtype=np.uint32)
    x[0, 0] = 3_000_000_000
    imported = import_model(model)
    got = evaluate(imported.module, imported.weights, [x])
    want = ReferenceEvaluator(model).run(None, {"x": x})
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.uint32
        np.testing.assert_array_equal(g, w)


def test_cast_float_to_small_int_types(rng):
    x = (rng.standard_normal((4, 5)) * 50).astype(F32)
    nodes = [node("Cast", ["x"], [f"y{t}"], to=t)
             for t in (onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32)]
    nodes.append(node("Cast", ["x"], ["h"], to=onnx.TensorProto.FLOAT16))
    nodes.append(node("Cast", ["h"], ["d"], to=onnx.TensorProto.DOUBLE))
    model = make_model(nodes, {"x": ((4, 5), F32)}, ["y3", "y5", "y6", "d"], opset=13)
    compare(model, {"x": x})


def test_pytorch_style_flatten_follows_the_batch(rng):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape folds at import with the given batch."""
    nodes = [
        node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        node("Shape", ["c"], ["s"]),
        node("Gather", ["s", "zero"], ["n"], axis=0),
        node("Unsqueeze", ["n", "ax"], ["n1"]),
        node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        node("Reshape", ["c", "shape"], ["f"]),
        node("Gemm", ["f", "fc", "fb"], transB=1),
    ]
    inits = {"w": randn(rng, 4, 3, 3, 3), "zero": np.array(0, np.int64), "ax": np.array([0]),
             "minus1": np.array([-1]), "fc": randn(rng, 10, 4 * 5 * 6), "fb": randn(rng, 10)}
    model = make_model(nodes, {"x": (("N", 3, 5, 6), F32)}, ["y"], inits, opset=13)
    imported = compare(model, {"x": randn(rng, 4, 3, 5, 6)}, input_shapes={"x": (4, 3, 5, 6)})
    assert imported.output_shapes == [(4, 10)]
    # without a given shape the symbolic batch dim becomes 1
    assert import_model(model).input_shapes == [(1, 3, 5, 6)]


def with_free_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same model with a symbolic batch dim, so that onnxruntime accepts other batches."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name for t in m.graph.initializer}
    for vi in m.graph.input:
        if vi.name not in inits:
            vi.type.tensor_type.shape.dim[0].dim_param = "N"
    return m


def test_reshape_with_zero_and_minus_one_allows_a_new_batch(rng):
    nodes = [node("Conv", ["x", "w"], ["c"]), node("Reshape", ["c", "s"], ["f"]), node("MatMul", ["f", "m"])]
    inits = {"w": randn(rng, 2, 3, 3, 3), "s": np.array([0, -1]), "m": randn(rng, 2 * 3 * 4, 5)}
    model = make_model(nodes, {"x": ((1, 3, 5, 6), F32)}, ["y"], inits, opset=13)
    assert import_model(model).output_shapes == [(1, 5)]
    imported = compare(with_free_batch(model), {"x": randn(rng, 8, 3, 5, 6)}, input_shapes={"x": (8, 3, 5, 6)})
    assert imported.output_shapes == [(8, 5)]


# --------------------------------------------------------------------------- IR shape


def _parse(text: str) -> builtin.ModuleOp:
    ctx = Context()
    for d in (builtin.Builtin, func.Func, arith.Arith, math.Math, vision.Vision):
        ctx.load_dialect(d)
    return Parser(ctx, text).parse_module()


def test_resnet50_stage1_ir_contract():
    imported = import_model(light_model_path("resnet50"))
    module = imported.module
    (main,) = module.ops
    assert isinstance(main, func.FuncOp) and main.sym_name.data == "main"
    assert [s.data for s in main.attributes["vision.input_names"].data] == ["gpu_0/data_0"]
    assert [s.data for s in main.attributes["vision.output_dtypes"].data] == ["float32"]
    assert imported.input_shapes == [(1, 3, 224, 224)] and imported.output_shapes == [(1, 1000)]
    assert imported.input_dtypes == [np.dtype(np.float32)] == imported.output_dtypes
    counts: dict[str, int] = {}
    for op in main.body.block.ops:
        counts[op.name] = counts.get(op.name, 0) + 1
        if isinstance(op, vision.VisionOp):
            assert "onnx_node" in op.attributes and "onnx_op" in op.attributes
        if isinstance(op, vision.WeightOp):
            assert op.weight_name in imported.weights
        assert not isinstance(op, arith.ConstantOp), "tensor constants must be weights"
    assert counts["vision.conv2d"] == 53 and counts["vision.batch_norm"] == 53
    assert counts["vision.matmul"] == 1 and counts["vision.softmax"] == 1
    # weights are not printed: the text is small and parses back to the same module
    text = str(module)
    assert len(text) < 200_000
    assert _parse(text).is_structurally_equivalent(module)


def test_relu_body_uses_a_scalar_constant():
    model = make_model([node("Relu", ["x"])], {"x": ((2, 3), F32)}, ["y"], opset=13)
    text = str(import_model(model).module)
    assert 'vision.map ins(%x : tensor<2x3xf32>) {onnx_node = "Relu#0", onnx_op = "Relu"} body' in text
    assert "arith.constant 0.000000e+00 : f32" in text and "arith.maximumf" in text


def test_scalar_constants_are_inlined_but_tensors_become_weights(rng):
    nodes = [node("Mul", ["x", "k"], ["a"]), node("Add", ["a", "b"])]
    model = make_model(nodes, {"x": ((2, 3), F32)}, ["y"], {"k": np.array([2.5], F32), "b": randn(rng, 3)}, 13)
    imported = import_model(model)
    text = str(imported.module)
    assert "arith.constant 2.500000e+00 : f32" in text
    assert text.count("vision.weight") == 1 and list(imported.weights) == ["b"]


def test_unsigned_and_bool_io_dtypes_are_recorded(rng):
    nodes = [node("Cast", ["x"], ["u"], to=onnx.TensorProto.UINT16), node("Greater", ["x", "k"], ["b"])]
    model = make_model(nodes, {"x": ((5,), np.uint8)}, ["u", "b"], {"k": np.array(100, np.uint8)}, 13)
    imported = import_model(model)
    assert imported.input_dtypes == [np.dtype(np.uint8)]
    assert imported.output_dtypes == [np.dtype(np.uint16), np.dtype(np.bool_)]
    assert "arith.cmpi ugt" in str(imported.module) and "arith.extui" in str(imported.module)
    compare(model, {"x": np.array([0, 99, 100, 101, 255], np.uint8)})


# --------------------------------------------------------------------------- model zoo


def randomized(model: onnx.ModelProto, rng: np.random.Generator) -> onnx.ModelProto:
    """The zoo model with seeded random weights (its own are all 0.02, which makes every class
    equal) and the softmax inputs (logits) as extra outputs."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    keep = []
    for n in m.graph.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in inits:
            shape = [int(v) for v in inits[n.input[0]]]
            if len(shape) >= 2:
                w = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
            else:
                w = rng.uniform(0.5, 1.5, shape)
            m.graph.initializer.append(numpy_helper.from_array(w.astype(F32), n.output[0]))
            m.graph.input.append(helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, shape))
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype == F32 and a.ndim == 1 and a.size > 1:
            t.CopyFrom(numpy_helper.from_array(rng.uniform(0.5, 1.5, a.shape).astype(F32), t.name))
    logits = [n.input[0] for n in m.graph.node if n.op_type == "Softmax"]
    if logits:
        # ONNX IR 3 needs output shapes: take them from onnxruntime
        probe = onnx.ModelProto()
        probe.CopyFrom(m)
        probe.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in logits)
        data = next(i for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer})
        shape = [d.dim_value for d in data.type.tensor_type.shape.dim]
        values = run_onnxruntime(probe, {data.name: np.zeros(shape, F32)})[-len(logits):]
        m.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, v.shape)
                              for n, v in zip(logits, values, strict=True))
    return m


SLOW = {"bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "vgg19", "zfnet512"}
ZOO = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
       for n in ("resnet50", "squeezenet", "shufflenet", *sorted(SLOW))]


@pytest.mark.parametrize("name", ZOO)
def test_model_zoo_against_onnxruntime(name, rng):
    model = randomized(onnx.load(light_model_path(name)), rng)
    imported = import_model(model)
    x = randn(rng, *imported.input_shapes[0])
    got = evaluate(imported.module, imported.weights, [x])
    want = run_onnxruntime(model, {imported.input_names[0]: x})
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert np.abs(g - w).max() / np.abs(w).max() <= 1e-4


def logits_of(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without its final Softmax. The zoo files' placeholder weights (every one
    0.02) make all 1000 logits about 6.8e9 and equal to 7 digits, so the softmax of two
    correct float32 results differs by whole classes (which depends on the BLAS's summation
    order); the logits are what can be compared."""
    last = model.graph.node[-1]
    assert last.op_type == "Softmax"
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.graph.node.pop()
    model.graph.output[0].name = last.input[0]
    return model


def test_model_zoo_file_with_its_own_weights(rng):
    model = logits_of(onnx.load(light_model_path("squeezenet")))
    imported = import_model(model)
    x = randn(rng, 1, 3, 224, 224)
    (got,) = evaluate(imported.module, imported.weights, [x])
    (want,) = run_onnxruntime(model, {"data_0": x})
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-4


def test_squeezenet_with_batch_2(rng):
    model = with_free_batch(logits_of(onnx.load(light_model_path("squeezenet"))))
    x = randn(rng, 2, 3, 224, 224)
    imported = compare(model, {"data_0": x}, input_shapes={"data_0": (2, 3, 224, 224)}, rtol=1e-4)
    assert imported.output_shapes == [(2, 1000, 1, 1)]


# --------------------------------------------------------------------------- errors


def test_truncated_file(tmp_path):
    data = open(light_model_path("resnet50"), "rb").read()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"cannot read ONNX model '.*cut\.onnx': the file is truncated"):
        import_model(path)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot read ONNX model '.*nope.onnx'"):
        import_model(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\x00not a model at all" * 10)
    with pytest.raises(ModelLoadError, match="cannot read ONNX model"):
        import_model(junk)


def test_two_unsupported_ops_in_one_error():
    nodes = [node("NonZero", ["x"], ["nz"]), node("Relu", ["x"], ["r"]),
             node("Hardmax", ["r"], ["h1"]), node("Hardmax", ["r"], ["h2"], name="second_hardmax")]
    model = make_model(nodes, {"x": ((2, 3), F32)}, ["nz", "h1", "h2"], opset=13)
    with pytest.raises(UnsupportedModelError) as info:
        import_model(model)
    msg = str(info.value)
    assert "unsupported op Hardmax (nodes 'Hardmax#2', 'second_hardmax')" in msg
    assert "unsupported op NonZero (node 'NonZero#0')" in msg
    assert "Traceback" not in msg


def test_unsupported_ops_lists_problems_without_importing():
    from visc.frontend import unsupported_ops

    nodes = [node("NonZero", ["x"], ["nz"]), node("Relu", ["x"], ["r"])]
    model = make_model(nodes, {"x": ((2, 3), F32)}, ["nz", "r"], opset=13)
    assert unsupported_ops(model) == ["unsupported op NonZero (node 'NonZero#0')"]
    assert unsupported_ops(light_model_path("squeezenet")) == []


def test_parameters_computed_at_run_time_are_reported():
    nodes = [node("Reshape", ["x", "s"], ["r"]), node("Range", ["a", "b", "c"], ["q"])]
    model = make_model(nodes, {"x": ((2, 3), F32), "s": ((2,), np.int64), "a": ((), np.int64),
                              "b": ((), np.int64), "c": ((), np.int64)}, ["r", "q"], opset=13)
    with pytest.raises(UnsupportedModelError) as info:
        import_model(model)
    assert "Reshape node 'Reshape#0': input 2 ('s') must be a constant known at import time" in str(info.value)
    assert "Range node 'Range#1': its inputs must be constants" in str(info.value)


def test_training_mode_batch_norm_outputs_are_rejected(rng):
    nodes = [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "mean", "var", "sm", "sv"])]
    inits = {k: rng.uniform(0.5, 1.5, 3).astype(F32) for k in "sbmv"}
    model = make_model(nodes, X4, ["y", "mean"], inits, opset=9)
    with pytest.raises(UnsupportedModelError, match="training-mode outputs"):
        import_model(model)


def test_wrong_channel_count_names_input_and_node():
    with pytest.raises(InputShapeError) as info:
        import_model(light_model_path("resnet50"), {"gpu_0/data_0": (1, 4, 224, 224)})
    msg = str(info.value)
    assert "input 'gpu_0/data_0' has the given shape (1, 4, 224, 224), the model declares (1, 3, 224, 224)" in msg
    assert "node 'n0' (Conv) fails: input has 4 channels" in msg


def test_new_batch_that_a_hard_coded_reshape_cannot_take():
    with pytest.raises(InputShapeError, match=r"node 'n173' \(Reshape\) fails: cannot reshape \(8, 2048, 1, 1\)"):
        import_model(light_model_path("resnet50"), {"gpu_0/data_0": (8, 3, 224, 224)})


def test_bigger_image_that_no_longer_fits_the_classifier(rng):
    nodes = [node("Conv", ["x", "w"], ["c"]), node("Flatten", ["c"], ["f"]), node("Gemm", ["f", "fc"], name="fc")]
    inits = {"w": randn(rng, 2, 3, 3, 3), "fc": randn(rng, 2 * 4 * 4, 10)}
    model = make_model(nodes, {"x": ((1, 3, 6, 6), F32)}, ["y"], inits, opset=13)
    with pytest.raises(InputShapeError, match=r"input 'x' has the given shape \(1, 3, 8, 8\), the model declares "
                                              r"\(1, 3, 6, 6\); with it, node 'fc' \(Gemm\) fails: A \(1, 72\)"):
        import_model(model, {"x": (1, 3, 8, 8)})


def test_wrong_rank_and_unknown_input_name():
    path = light_model_path("squeezenet")
    with pytest.raises(InputShapeError, match=r"input 'data_0': given shape \(3, 224, 224\) has rank 3, "
                                              r"but the model expects rank 4 \(1, 3, 224, 224\)"):
        import_model(path, {"data_0": (3, 224, 224)})
    with pytest.raises(InputShapeError, match="no model input named 'image'; the inputs are 'data_0'"):
        import_model(path, {"image": (1, 3, 224, 224)})


def test_dynamic_dims_need_a_shape():
    model = make_model([node("Relu", ["x"])], {"x": (("N", 3, "H", "W"), F32)}, ["y"], opset=13)
    with pytest.raises(InputShapeError, match="input 'x' has dynamic dims .* --input-shape x=N,3,N,N"):
        import_model(model)
    assert import_model(model, {"x": (2, 3, 8, 8)}).output_shapes == [(2, 3, 8, 8)]


def test_invalid_model_is_a_load_error():
    model = make_model([node("Relu", ["x"])], {"x": ((2,), F32)}, ["y"], opset=13)
    model.graph.node[0].input[0] = "missing"
    with pytest.raises(ModelLoadError, match="cannot read ONNX model"):
        import_model(model.SerializeToString())
