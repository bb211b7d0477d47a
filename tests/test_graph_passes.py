"""Graph passes preserve semantics (reference.evaluate before vs after, with the weight
store in use) and leave the IR they promise: folded batch-norms, fused epilogues,
constants evaluated once."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from visc.dialects import make_context
from visc.dialects.vision import (
    BatchNormOp,
    Conv2dOp,
    Conv2dTransposeOp,
    MapOp,
    MatmulOp,
    VisionOp,
    WeightOp,
)
from visc.errors import CompileError
from visc.passes.graph.canonicalize import VisionCanonicalizePass
from visc.passes.graph.const_eval import VisionConstEvalPass
from visc.passes.graph.fold_batch_norm import FoldBatchNormPass
from visc.passes.graph.fuse_elementwise import FuseElementwisePass
from visc.weights import WeightStore, use_weights

GRAPH = (VisionCanonicalizePass(), VisionConstEvalPass(), FoldBatchNormPass(), VisionConstEvalPass(),
         FuseElementwisePass(), VisionCanonicalizePass())

CONV = 'strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>'


def parse(text: str) -> ModuleOp:
    module = Parser(make_context(), text).parse_module()
    module.verify()
    return module


def main_of(module: ModuleOp) -> func.FuncOp:
    return next(op for op in module.ops if isinstance(op, func.FuncOp))


def ops_of(module: ModuleOp, kind: type) -> list:
    return [op for op in module.walk() if isinstance(op, kind)]


def random_store(module: ModuleOp, seed: int = 0) -> WeightStore:
    """Seeded non-zero values for every weight; names starting with 'var' or 'g' stay positive."""
    rng = np.random.default_rng(seed)
    store = WeightStore()
    for w in ops_of(module, WeightOp):
        shape = tuple(w.result.type.get_shape())
        if w.weight_name.startswith(("var", "g")):
            store[w.weight_name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            store[w.weight_name] = rng.standard_normal(shape).astype(np.float32)
    return store


def random_inputs(module: ModuleOp, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    main = main_of(module)
    return [rng.standard_normal(tuple(a.type.get_shape())).astype(np.float32)  # type: ignore[attr-defined]
            for a in main.body.block.args]


def check_preserved(text: str, *passes, seed: int = 0, with_store: bool = True) -> ModuleOp:
    """Applies `passes` and checks every output against the reference before them."""
    from visc.reference import evaluate

    module = parse(text)
    store = random_store(module, seed)
    inputs = random_inputs(module, seed + 1)
    want = evaluate(module, store, inputs)
    ctx = make_context()
    with use_weights(store if with_store else None):
        for p in passes:
            p.apply(ctx, module)
            module.verify()
    got = evaluate(module, store, inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert np.abs(w).max() > 0
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
    return module


# --------------------------------------------------------------------------- canonicalize

VIEWS = """
func.func @main(%x: tensor<1x6x4xf32>) -> (tensor<4x6xf32>, tensor<1x6x4xf32>) {
  %w = vision.weight @w : tensor<4x6xf32>
  %w2 = vision.weight @w : tensor<4x6xf32>
  %r1 = vision.reshape ins(%x : tensor<1x6x4xf32>) -> tensor<6x4xf32>
  %r2 = vision.reshape ins(%r1 : tensor<6x4xf32>) -> tensor<24xf32>
  %r3 = vision.reshape ins(%r2 : tensor<24xf32>) -> tensor<6x4xf32>
  %t1 = vision.transpose ins(%r3 : tensor<6x4xf32>) {perm = array<i64: 1, 0>} -> tensor<4x6xf32>
  %t2 = vision.transpose ins(%t1 : tensor<4x6xf32>) {perm = array<i64: 1, 0>} -> tensor<6x4xf32>
  %t3 = vision.transpose ins(%t2 : tensor<6x4xf32>) {perm = array<i64: 1, 0>} -> tensor<4x6xf32>
  %id = vision.map ins(%t3 : tensor<4x6xf32>) body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  } -> tensor<4x6xf32>
  %m = vision.map ins(%id, %w2, %id : tensor<4x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>) body {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %k1 = arith.constant 3.0 : f32
    %k2 = arith.constant 3.0 : f32
    %p = arith.mulf %a, %k1 : f32
    %q = arith.mulf %c, %k2 : f32
    %s = arith.addf %p, %b : f32
    %t = arith.subf %s, %q : f32
    %u = arith.addf %t, %a : f32
    vision.yield %u : f32
  } -> %OUT
  %c = vision.concat ins(%x : tensor<1x6x4xf32>) {axis = 1 : i64} -> tensor<1x6x4xf32>
  %s = vision.slice ins(%c : tensor<1x6x4xf32>) {starts = array<i64: 0, 0, 0>, steps = array<i64: 1, 1, 1>} -> tensor<1x6x4xf32>
  %dead = vision.softmax ins(%s : tensor<1x6x4xf32>) {axis = 2 : i64} -> tensor<1x6x4xf32>
  func.return %m, %s : tensor<4x6xf32>, tensor<1x6x4xf32>
}
""".replace("%OUT", "tensor<4x6xf32>")


def test_canonicalize_preserves_values_and_simplifies() -> None:
    module = check_preserved(VIEWS, VisionCanonicalizePass())
    names = [op.name for op in module.walk() if isinstance(op, VisionOp | WeightOp)]
    # one reshape (the chain), one transpose (three compose to one), one map, one weight
    assert names == ["vision.weight", "vision.reshape", "vision.transpose", "vision.map"]
    (m,) = ops_of(module, MapOp)
    assert len(m.ins) == 2
    assert sum(1 for op in m.body.block.ops if op.name == "arith.constant") == 1


def test_canonicalize_without_store_is_the_same() -> None:
    check_preserved(VIEWS, VisionCanonicalizePass(), with_store=False)


# --------------------------------------------------------------------------- const-eval

WEIGHT_MATH = """
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = vision.weight @a : tensor<3x2xf32>
  %b = vision.weight @b : tensor<3xf32>
  %t = vision.transpose ins(%a : tensor<3x2xf32>) {perm = array<i64: 1, 0>, onnx_node = "tr"} -> tensor<2x3xf32>
  %e = vision.map ins(%t, %b : tensor<2x3xf32>, tensor<3xf32>) {onnx_node = "scale"} body {
  ^bb0(%p: f32, %q: f32):
    %s = math.exp %q : f32
    %m = arith.mulf %p, %s : f32
    vision.yield %m : f32
  } -> tensor<2x3xf32>
  %y = vision.map ins(%x, %e : tensor<2x3xf32>, tensor<2x3xf32>) {onnx_node = "use"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}
