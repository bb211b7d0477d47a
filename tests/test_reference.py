"""visc.reference: every ONNX backend node test of the supported ops through the importer and
the interpreter, and op semantics (eval_op) on hand-written IR against plain numpy."""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import onnx
import pytest
from conftest import run_onnxruntime
from onnx import numpy_helper
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math
from xdsl.parser import Parser

from visc.dialects import vision
from visc.errors import InputShapeError, UnsupportedModelError
from visc.frontend import import_model
from visc.frontend.registry import load_all
from visc.frontend.specialize import bind_inputs, graph_parameter_inputs
from visc.reference import eval_op, evaluate
from visc.weights import WeightStore

# --------------------------------------------------------------------------- ONNX node tests

OPS = set(
    "Conv ConvTranspose BatchNormalization Relu LeakyRelu PRelu Sigmoid Tanh HardSigmoid HardSwish Clip "
    "Elu Selu Softplus Erf Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Sum Max Min Mean MaxPool AveragePool "
    "GlobalAveragePool GlobalMaxPool LRN Gemm MatMul Flatten Reshape Transpose Concat Split Slice Squeeze "
    "Unsqueeze Pad Resize Upsample Softmax LogSoftmax ReduceMean ReduceSum ReduceMax ReduceMin Dropout "
    "Identity Constant ConstantOfShape Shape Gather Cast Range Expand Equal Where "
    "TopK ArgMax ArgMin CumSum NonMaxSuppression RoiAlign".split()
)

# Deliberate skips: an UnsupportedModelError whose message matches is expected.
NOT_IN_SCOPE = [
    (r"element type (bfloat16|float8\w*|float4\w*|u?int4|u?int2|string)|Cast to (bfloat16|float8|float4|u?int4|u?int2|string)",
     "bfloat16 / float8 / float4 / int4 / int2 / string element types are not IR element types (docs/ir.md)"),
    (r"training_mode=|training-mode|in training mode", "training mode: visc compiles inference graphs"),
    (r"antialias=1", "Resize antialias has no vision.resize equivalent"),
    (r"Indices output", "MaxPool's argmax Indices output is not supported"),
    (r"3-D transposed convolution", "vision.conv2d_transpose is 2-D (1-D is lifted); 3-D is out of scope"),
]
# Ops outside the importer's scope that the expanded function bodies of some tests use.
OUT_OF_SCOPE_OPS = {"If", "Loop", "Scan", "GatherElements", "NegativeLogLikelihoodLoss", "QuantizeLinear",
                    "RandomUniformLike", "SequenceEmpty", "SequenceLength", "SequenceMap"}
# Cases compared with onnxruntime instead of the stored outputs, and why.
ORT_ORACLE = {
    "test_resize_downsample_scales_linear_align_corners":
        "onnx's Python reference divides by scale*n_in for align_corners; the spec and onnxruntime "
        "(and visc) use the integer output length",
    "test_resize_downsample_scales_cubic_align_corners": "same as linear_align_corners",
}

_CONVERTERS = load_all()


def _collect() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    return [c for c in cases if c.model is not None and any(n.op_type in OPS for n in c.model.graph.node)]


NODE_CASES = _collect()


def _array(v: object) -> np.ndarray:
    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v)


def _freeze(model: onnx.ModelProto, inputs: list[np.ndarray]) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """Turn the test's parameter inputs (e.g. Reshape's shape) into initializers with its data."""
    names = [vi.name for vi in model.graph.input]
    params = set(graph_parameter_inputs(model))
    frozen = {n: v for n, v in zip(names, inputs, strict=True) if n in params}
    return bind_inputs(model, frozen), [v for n, v in zip(names, inputs, strict=True) if n not in frozen]


