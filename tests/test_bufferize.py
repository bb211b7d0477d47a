"""Bufferization and the static memory plan: plan properties (no two simultaneously live
buffers share bytes, peak <= naive, alignment) and numerics of the bufferized module run
through the arena by the buffer interpreter, against the tensor module's reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from visc.dialects import make_context
from visc.dialects.vision import BatchNormOp, BufferOp, VisionOp
from visc.errors import CompileError
from visc.passes.graph.bufferize import VisionBufferizePass
from visc.passes.graph.canonicalize import VisionCanonicalizePass
from visc.passes.graph.const_eval import VisionConstEvalPass
from visc.passes.graph.fold_batch_norm import FoldBatchNormPass
from visc.passes.graph.fuse_elementwise import FuseElementwisePass
from visc.passes.graph.memory_plan import (
    ARENA_ALIGN,
    Lifetime,
    arena_stats,
    buffer_lifetimes,
    plan_conflicts,
    plan_memory,
)
from visc.weights import WeightStore, use_weights

# --------------------------------------------------------------------------- plan_memory


lifetimes_st = st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 30), st.integers(0, 10)).map(
        lambda t: Lifetime(size=t[0], start=t[1], end=t[1] + t[2])),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(lifetimes_st, st.sampled_from([1, 4, 64, 1024]))
def test_plan_memory_is_sound(lifetimes: list[Lifetime], align: int) -> None:
    plan = plan_memory(lifetimes, align)
    assert len(plan.offsets) == len(lifetimes)
    assert all(o % align == 0 for o in plan.offsets)
    assert plan.peak <= plan.naive
    assert plan.peak == max((o + lt.size for o, lt in zip(plan.offsets, lifetimes, strict=True)), default=0)
    for i, (a, oa) in enumerate(zip(lifetimes, plan.offsets, strict=True)):
        for b, ob in zip(lifetimes[i + 1:], plan.offsets[i + 1:], strict=True):
            if a.overlaps(b) and a.size and b.size:
                assert oa + a.size <= ob or ob + b.size <= oa, (a, oa, b, ob)


def test_plan_memory_reuses_dead_buffers() -> None:
    chain = [Lifetime(4096, i, i + 1) for i in range(6)]  # each read only by the next op
    plan = plan_memory(chain, ARENA_ALIGN)
    assert plan.peak == 2 * 4096
    assert plan.naive == 6 * 4096
    assert plan_memory([], 64).peak == 0


def test_plan_memory_rejects_bad_alignment() -> None:
    with pytest.raises(ValueError):
        plan_memory([Lifetime(1, 0, 0)], 0)


# --------------------------------------------------------------------------- helpers


def parse(text: str) -> ModuleOp:
    from xdsl.parser import Parser

    module = Parser(make_context(), text).parse_module()
    module.verify()
    return module


def apply(module: ModuleOp, *passes) -> ModuleOp:
    ctx = make_context()
    for p in passes:
        p.apply(ctx, module)
    module.verify()
    return module


def entry(module: ModuleOp) -> func.FuncOp:
    return next(op for op in module.ops if isinstance(op, func.FuncOp))


def check_plan(module: ModuleOp, align: int = ARENA_ALIGN) -> tuple[int, int]:
    main = entry(module)
    assert plan_conflicts(main) == []
    buffers = [op for op in main.walk() if isinstance(op, BufferOp)]
    assert all(b.byte_offset % align == 0 for b in buffers)
    peak, naive = arena_stats(module)
    assert peak <= naive
    for op in main.walk():
        if isinstance(op, VisionOp) and not op.IS_VIEW:
            assert op.outs and not op.res
    return peak, naive


CONV_ATTRS = ('strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, '
              'dilations = array<i64: 1, 1>, groups = 1 : i64')

RESIDUAL = f"""
func.func @main(%x: tensor<1x3x6x6xf32>) -> (tensor<1x4x6x6xf32>, tensor<1x144xf32>)
    attributes {{vision.input_names = ["x"], vision.output_names = ["y", "flat"],
                vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32", "float32"]}} {{
  %w1 = vision.weight @w1 : tensor<4x3x3x3xf32>
  %w2 = vision.weight @w2 : tensor<4x4x3x3xf32>
  %w3 = vision.weight @w3 : tensor<4x3x3x3xf32>
  %g = vision.weight @g : tensor<4xf32>
  %beta = vision.weight @beta : tensor<4xf32>
  %mean = vision.weight @mean : tensor<4xf32>
  %var = vision.weight @var : tensor<4xf32>
  %a = vision.conv2d ins(%x, %w1 : tensor<1x3x6x6xf32>, tensor<4x3x3x3xf32>) {{{CONV_ATTRS}, onnx_node = "c1"}} -> tensor<1x4x6x6xf32>
  %an = vision.batch_norm ins(%a, %g, %beta, %mean, %var : tensor<1x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {{epsilon = 1.0e-05 : f64, onnx_node = "bn1"}} -> tensor<1x4x6x6xf32>
  %ar = vision.map ins(%an : tensor<1x4x6x6xf32>) {{onnx_node = "r1"}} body {{
  ^bb0(%p: f32):
    %z = arith.constant 0.0 : f32
    %m = arith.maximumf %p, %z : f32
    vision.yield %m : f32
  }} -> tensor<1x4x6x6xf32>
  %b = vision.conv2d ins(%ar, %w2 : tensor<1x4x6x6xf32>, tensor<4x4x3x3xf32>) {{{CONV_ATTRS}, onnx_node = "c2"}} -> tensor<1x4x6x6xf32>
  %s = vision.conv2d ins(%x, %w3 : tensor<1x3x6x6xf32>, tensor<4x3x3x3xf32>) {{{CONV_ATTRS}, onnx_node = "short"}} -> tensor<1x4x6x6xf32>
  %sn = vision.batch_norm ins(%s, %g, %mean, %beta, %var : tensor<1x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {{epsilon = 1.0e-03 : f64, onnx_node = "bn2"}} -> tensor<1x4x6x6xf32>
  %sum = vision.map ins(%b, %sn : tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) {{onnx_node = "add"}} body {{
  ^bb0(%p: f32, %q: f32):
    %t = arith.addf %p, %q : f32
    vision.yield %t : f32
  }} -> tensor<1x4x6x6xf32>
  %y = vision.map ins(%sum : tensor<1x4x6x6xf32>) {{onnx_node = "r2"}} body {{
  ^bb0(%p: f32):
    %z = arith.constant 0.0 : f32
    %m = arith.maximumf %p, %z : f32
    vision.yield %m : f32
  }} -> tensor<1x4x6x6xf32>
  %flat = vision.reshape ins(%y : tensor<1x4x6x6xf32>) {{onnx_node = "flatten"}} -> tensor<1x144xf32>
  func.return %y, %flat : tensor<1x4x6x6xf32>, tensor<1x144xf32>
}}
"""


def residual_weights(seed: int = 0) -> WeightStore:
    rng = np.random.default_rng(seed)
    return WeightStore({
        "w1": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "w2": rng.standard_normal((4, 4, 3, 3)).astype(np.float32),
        "w3": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "g": rng.uniform(0.5, 1.5, 4).astype(np.float32),
        "beta": rng.standard_normal(4).astype(np.float32),
        "mean": rng.standard_normal(4).astype(np.float32),
        "var": rng.uniform(0.5, 1.5, 4).astype(np.float32),
    })


# --------------------------------------------------------------------------- IR shape


def test_bufferize_residual_plan() -> None:
    module = apply(parse(RESIDUAL), VisionBufferizePass())
    main = entry(module)
    assert [str(a.type) for a in main.body.block.args] == [
        "memref<1x3x6x6xf32>", "memref<1x4x6x6xf32>", "memref<1x144xf32>"]
    assert not main.function_type.outputs.data
    peak, naive = check_plan(module)
    assert peak < naive
    lifetimes = buffer_lifetimes(list(main.body.block.ops))
    assert len(lifetimes) == 7  # a, an, ar, b, s, sn, sum; y is written into out0 directly
    # the flattened output is copied from out0 (a view of an output cannot be written directly)
    copies = [op for op in main.walk() if op.attributes.get("onnx_op") is not None
              and op.attributes["onnx_op"].data == "Identity"]  # type: ignore[attr-defined]
    assert len(copies) == 1


def test_bufferize_alignment_option() -> None:
    module = apply(parse(RESIDUAL), VisionBufferizePass(align=64))
    peak64, _ = check_plan(module, 64)
    module = apply(parse(RESIDUAL), VisionBufferizePass())
    peak1k, _ = check_plan(module)
    assert peak64 <= peak1k


def test_bufferize_is_idempotent() -> None:
    module = apply(parse(RESIDUAL), VisionBufferizePass())
    text = str(module)
    apply(module, VisionBufferizePass())
    assert str(module) == text


def test_bufferize_round_trips_through_text() -> None:
    module = apply(parse(RESIDUAL), VisionBufferizePass())
    assert str(parse(str(module))) == str(module)


def test_bufferize_rejects_tensor_ops_it_does_not_know() -> None:
    text = """
    func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
      %c = arith.constant dense<1.0> : tensor<2xf32>
      func.return %c : tensor<2xf32>
    }"""
    with pytest.raises(CompileError, match="cannot bufferize arith.constant"):
        apply(parse(text), VisionBufferizePass())


# --------------------------------------------------------------------------- numerics


def run_both(module_text: str, store: WeightStore, inputs: list[np.ndarray], *passes) -> None:
    """Reference on the tensor module vs the interpreter on the bufferized one."""
    from visc.buffer_interpreter import run_bufferized
    from visc.reference import evaluate

    module = parse(module_text)
    want = evaluate(module, store, inputs)
    with use_weights(store):
        apply(module, *passes, VisionBufferizePass())
    check_plan(module)
    got = run_bufferized(module, store, inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_interpreter_matches_reference_unoptimized() -> None:
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 6)).astype(np.float32)
    run_both(RESIDUAL, residual_weights(), [x])


def test_interpreter_matches_reference_after_graph_passes() -> None:
    x = np.random.default_rng(2).standard_normal((1, 3, 6, 6)).astype(np.float32)
    run_both(RESIDUAL, residual_weights(), [x], VisionCanonicalizePass(), VisionConstEvalPass(),
             FoldBatchNormPass(), VisionConstEvalPass(), FuseElementwisePass(), VisionCanonicalizePass())


def test_interpreter_outputs_that_alias() -> None:
    text = """
    func.func @main(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<3xf32>, tensor<6xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
      %w = vision.weight @w : tensor<3xf32>
      %a = vision.map ins(%x, %w : tensor<2x3xf32>, tensor<3xf32>) body {
      ^bb0(%p: f32, %q: f32):
        %s = arith.mulf %p, %q : f32
        vision.yield %s : f32
      } -> tensor<2x3xf32>
      %r = vision.reshape ins(%a : tensor<2x3xf32>) -> tensor<6xf32>
      %c = vision.map ins(%a : tensor<2x3xf32>) body {
      ^bb0(%p: f32):
        %s = arith.negf %p : f32
        vision.yield %s : f32
      } -> tensor<2x3xf32>
      func.return %x, %w, %r, %c, %c : tensor<2x3xf32>, tensor<3xf32>, tensor<6xf32>, tensor<2x3xf32>, tensor<2x3xf32>
    }"""
    rng = np.random.default_rng(3)
    store = WeightStore({"w": rng.standard_normal(3).astype(np.float32)})
    run_both(text, store, [rng.standard_normal((2, 3)).astype(np.float32)])


def test_interpreter_detects_a_bad_plan() -> None:
    """Forcing two live buffers onto the same bytes corrupts the result: the check has teeth."""
    from visc.buffer_interpreter import run_bufferized

    x = np.random.default_rng(4).standard_normal((1, 3, 6, 6)).astype(np.float32)
    store = residual_weights()
    good = apply(parse(RESIDUAL), VisionBufferizePass())
    want = run_bufferized(good, store, [x])
    bad = apply(parse(RESIDUAL), VisionBufferizePass())
    from xdsl.dialects.builtin import IntegerAttr, i64

    for b in entry(bad).walk():
        if isinstance(b, BufferOp):
            b.properties["offset"] = IntegerAttr(0, i64)
    assert plan_conflicts(entry(bad))
    got = run_bufferized(bad, store, [x])
    assert not all(np.allclose(g, w) for g, w in zip(got, want, strict=True))


# --------------------------------------------------------------------------- models


def _without_final_softmax(model):
    """The model's logits: a final Softmax of random-weight models saturates to one-hot,
    which would hide any numeric difference."""
    import onnx

    last = model.graph.node[-1]
    if last.op_type != "Softmax" or last.output[0] != model.graph.output[0].name:
        return model
    info = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    model.graph.node.remove(last)
    model.graph.output.remove(model.graph.output[0])
    model.graph.output.append(info[last.input[0]])
    return model


def _light_model_check(name: str) -> tuple[int, int]:
    from visc.buffer_interpreter import run_bufferized
    from visc.frontend.onnx import import_model
    from visc.reference import evaluate
    from visc.tools.model_zoo import load_light_model

    imported = import_model(_without_final_softmax(load_light_model(name, seed=5)))
    module, store = imported.module, imported.weights
    main = entry(module)
    rng = np.random.default_rng(6)
    inputs = [rng.standard_normal(tuple(a.type.get_shape())).astype(np.float32)  # type: ignore[attr-defined]
              for a in main.body.block.args]
    want = evaluate(module, store, inputs)
    with use_weights(store):
        apply(module, VisionCanonicalizePass(), VisionConstEvalPass(), FoldBatchNormPass(),
              VisionConstEvalPass(), FuseElementwisePass(), VisionCanonicalizePass(),
              VisionBufferizePass())
    assert not [op for op in module.walk() if isinstance(op, BatchNormOp)]
    peak, naive = check_plan(module)
    got = run_bufferized(module, store, inputs)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        scale = float(np.abs(w).max())
        assert scale > 0
        assert float(np.abs(g - w).max()) / scale <= 1e-4
    return peak, naive


@pytest.mark.slow
def test_squeezenet_through_the_arena() -> None:
    _light_model_check("squeezenet")


@pytest.mark.slow
def test_resnet50_through_the_arena() -> None:
    peak, naive = _light_model_check("resnet50")
    assert peak < naive / 4


def test_interpreter_with_bool_and_int_buffers() -> None:
    """i1 takes one byte per element and signless integers keep their width in the arena."""
    text = """
    func.func @main(%x: tensor<3x5xf32>) -> tensor<3x5xf32> {
      %m = vision.map ins(%x : tensor<3x5xf32>) body {
      ^bb0(%p: f32):
        %z = arith.constant 0.0 : f32
        %c = arith.cmpf ogt, %p, %z : f32
        vision.yield %c : i1
      } -> tensor<3x5xi1>
      %q = vision.map ins(%x : tensor<3x5xf32>) body {
      ^bb0(%p: f32):
        %k = arith.constant 10.0 : f32
        %s = arith.mulf %p, %k : f32
        %i = arith.fptosi %s : f32 to i8
        vision.yield %i : i8
      } -> tensor<3x5xi8>
      %y = vision.map ins(%m, %q, %x : tensor<3x5xi1>, tensor<3x5xi8>, tensor<3x5xf32>) body {
      ^bb0(%c: i1, %i: i8, %p: f32):
        %f = arith.sitofp %i : i8 to f32
        %r = arith.select %c, %p, %f : f32
        vision.yield %r : f32
      } -> tensor<3x5xf32>
      func.return %y : tensor<3x5xf32>
    }"""
    x = np.random.default_rng(8).standard_normal((3, 5)).astype(np.float32)
    run_both(text, WeightStore(), [x])
    module = apply(parse(text), VisionBufferizePass(align=1))
    sizes = sorted(lt.size for lt in buffer_lifetimes(list(entry(module).body.block.ops)).values())
    assert sizes == [15, 15]