"""


def test_const_eval_folds_weight_chains() -> None:
    module = parse(WEIGHT_MATH)
    store = random_store(module)
    a, b = store["a"].copy(), store["b"].copy()
    with use_weights(store):
        VisionConstEvalPass().apply(make_context(), module)
    module.verify()
    weights = ops_of(module, WeightOp)
    assert len(weights) == 1 and len(ops_of(module, MapOp)) == 1
    folded = store[weights[0].weight_name]
    assert weights[0].weight_name.startswith("scale")
    np.testing.assert_allclose(folded, a.T * np.exp(b), rtol=1e-6)


def test_const_eval_preserves_values() -> None:
    check_preserved(WEIGHT_MATH, VisionConstEvalPass())


def test_const_eval_without_store_changes_nothing() -> None:
    module = parse(WEIGHT_MATH)
    before = str(module)
    VisionConstEvalPass().apply(make_context(), module)
    assert str(module) == before


def test_const_eval_reports_missing_weights() -> None:
    module = parse(WEIGHT_MATH)
    with use_weights(WeightStore({"a": np.ones((3, 2), np.float32)})), \
            pytest.raises(CompileError, match="weight 'b'.*'scale'"):
        VisionConstEvalPass().apply(make_context(), module)


# --------------------------------------------------------------------------- batch-norm


def bn_text(producer: str, x_type: str, y_type: str, weights: str, channels: int, eps: float = 1e-3) -> str:
    c = f"tensor<{channels}xf32>"
    return f"""