def _skip_reason(error: UnsupportedModelError) -> str | None:
    msg = str(error)
    for pattern, reason in NOT_IN_SCOPE:
        if re.search(pattern, msg):
            return reason
    ops = set(re.findall(r"unsupported op (\w+)", msg))
    if ops and ops <= OUT_OF_SCOPE_OPS:
        return f"uses ops outside the importer's scope: {', '.join(sorted(ops))}"
    return None


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_onnx_node_case(case):
    if any(vi.type.WhichOneof("value") != "tensor_type" for vi in case.model.graph.input):
        pytest.skip("sequence/optional values are not tensors")
    for inputs, outputs in case.data_sets:
        model, feeds = _freeze(case.model, [_array(v) for v in inputs])
        runtime_inputs = [vi for vi in model.graph.input if vi.name not in {t.name for t in model.graph.initializer}]
        shapes = {vi.name: v.shape for vi, v in zip(runtime_inputs, feeds, strict=True)}
        try:
            imported = import_model(model, shapes)
        except UnsupportedModelError as e:
            reason = _skip_reason(e)
            if reason is None:
                raise
            pytest.skip(reason)
        got = evaluate(imported.module, imported.weights, feeds)
        if case.name in ORT_ORACLE:
            outputs = run_onnxruntime(model, {vi.name: v for vi, v in zip(runtime_inputs, feeds, strict=True)})
        for g, e in zip(got, outputs, strict=True):
            e = _array(e)
            assert g.shape == e.shape and g.dtype == e.dtype
            if e.dtype.kind == "f":
                # float16 results: allow 2 ulps for a different evaluation order
                rtol = max(case.rtol, 2e-3) if e.dtype == np.float16 else case.rtol
                np.testing.assert_allclose(g, e, rtol=rtol, atol=case.atol)
            else:
                np.testing.assert_array_equal(g, e)


# --------------------------------------------------------------------------- eval_op on hand-written IR


def parse(text: str) -> builtin.ModuleOp:
    ctx = Context()
    for d in (builtin.Builtin, func.Func, arith.Arith, math.Math, vision.Vision):
        ctx.load_dialect(d)
    return Parser(ctx, text).parse_module()


def only_op(text: str) -> vision.VisionOp:
    module = parse(text)
    ops = [op for op in module.walk() if isinstance(op, vision.VisionOp)]
    assert len(ops) == 1
    return ops[0]