func.func @main(%x: {x_type}) -> {y_type} {{
  {weights}
  %g = vision.weight @g : {c}
  %beta = vision.weight @beta : {c}
  %mean = vision.weight @mean : {c}
  %var = vision.weight @var : {c}
  {producer}
  %n = vision.batch_norm ins(%y, %g, %beta, %mean, %var : {y_type}, {c}, {c}, {c}, {c}) {{epsilon = {eps:e} : f64, onnx_node = "bn"}} -> {y_type}
  func.return %n : {y_type}
}}"""


BN_CASES = {
    "conv_bias": bn_text(
        f'%y = vision.conv2d ins(%x, %w, %b : tensor<1x3x5x5xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) {{{CONV}, groups = 1 : i64, onnx_node = "conv"}} -> tensor<1x4x5x5xf32>',
        "tensor<1x3x5x5xf32>", "tensor<1x4x5x5xf32>",
        "%w = vision.weight @w : tensor<4x3x3x3xf32>\n  %b = vision.weight @b : tensor<4xf32>", 4),
    "conv_groups": bn_text(
        f'%y = vision.conv2d ins(%x, %w : tensor<1x4x5x5xf32>, tensor<6x2x3x3xf32>) {{{CONV}, groups = 2 : i64}} -> tensor<1x6x5x5xf32>',
        "tensor<1x4x5x5xf32>", "tensor<1x6x5x5xf32>", "%w = vision.weight @w : tensor<6x2x3x3xf32>", 6),
    "deconv": bn_text(
        '%y = vision.conv2d_transpose ins(%x, %w, %b : tensor<1x4x3x3xf32>, tensor<4x3x2x2xf32>, tensor<3xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, output_padding = array<i64: 0, 0>} -> tensor<1x3x6x6xf32>',
        "tensor<1x4x3x3xf32>", "tensor<1x3x6x6xf32>",
        "%w = vision.weight @w : tensor<4x3x2x2xf32>\n  %b = vision.weight @b : tensor<3xf32>", 3),
    "deconv_groups": bn_text(
        '%y = vision.conv2d_transpose ins(%x, %w : tensor<1x4x3x3xf32>, tensor<4x3x2x2xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 2 : i64, output_padding = array<i64: 0, 0>} -> tensor<1x6x6x6xf32>',
        "tensor<1x4x3x3xf32>", "tensor<1x6x6x6xf32>", "%w = vision.weight @w : tensor<4x3x2x2xf32>", 6),
    "gemm": bn_text(
        '%y = vision.matmul ins(%x, %w, %b : tensor<2x5xf32>, tensor<5x3xf32>, tensor<3xf32>) {alpha = 1.5 : f32, beta = 0.5 : f32} -> tensor<2x3xf32>',
        "tensor<2x5xf32>", "tensor<2x3xf32>",
        "%w = vision.weight @w : tensor<5x3xf32>\n  %b = vision.weight @b : tensor<3xf32>", 3),
    "gemm_tb": bn_text(
        '%y = vision.matmul ins(%x, %w : tensor<2x5xf32>, tensor<3x5xf32>) {transpose_b = 1 : i64} -> tensor<2x3xf32>',
        "tensor<2x5xf32>", "tensor<2x3xf32>", "%w = vision.weight @w : tensor<3x5xf32>", 3),
    "plain_4d": bn_text("%y = vision.reshape ins(%x : tensor<1x60xf32>) -> tensor<1x3x4x5xf32>",
                        "tensor<1x60xf32>", "tensor<1x3x4x5xf32>", "", 3),
    "plain_2d": bn_text("%y = vision.reshape ins(%x : tensor<2x3xf32>) -> tensor<2x3xf32>",
                        "tensor<2x3xf32>", "tensor<2x3xf32>", "", 3),
}


@pytest.mark.parametrize("case", sorted(BN_CASES))
def test_fold_batch_norm_preserves_values(case: str) -> None:
    module = check_preserved(BN_CASES[case], FoldBatchNormPass(), VisionConstEvalPass(), VisionCanonicalizePass())
    assert not ops_of(module, BatchNormOp)
    if case.startswith(("conv", "deconv", "gemm")):
        # everything on weights was folded: the producer is the only op left
        assert not ops_of(module, MapOp)
        (prod,) = [op for op in module.walk() if isinstance(op, Conv2dOp | Conv2dTransposeOp | MatmulOp)]
        assert all(isinstance(v.owner, WeightOp) for v in prod.ins[1:])
        assert "bn" in prod.attributes["onnx_node"].data  # type: ignore[attr-defined]
    else:
        assert len(ops_of(module, MapOp)) == 1


def test_fold_batch_norm_without_store_keeps_weight_maps() -> None:
    module = check_preserved(BN_CASES["conv_bias"], FoldBatchNormPass(), with_store=False)
    assert not ops_of(module, BatchNormOp)
    assert len(ops_of(module, MapOp)) == 3  # s, w * s, the new bias


# --------------------------------------------------------------------------- fusion

RESNET_BLOCK = f"""
func.func @main(%x: tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32> {{
  %w1 = vision.weight @w1 : tensor<4x4x3x3xf32>
  %w2 = vision.weight @w2 : tensor<4x4x3x3xf32>
  %g = vision.weight @g : tensor<4xf32>
  %beta = vision.weight @beta : tensor<4xf32>
  %mean = vision.weight @mean : tensor<4xf32>
  %var = vision.weight @var : tensor<4xf32>
  %bias = vision.weight @bias : tensor<1x4x1x1xf32>
  %a = vision.conv2d ins(%x, %w1 : tensor<1x4x5x5xf32>, tensor<4x4x3x3xf32>) {{{CONV}, groups = 1 : i64, onnx_node = "c1", onnx_op = "Conv"}} -> tensor<1x4x5x5xf32>
  %an = vision.batch_norm ins(%a, %g, %beta, %mean, %var : tensor<1x4x5x5xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {{epsilon = 1.0e-05 : f64, onnx_node = "bn1", onnx_op = "BatchNormalization"}} -> tensor<1x4x5x5xf32>
  %ar = vision.map ins(%an : tensor<1x4x5x5xf32>) {{onnx_node = "relu1", onnx_op = "Relu"}} body {{
  ^bb0(%p: f32):
    %z = arith.constant 0.0 : f32
    %m = arith.maximumf %p, %z : f32
    vision.yield %m : f32
  }} -> tensor<1x4x5x5xf32>
  %b = vision.conv2d ins(%ar, %w2 : tensor<1x4x5x5xf32>, tensor<4x4x3x3xf32>) {{{CONV}, groups = 1 : i64, onnx_node = "c2", onnx_op = "Conv"}} -> tensor<1x4x5x5xf32>
  %bb = vision.map ins(%b, %bias : tensor<1x4x5x5xf32>, tensor<1x4x1x1xf32>) {{onnx_node = "bias2", onnx_op = "Add"}} body {{
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  }} -> tensor<1x4x5x5xf32>
  %skip = vision.map ins(%x : tensor<1x4x5x5xf32>) {{onnx_node = "scale", onnx_op = "Mul"}} body {{
  ^bb0(%p: f32):
    %h = arith.constant 0.5 : f32
    %m = arith.mulf %p, %h : f32
    vision.yield %m : f32
  }} -> tensor<1x4x5x5xf32>
  %sum = vision.map ins(%bb, %skip : tensor<1x4x5x5xf32>, tensor<1x4x5x5xf32>) {{onnx_node = "add", onnx_op = "Add"}} body {{
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  }} -> tensor<1x4x5x5xf32>
  %y = vision.map ins(%sum : tensor<1x4x5x5xf32>) {{onnx_node = "relu2", onnx_op = "Relu"}} body {{
  ^bb0(%p: f32):
    %z = arith.constant 0.0 : f32
    %m = arith.maximumf %p, %z : f32
    vision.yield %m : f32
  }} -> tensor<1x4x5x5xf32>
  func.return %y : tensor<1x4x5x5xf32>
}}
"""


def test_graph_pipeline_fuses_a_resnet_block() -> None:
    module = check_preserved(RESNET_BLOCK, *GRAPH)
    kernels = [op for op in module.walk() if isinstance(op, VisionOp)]
    assert [op.name for op in kernels] == ["vision.conv2d", "vision.conv2d"]
    first, second = kernels
    assert first.attributes["onnx_node"].data == "c1+bn1+relu1"  # type: ignore[attr-defined]
    assert second.attributes["onnx_node"].data == "c2+bias2+scale+add+relu2"  # type: ignore[attr-defined]
    assert len(second.ins) == 3 and list(second.fuse) == [main_of(module).body.block.args[0]]


def test_fuse_elementwise_alone_preserves_values() -> None:
    check_preserved(RESNET_BLOCK, FuseElementwisePass(), with_store=False)


def test_fuse_maps_and_matmul_epilogue() -> None:
    text = """
    func.func @main(%x: tensor<3x4xf32>, %r: tensor<3x5xf32>) -> tensor<3x5xf32> {
      %w = vision.weight @w : tensor<4x5xf32>
      %c = vision.weight @c : tensor<5xf32>
      %y = vision.matmul ins(%x, %w : tensor<3x4xf32>, tensor<4x5xf32>) {onnx_node = "mm"} -> tensor<3x5xf32>
      %rr = vision.map ins(%r, %r : tensor<3x5xf32>, tensor<3x5xf32>) body {
      ^bb0(%p: f32, %q: f32):
        %s = arith.mulf %p, %q : f32
        vision.yield %s : f32
      } -> tensor<3x5xf32>
      %a = vision.map ins(%y, %c : tensor<3x5xf32>, tensor<5xf32>) body {
      ^bb0(%p: f32, %q: f32):
        %s = arith.addf %q, %p : f32
        vision.yield %s : f32
      } -> tensor<3x5xf32>
      %t = vision.map ins(%a, %rr : tensor<3x5xf32>, tensor<3x5xf32>) body {
      ^bb0(%p: f32, %q: f32):
        %s = arith.subf %p, %q : f32
        %e = math.tanh %s : f32
        vision.yield %e : f32
      } -> tensor<3x5xf32>
      func.return %t : tensor<3x5xf32>
    }"""
    module = check_preserved(text, *GRAPH)
    (mm,) = ops_of(module, MatmulOp)
    assert len(mm.ins) == 3 and len(mm.fuse) == 1 and mm.body.blocks
    assert [op.name for op in main_of(module).body.block.ops if isinstance(op, VisionOp)] == ["vision.matmul"]


# --------------------------------------------------------------------------- via ONNX


def test_imported_conv_bn_relu_add_matches_onnxruntime() -> None:
    """A small ONNX graph through the importer and every graph pass, against onnxruntime."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from visc.frontend.onnx import import_model
    from visc.reference import evaluate

    rng = np.random.default_rng(11)

    def init(name: str, shape: tuple[int, ...], positive: bool = False) -> onnx.TensorProto:
        arr = rng.uniform(0.5, 1.5, shape) if positive else rng.standard_normal(shape)
        return numpy_helper.from_array(arr.astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["n"], name="bn", epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "x"], ["s"], name="add"),
        helper.make_node("Sigmoid", ["s"], ["y"], name="sig"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 5, 5])],
        [init("w", (3, 3, 3, 3)), init("b", (3,)), init("g", (3,), True), init("beta", (3,)),
         init("mean", (3,)), init("var", (3,), True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    imported = import_model(model)
    ctx = make_context()
    with use_weights(imported.weights):
        for p in GRAPH:
            p.apply(ctx, imported.module)
    imported.module.verify()
    kernels = [op for op in imported.module.walk() if isinstance(op, VisionOp)]
    assert [op.name for op in kernels] == ["vision.conv2d"]
    (got,) = evaluate(imported.module, imported.weights, [x])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