def naive_conv(x, w, b, strides, pads, dilations, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    y = np.zeros((n, o, oh, ow), np.float64)
    og = o // groups
    for bi, oc, i, j in itertools.product(range(n), range(o), range(oh), range(ow)):
        g = oc // og
        for ci, ki, kj in itertools.product(range(cg), range(kh), range(kw)):
            y[bi, oc, i, j] += w[oc, ci, ki, kj] * xp[bi, g * cg + ci, i * strides[0] + ki * dilations[0],
                                                       j * strides[1] + kj * dilations[1]]
        y[bi, oc, i, j] += b[oc]
    return y


def test_conv2d_with_epilogue_and_fuse_operand(rng):
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    skip = rng.standard_normal((6, 1, 1)).astype(np.float32)
    op = only_op("""
    %x = vision.weight @x : tensor<2x4x7x6xf32>
    %w = vision.weight @w : tensor<6x2x3x2xf32>
    %b = vision.weight @b : tensor<6xf32>
    %s = vision.weight @s : tensor<6x1x1xf32>
    %y = vision.conv2d ins(%x, %w, %b : tensor<2x4x7x6xf32>, tensor<6x2x3x2xf32>, tensor<6xf32>)
         fuse(%s : tensor<6x1x1xf32>)
         {strides = array<i64: 2, 1>, pads = array<i64: 1, 0, 2, 1>, dilations = array<i64: 1, 2>, groups = 2 : i64}
         body {
         ^bb0(%acc: f32, %t: f32):
           %0 = arith.addf %acc, %t : f32
           %z = arith.constant 0.0 : f32
           %1 = arith.maximumf %0, %z : f32
           vision.yield %1 : f32
         } -> tensor<2x6x4x5xf32>
    """)
    (y,) = eval_op(op, [x, w, b], [skip])
    want = np.maximum(naive_conv(x, w, b, (2, 1), (1, 0, 2, 1), (1, 2), 2) + skip, 0)
    assert y.shape == (2, 6, 4, 5) and y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_conv2d_transpose_matches_scatter_definition(rng):
    x = rng.standard_normal((1, 4, 3, 4)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)  # groups 2: O = 3 * 2
    op = only_op("""
    %x = vision.weight @x : tensor<1x4x3x4xf32>
    %w = vision.weight @w : tensor<4x3x3x2xf32>
    %y = vision.conv2d_transpose ins(%x, %w : tensor<1x4x3x4xf32>, tensor<4x3x3x2xf32>)
         {strides = array<i64: 2, 3>, pads = array<i64: 1, 0, 0, 2>, dilations = array<i64: 1, 2>,
          groups = 2 : i64, output_padding = array<i64: 1, 0>} -> tensor<1x6x7x10xf32>
    """)
    (y,) = eval_op(op, [x, w])
    full = np.zeros((1, 6, 3 * 2 + 4, 4 * 3 + 4), np.float64)
    for c, i, j, o, ki, kj in itertools.product(range(4), range(3), range(4), range(3), range(3), range(2)):
        g = c // 2
        full[0, g * 3 + o, i * 2 + ki, j * 3 + kj * 2] += x[0, c, i, j] * w[c, o, ki, kj]
    np.testing.assert_allclose(y, full[:, :, 1:8, 0:10], rtol=1e-5, atol=1e-5)


def test_matmul_alpha_beta_transposes_and_epilogue(rng):
    a = rng.standard_normal((2, 5, 3)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    c = rng.standard_normal(4).astype(np.float32)
    op = only_op("""
    %a = vision.weight @a : tensor<2x5x3xf32>
    %b = vision.weight @b : tensor<4x5xf32>
    %c = vision.weight @c : tensor<4xf32>
    %y = vision.matmul ins(%a, %b, %c : tensor<2x5x3xf32>, tensor<4x5xf32>, tensor<4xf32>)
         {transpose_a = 1 : i64, transpose_b = 1 : i64, alpha = 0.5 : f32, beta = 2.0 : f32} body {
         ^bb0(%acc: f32):
           %0 = math.tanh %acc : f32
           vision.yield %0 : f32
         } -> tensor<2x3x4xf32>
    """)
    (y,) = eval_op(op, [a, b, c])
    want = np.tanh(0.5 * np.swapaxes(a, 1, 2) @ b.T + 2.0 * c)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def _map(body: str, in_types: list[str], out_type: str, shape: str = "4") -> vision.VisionOp:
    args = ", ".join(f"%a{i}" for i in range(len(in_types)))
    decls = "\n".join(f"    %a{i} = vision.weight @a{i} : tensor<{shape}x{t}>" for i, t in enumerate(in_types))
    types = ", ".join(f"tensor<{shape}x{t}>" for t in in_types)
    bb = ", ".join(f"%v{i}: {t}" for i, t in enumerate(in_types))
    return only_op(f"""
{decls}
    %y = vision.map ins({args} : {types}) body {{
    ^bb0({bb}):
{body}
    }} -> tensor<{shape}x{out_type}>
    """)


def test_integer_body_ops_respect_signedness():
    a = np.array([-7, 7, -128, 100], np.int8)
    b = np.array([2, -2, 3, 7], np.int8)
    cases = {
        "arith.divsi": [-3, -3, -42, 14],
        "arith.remsi": [-1, 1, -2, 2],
        "arith.divui": [(249 // 2), 7 // 254, 128 // 3, 100 // 7],
        "arith.remui": [249 % 2, 7 % 254, 128 % 3, 100 % 7],
        "arith.maxui": [-7, -2, -128, 100],
        "arith.minsi": [-7, -2, -128, 7],
        "arith.floordivsi": [-4, -4, -43, 14],
    }
    for name, want in cases.items():
        op = _map(f"      %r = {name} %v0, %v1 : i8\n      vision.yield %r : i8", ["i8", "i8"], "i8")
        (y,) = eval_op(op, [a, b])
        np.testing.assert_array_equal(y, np.array(want, np.int64).astype(np.int8), err_msg=name)
    op = _map("      %r = arith.cmpi ult, %v0, %v1 : i8\n      vision.yield %r : i1", ["i8", "i8"], "i1")
    np.testing.assert_array_equal(eval_op(op, [a, b])[0], [False, True, False, False])


def test_casts_between_signless_types():
    u8 = np.array([0, 1, 200, 255], np.uint8)  # given unsigned: read as the same bits
    op = _map("      %r = arith.uitofp %v0 : i8 to f32\n      vision.yield %r : f32", ["i8"], "f32")
    np.testing.assert_array_equal(eval_op(op, [u8])[0], [0, 1, 200, 255])
    op = _map("      %r = arith.sitofp %v0 : i8 to f32\n      vision.yield %r : f32", ["i8"], "f32")
    np.testing.assert_array_equal(eval_op(op, [u8])[0], [0, 1, -56, -1])
    op = _map("      %r = arith.extui %v0 : i8 to i32\n      vision.yield %r : i32", ["i8"], "i32")
    np.testing.assert_array_equal(eval_op(op, [u8])[0], [0, 1, 200, 255])
    op = _map("      %r = arith.extsi %v0 : i8 to i32\n      vision.yield %r : i32", ["i8"], "i32")
    np.testing.assert_array_equal(eval_op(op, [u8])[0], [0, 1, -56, -1])
    op = _map("      %r = arith.trunci %v0 : i32 to i8\n      vision.yield %r : i8", ["i32"], "i8")
    np.testing.assert_array_equal(eval_op(op, [np.array([1, 255, 256, -129], np.int32)])[0], [1, -1, 0, 127])
    bits = np.array([True, False, True, False])
    op = _map("      %r = arith.extsi %v0 : i1 to i32\n      vision.yield %r : i32", ["i1"], "i32")
    np.testing.assert_array_equal(eval_op(op, [bits])[0], [-1, 0, -1, 0])
    op = _map("      %r = arith.uitofp %v0 : i1 to f32\n      vision.yield %r : f32", ["i1"], "f32")
    np.testing.assert_array_equal(eval_op(op, [bits])[0], [1, 0, 1, 0])
    f = np.array([-1.7, 2.9, 250.5, 0.2], np.float32)
    op = _map("      %r = arith.fptosi %v0 : f32 to i32\n      vision.yield %r : i32", ["f32"], "i32")
    np.testing.assert_array_equal(eval_op(op, [f])[0], [-1, 2, 250, 0])
    op = _map("      %r = arith.fptoui %v0 : f32 to i8\n      vision.yield %r : i8", ["f32"], "i8")
    np.testing.assert_array_equal(eval_op(op, [np.abs(f)])[0].view(np.uint8), [1, 2, 250, 0])


def test_float_predicates_and_nan():
    a = np.array([1.0, np.nan, 2.0, 3.0], np.float32)
    b = np.array([1.0, 1.0, np.nan, 1.0], np.float32)
    want = {"oeq": [1, 0, 0, 0], "une": [0, 1, 1, 1], "ueq": [1, 1, 1, 0], "one": [0, 0, 0, 1],
            "ogt": [0, 0, 0, 1], "ult": [0, 1, 1, 0], "uno": [0, 1, 1, 0], "ord": [1, 0, 0, 1]}
    for pred, expected in want.items():
        op = _map(f"      %r = arith.cmpf {pred}, %v0, %v1 : f32\n      vision.yield %r : i1", ["f32", "f32"], "i1")
        np.testing.assert_array_equal(eval_op(op, [a, b])[0], np.array(expected, bool), err_msg=pred)
    op = _map("      %r = arith.maximumf %v0, %v1 : f32\n      vision.yield %r : f32", ["f32", "f32"], "f32")
    assert np.isnan(eval_op(op, [a, b])[0][1:3]).all()


def test_math_body_ops_and_broadcasting(rng):
    x = rng.uniform(0.1, 2.0, (3, 4)).astype(np.float32)
    op = only_op("""
    %a = vision.weight @a : tensor<3x4xf32>
    %b = vision.weight @b : tensor<4xf32>
    %y = vision.map ins(%a, %b : tensor<3x4xf32>, tensor<4xf32>) body {
    ^bb0(%x: f32, %c: f32):
      %0 = math.rsqrt %x : f32
      %1 = math.erf %c : f32
      %2 = math.fma %0, %1, %x : f32
      %3 = math.powf %2, %c : f32
      %4 = math.roundeven %3 : f32
      %5 = math.round %c : f32
      %6 = arith.addf %4, %5 : f32
      vision.yield %6 : f32
    } -> tensor<3x4xf32>
    """)
    c = np.array([0.5, 1.5, 2.5, 3.0], np.float32)
    (y,) = eval_op(op, [x, c])
    from math import erf

    r = 1 / np.sqrt(x) * np.array([erf(v) for v in c], np.float32) + x
    want = np.rint(r ** c) + np.array([1, 2, 3, 3], np.float32)
    np.testing.assert_allclose(y, want, rtol=1e-5)


def test_reduce_kinds_keep_or_drop_dims(rng):
    x = rng.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)
    ref = {
        "sum": lambda a, k: a.sum((0, 2), keepdims=k), "mean": lambda a, k: a.mean((0, 2), keepdims=k),
        "max": lambda a, k: a.max((0, 2), keepdims=k), "min": lambda a, k: a.min((0, 2), keepdims=k),
        "prod": lambda a, k: a.prod((0, 2), keepdims=k),
        "sum_square": lambda a, k: (a * a).sum((0, 2), keepdims=k),
        "l1": lambda a, k: np.abs(a).sum((0, 2), keepdims=k),
        "l2": lambda a, k: np.sqrt((a * a).sum((0, 2), keepdims=k)),
        "log_sum": lambda a, k: np.log(a.sum((0, 2), keepdims=k)),
        "log_sum_exp": lambda a, k: np.log(np.exp(a).sum((0, 2), keepdims=k)),
    }
    for kind, fn in ref.items():
        for keep, shape in ((True, "1x3x1"), (False, "3")):
            op = only_op(f"""
            %a = vision.weight @a : tensor<2x3x4xf32>
            %y = vision.reduce ins(%a : tensor<2x3x4xf32>) {{kind = "{kind}", axes = array<i64: 0, 2>}}
                 -> tensor<{shape}xf32>
            """)
            np.testing.assert_allclose(eval_op(op, [x])[0], fn(x, keep), rtol=1e-5, err_msg=kind)


def test_data_movement_ops(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    op = only_op("""
    %a = vision.weight @a : tensor<3x5xf32>
    %y = vision.slice ins(%a : tensor<3x5xf32>) {starts = array<i64: 2, 4>, steps = array<i64: -1, -2>} -> tensor<3x3xf32>
    """)
    np.testing.assert_array_equal(eval_op(op, [x])[0], x[::-1, ::-2])
    for mode in ("constant", "reflect", "edge", "wrap"):
        op = only_op(f"""
        %a = vision.weight @a : tensor<3x5xf32>
        %y = vision.pad ins(%a : tensor<3x5xf32>) {{pads = array<i64: 1, -1, 2, 2>, mode = "{mode}",
             value = 0.5 : f64}} -> tensor<6x6xf32>
        """)
        kw = {"constant_values": 0.5} if mode == "constant" else {}
        np.testing.assert_array_equal(eval_op(op, [x])[0], np.pad(x[:, 1:], ((1, 2), (0, 2)), mode=mode, **kw))
    op = only_op("""
    %a = vision.weight @a : tensor<3x5xf32>
    %i = vision.weight @i : tensor<2x2xi32>
    %y = vision.gather ins(%a, %i : tensor<3x5xf32>, tensor<2x2xi32>) {axis = 1 : i64} -> tensor<3x2x2xf32>
    """)
    idx = np.array([[-1, 0], [4, -5]], np.int32)
    np.testing.assert_array_equal(eval_op(op, [x, idx])[0], x[:, [[4, 0], [4, 0]]])
    op = only_op("""
    %a = vision.weight @a : tensor<3x5xf32>
    %p, %q = vision.split ins(%a : tensor<3x5xf32>) {axis = 1 : i64} -> tensor<3x2xf32>, tensor<3x3xf32>
    """)
    p, q = eval_op(op, [x])
    np.testing.assert_array_equal(p, x[:, :2])
    np.testing.assert_array_equal(q, x[:, 2:])


def test_pool2d_three_spatial_dims_and_lp(rng):
    x = rng.standard_normal((1, 2, 4, 5, 3)).astype(np.float32)
    op = only_op("""
    %a = vision.weight @a : tensor<1x2x4x5x3xf32>
    %y = vision.pool2d ins(%a : tensor<1x2x4x5x3xf32>) {kind = "avg", kernel = array<i64: 2, 3, 2>,
         strides = array<i64: 2, 2, 1>, pads = array<i64: 0, 1, 0, 1, 1, 1>, dilations = array<i64: 1, 1, 1>,
         ceil_mode = 0 : i64, count_include_pad = 0 : i64} -> tensor<1x2x2x3x3xf32>
    """)
    (y,) = eval_op(op, [x])
    xp = np.pad(x, ((0, 0), (0, 0), (0, 1), (1, 1), (0, 1)), constant_values=np.nan)
    for i, j, k in itertools.product(range(2), range(3), range(3)):
        win = xp[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 3, k:k + 2]
        np.testing.assert_allclose(y[:, :, i, j, k], np.nanmean(win, axis=(2, 3, 4)), rtol=1e-5)


def test_evaluate_restores_onnx_dtypes_and_checks_shapes():
    module = parse("""
    func.func @main(%x: tensor<4xi8>) -> tensor<4xi8> attributes {vision.input_names = ["x"],
        vision.output_names = ["y"], vision.input_dtypes = ["uint8"], vision.output_dtypes = ["uint8"]} {
      %w = vision.weight @w : tensor<4xi8>
      %y = vision.map ins(%x, %w : tensor<4xi8>, tensor<4xi8>) body {
      ^bb0(%a: i8, %b: i8):
        %r = arith.maxui %a, %b : i8
        vision.yield %r : i8
      } -> tensor<4xi8>
      func.return %y : tensor<4xi8>
    }
    """)
    weights = WeightStore({"w": np.array([10, 200, 0, 255], np.uint8)})
    (y,) = evaluate(module, weights, [np.array([100, 100, 3, 1], np.uint8)])
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y, [100, 200, 3, 255])
    with pytest.raises(InputShapeError, match=r"input 'x' has shape \(5,\), the model expects \(4,\)"):
        evaluate(module, weights, [np.zeros(5, np.uint8)])


def test_eval_op_on_a_bufferized_op():
    module = parse("""
    %a = vision.weight @a : memref<2x3xf32>
    %o = vision.buffer offset 0 : memref<2x3xf32>
    vision.map ins(%a : memref<2x3xf32>) outs(%o : memref<2x3xf32>) body {
    ^bb0(%v: f32):
      %r = arith.negf %v : f32
      vision.yield %r : f32
    }
    """)
    (op,) = [o for o in module.walk() if isinstance(o, vision.MapOp)]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (y,) = eval_op(op, [x])
    np.testing.assert_array_equal(y, -x)


def test_zero_dim_results_stay_zero_dim():
    op = only_op("""
    %a = vision.weight @a : tensor<3xf32>
    %y = vision.reduce ins(%a : tensor<3xf32>) {kind = "sum", axes = array<i64: 0>} -> tensor<f32>
    """)
    (y,) = eval_op(op, [np.ones(3, np.float32)])
    assert y.shape == () and y == 3.0
