"""lower-vision-to-loops and vision-default-schedule: every op lowered from hand-written
stage-3 IR, run on OpenCL (PoCL) through `run_bufferized`, compared with onnxruntime or numpy
on seeded random data; schedule legality errors; property tests over conv and pool shapes."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from visc.backends.opencl import run_bufferized
from visc.dialects import make_context
from visc.dialects.vision import conv_out_size
from visc.errors import CompileError
from visc.passes.lowering.default_schedule import DefaultSchedulePass, default_schedule
from visc.passes.lowering.pack_weights import VisionPackWeightsPass
from visc.passes.lowering.vision_to_loops import LowerVisionToLoopsPass

RNG = np.random.default_rng(20240601)

_ELT = {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64", "int32": "i32",
        "int8": "i8", "bool": "i1"}


# ---------------------------------------------------------------------------- IR builders


class F(tuple):
    """A float array attribute (array<f64: ...>)."""


def mref(shape: Sequence[int], dtype: Any = "float32") -> str:
    dims = "".join(f"{d}x" for d in shape)
    return f"memref<{dims}{_ELT[np.dtype(dtype).name]}>"


def attr_text(v: Any) -> str:
    if isinstance(v, bool | int | np.integer):
        return f"{int(v)} : i64"
    if isinstance(v, float):
        return f"{v:.17e} : f64"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, F):
        return f"array<f64: {', '.join(f'{x:.17e}' for x in v)}>"
    if isinstance(v, dict):
        return "#vision.schedule<{" + ", ".join(f"{k} = {x} : i64" for k, x in v.items()) + "}>"
    return f"array<i64: {', '.join(str(int(x)) for x in v)}>"


def stage3(kind: str, inputs: dict[str, np.ndarray], weights: dict[str, np.ndarray],
           outputs: dict[str, tuple[Sequence[int], Any]], attrs: dict[str, Any], ins: Sequence[str],
           fuse: Sequence[str] = (), body: str | None = None) -> str:
    """One bufferized vision op in @main: graph inputs, weights, outputs as destinations."""
    types = {n: mref(a.shape, a.dtype) for n, a in {**inputs, **weights}.items()}
    types.update({n: mref(s, d) for n, (s, d) in outputs.items()})
    args = ", ".join(f"%{n}: {types[n]}" for n in [*inputs, *outputs])
    lines = [f"  %{n} = vision.weight @{n} : {types[n]}" for n in weights]

    def group(word: str, names: Sequence[str]) -> str:
        if not names:
            return ""
        return f" {word}({', '.join('%' + n for n in names)} : {', '.join(types[n] for n in names)})"

    attrs = {"onnx_node": f"{kind}_test", **attrs}
    attr_str = ", ".join(f"{k} = {attr_text(v)}" for k, v in attrs.items())
    op = f"  vision.{kind}{group('ins', ins)}{group('fuse', fuse)}{group('outs', list(outputs))} {{{attr_str}}}"
    if body:
        op += f" body {{\n{body}\n  }}"
    lines.append(op)
    fattrs = f"vision.num_inputs = {len(inputs)} : i64, vision.arena_size = 0 : i64"
    return f"func.func @main({args}) attributes {{{fattrs}}} {{\n" + "\n".join(lines) + "\n  func.return\n}\n"


def run(kind: str, inputs: dict[str, np.ndarray], outputs: dict[str, tuple[Sequence[int], Any]],
        attrs: dict[str, Any], ins: Sequence[str], weights: dict[str, np.ndarray] | None = None,
        fuse: Sequence[str] = (), body: str | None = None) -> list[np.ndarray]:
    weights = weights or {}
    text = stage3(kind, inputs, weights, outputs, attrs, ins, fuse, body)
    return run_bufferized(text, weights, list(inputs.values()))


def parse(text: str) -> ModuleOp:
    return Parser(make_context(), text).parse_module()


def ort_run(op_type: str, inputs: Sequence[np.ndarray | None], attrs: dict[str, Any] | None = None,
            opset: int = 19, n_out: int = 1) -> list[np.ndarray]:
    """One ONNX node on onnxruntime; None inputs are omitted optional inputs."""
    names = [f"i{k}" if a is not None else "" for k, a in enumerate(inputs)]
    node = helper.make_node(op_type, names, [f"o{k}" for k in range(n_out)], **(attrs or {}))
    inits = [numpy_helper.from_array(a, n) for n, a in zip(names, inputs, strict=True) if a is not None]
    elem = helper.np_dtype_to_tensor_dtype(next(a for a in inputs if a is not None).dtype)
    outs = [helper.make_tensor_value_info(f"o{k}", elem, None) for k in range(n_out)]
    graph = helper.make_graph([node], "g", [], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(None, {})


def randn(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------- conv2d


def conv_case(x_shape: Sequence[int], o: int, k: Sequence[int], strides=(1, 1), pads=(0, 0, 0, 0),
              dilations=(1, 1), groups: int = 1, bias: bool = True, schedule: dict[str, int] | None = None,
              rtol: float = 1e-4) -> None:
    x = randn(*x_shape)
    w = randn(o, x_shape[1] // groups, *k)
    b = randn(o) if bias else None
    (want,) = ort_run("Conv", [x, w, b], {"strides": strides, "pads": pads, "dilations": dilations,
                                           "group": groups})
    attrs: dict[str, Any] = {"strides": strides, "pads": pads, "dilations": dilations, "groups": groups}
    if schedule is not None:
        attrs["schedule"] = schedule
    wts = {"w": w, **({"b": b} if bias else {})}
    (got,) = run("conv2d", {"x": x}, {"y": (want.shape, np.float32)}, attrs,
                 ["x", "w", "b"] if bias else ["x", "w"], wts)
    close(got, want, rtol=rtol, atol=1e-4)


@pytest.mark.parametrize("schedule", [
    {"wg": 64, "tile_oc": 4, "tile_ow": 4, "unroll_k": 4},
    {"wg": 32, "tile_oc": 8, "tile_ow": 3, "unroll_win": 0},
    {"wg": 7, "tile_oc": 1, "tile_ow": 1},
    {"wg": 16, "tile_oc": 2, "tile_ow": 1, "vec": 4},  # vectors: ragged last group, padded edges
    {"wg": 8, "tile_oc": 4, "tile_ow": 2, "vec": 3, "unroll_k": 0},
    {"wg": 8, "tile_oc": 8, "tile_ow": 1, "vec": 8},
    None,  # the default schedule
])
def test_conv2d_padded_3x3_schedules(schedule: dict[str, int] | None) -> None:
    conv_case((2, 5, 9, 10), 8, (3, 3), pads=(1, 1, 1, 1), schedule=schedule)


@pytest.mark.parametrize("case", [
    dict(x_shape=(1, 6, 11, 9), o=6, k=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), groups=6),  # depthwise
    dict(x_shape=(1, 4, 8, 8), o=6, k=(3, 2), strides=(1, 2), pads=(2, 0, 1, 3), dilations=(2, 1), groups=2),
    dict(x_shape=(1, 3, 13, 13), o=4, k=(7, 7), strides=(2, 2), pads=(3, 3, 3, 3), bias=False),
    dict(x_shape=(3, 16, 5, 5), o=12, k=(1, 1)),
    dict(x_shape=(2, 16, 5, 7), o=12, k=(1, 1), schedule={"wg": 8, "tile_oc": 4, "tile_ow": 2, "vec": 8, "flat": 1}),
    dict(x_shape=(1, 8, 3, 3), o=4, k=(1, 1), schedule={"wg": 8, "tile_oc": 2, "flat": 1}),
    dict(x_shape=(1, 2, 4, 4), o=3, k=(5, 5), pads=(2, 2, 2, 2), dilations=(1, 1)),
    # strided column vectors: s whole-vector loads whose every s-th lane is picked (interior
    # groups), masked scalar lanes at the padded edges and past the row's end
    dict(x_shape=(1, 3, 9, 40), o=4, k=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
         schedule={"wg": 8, "tile_oc": 2, "tile_ow": 1, "vec": 8}),
    dict(x_shape=(1, 2, 7, 50), o=4, k=(3, 3), strides=(3, 3), pads=(1, 0, 1, 2),
         schedule={"wg": 8, "tile_oc": 4, "tile_ow": 2, "vec": 4}),
])
def test_conv2d_shapes(case: dict[str, Any]) -> None:
    conv_case(**case)


@pytest.mark.parametrize("case", [
    # packed weights (conv_packed.py): vectors of output channels, ragged and shifted column tiles
    dict(x_shape=(2, 5, 9, 10), o=16, k=(3, 3), pads=(1, 1, 1, 1),
         schedule={"wg": 8, "pack": 8, "tile_oc": 16, "tile_ow": 3}),
    dict(x_shape=(1, 8, 7, 11), o=16, k=(3, 2), strides=(2, 2), pads=(2, 0, 1, 3), dilations=(2, 1), groups=2,
         schedule={"wg": 4, "pack": 4, "tile_oc": 8, "tile_ow": 4, "unroll_k": 2, "unroll_win": 0}),
    dict(x_shape=(2, 16, 5, 7), o=16, k=(1, 1), schedule={"wg": 8, "pack": 8, "tile_oc": 8, "tile_ow": 6, "flat": 1}),
    dict(x_shape=(1, 3, 13, 13), o=16, k=(7, 7), strides=(2, 2), pads=(3, 3, 3, 3), bias=False,
         schedule={"wg": 2, "pack": 16, "tile_oc": 16, "tile_ow": 7}),
    dict(x_shape=(1, 4, 3, 3), o=8, k=(3, 3), pads=(1, 1, 1, 1), schedule={"wg": 1, "pack": 8, "tile_oc": 8, "tile_ow": 3}),
    # first, middle and (shifted) last column tiles over the padding, dilated
    dict(x_shape=(1, 6, 5, 17), o=8, k=(3, 3), pads=(2, 2, 2, 2), dilations=(2, 2),
         schedule={"wg": 4, "pack": 8, "tile_oc": 8, "tile_ow": 4}),
    dict(x_shape=(2, 4, 4, 9), o=16, k=(3, 5), pads=(1, 2, 1, 1), schedule={"wg": 4, "pack": 4, "tile_oc": 8, "tile_ow": 5}),
])
def test_conv2d_packed_weights(case: dict[str, Any]) -> None:
    conv_case(**case)


def test_conv2d_pack_is_checked() -> None:
    with pytest.raises(CompileError, match="pack=8 must divide the 4 output channels"):
        conv_case((1, 4, 5, 5), 4, (3, 3), schedule={"wg": 8, "pack": 8, "tile_oc": 8})
    with pytest.raises(CompileError, match="vec must be 1"):
        conv_case((1, 4, 5, 5), 8, (3, 3), schedule={"wg": 8, "pack": 8, "tile_oc": 8, "vec": 4})


@pytest.mark.parametrize("width,schedule", [
    (7, {"wg": 4, "pack": 8, "tile_oc": 8, "tile_ow": 3}),  # packed: channel vectors, gathered residual
    (7, {"wg": 4, "pack": 4, "tile_oc": 8, "tile_ow": 5, "flat": 1}),
    (7, {"wg": 16, "tile_oc": 2, "tile_ow": 3}),
    (7, {"wg": 16, "tile_oc": 4, "vec": 8, "flat": 1}),  # a 1x1 conv over flattened rows
    (8, {"wg": 16, "tile_oc": 2, "tile_ow": 2, "vec": 4}),  # vector epilogue
    (7, {"wg": 16, "tile_oc": 4, "tile_ow": 2, "vec": 4}),  # a ragged vector: lane by lane
])
def test_conv2d_epilogue_with_fused_residual_and_broadcast(width: int, schedule: dict[str, int]) -> None:
    k = 1 if schedule.get("flat") else 3
    x, w, b = randn(1, 4, 6, width), randn(8, 4, k, k), randn(8)
    skip, scale = randn(1, 8, 6, width), randn(8, 1, 1)
    body = """  ^bb0(%acc: f32, %s: f32, %m: f32):
    %t = arith.mulf %acc, %m : f32
    %u = arith.addf %t, %s : f32
    %z = arith.constant 0.000000e+00 : f32
    %r = arith.maximumf %u, %z : f32
    vision.yield %r : f32"""
    (got,) = run("conv2d", {"x": x, "skip": skip}, {"y": ((1, 8, 6, width), np.float32)},
                 {"strides": (1, 1), "pads": (k // 2,) * 4, "dilations": (1, 1), "groups": 1,
                  "schedule": schedule},
                 ["x", "w", "b"], {"w": w, "b": b, "scale": scale}, fuse=["skip", "scale"], body=body)
    (conv,) = ort_run("Conv", [x, w, b], {"pads": [k // 2] * 4})
    close(got, np.maximum(conv * scale + skip, 0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("schedule", [{"wg": 8, "tile_oc": 2, "vec": 4}, {"wg": 8, "tile_oc": 2, "tile_ow": 2},
                                      {"wg": 2, "pack": 4, "tile_oc": 4, "tile_ow": 4}])
def test_conv2d_epilogue_with_compare_and_select(schedule: dict[str, int]) -> None:
    """A body that is not plain arithmetic (leaky relu via cmpf/select) runs lane by lane."""
    x, w = randn(1, 3, 5, 7), randn(4, 3, 3, 3)
    body = """  ^bb0(%acc: f32):
    %z = arith.constant 0.000000e+00 : f32
    %s = arith.constant 1.000000e-01 : f32
    %c = arith.cmpf ogt, %acc, %z : f32
    %m = arith.mulf %acc, %s : f32
    %r = arith.select %c, %acc, %m : f32
    vision.yield %r : f32"""
    (got,) = run("conv2d", {"x": x}, {"y": ((1, 4, 5, 7), np.float32)},
                 {"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "groups": 1, "schedule": schedule},
                 ["x", "w"], {"w": w}, body=body)
    (conv,) = ort_run("Conv", [x, w], {"pads": [1, 1, 1, 1]})
    close(got, np.where(conv > 0, conv, np.float32(0.1) * conv), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("schedule", [{"wg": 8, "tile_oc": 2, "tile_ow": 2}, {"wg": 8, "tile_oc": 2, "vec": 4}])
def test_conv2d_f64(schedule: dict[str, int]) -> None:
    x, w = randn(1, 3, 6, 6, dtype=np.float64), randn(4, 3, 3, 3, dtype=np.float64)
    (got,) = run("conv2d", {"x": x}, {"y": ((1, 4, 4, 4), np.float64)},
                 {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "groups": 1,
                  "schedule": schedule}, ["x", "w"], {"w": w})
    want = np.zeros((1, 4, 4, 4))
    for kh in range(3):
        for kw in range(3):
            want += np.einsum("nchw,oc->nohw", x[:, :, kh:kh + 4, kw:kw + 4], w[:, :, kh, kw])
    close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [
    dict(x=(1, 4, 5, 5), w=(4, 3, 3, 3), strides=(2, 2), pads=(1, 1, 1, 1), output_padding=(1, 1)),
    dict(x=(2, 4, 3, 4), w=(4, 2, 2, 3), strides=(3, 2), pads=(0, 1, 0, 0), groups=2, dilations=(1, 2)),
])
def test_conv2d_transpose(case: dict[str, Any]) -> None:
    x, w, b = randn(*case["x"]), randn(*case["w"]), randn(case["w"][1] * case.get("groups", 1))
    attrs = {"strides": case["strides"], "pads": case["pads"], "dilations": case.get("dilations", (1, 1)),
             "group": case.get("groups", 1), "output_padding": case.get("output_padding", (0, 0))}
    (want,) = ort_run("ConvTranspose", [x, w, b], attrs)
    vattrs = {"strides": attrs["strides"], "pads": attrs["pads"], "dilations": attrs["dilations"],
              "groups": attrs["group"], "output_padding": attrs["output_padding"]}
    (got,) = run("conv2d_transpose", {"x": x}, {"y": (want.shape, np.float32)}, vattrs, ["x", "w", "b"],
                 {"w": w, "b": b})
    close(got, want, rtol=1e-4, atol=1e-4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_conv2d_property(data: st.DataObject) -> None:
    groups = data.draw(st.sampled_from([1, 1, 2, 3]), "groups")
    cg = data.draw(st.integers(1, 3), "cg")
    og = data.draw(st.integers(1, 4), "og")
    kh, kw = data.draw(st.integers(1, 4), "kh"), data.draw(st.integers(1, 4), "kw")
    sh, sw = data.draw(st.integers(1, 3), "sh"), data.draw(st.integers(1, 3), "sw")
    dh, dw = data.draw(st.integers(1, 2), "dh"), data.draw(st.integers(1, 2), "dw")
    pads = [data.draw(st.integers(0, k - 1), f"p{i}") for i, k in enumerate([kh, kw, kh, kw])]
    h = data.draw(st.integers((kh - 1) * dh + 1, 12), "h")
    w = data.draw(st.integers((kw - 1) * dw + 1, 12), "w")
    ow = (w + pads[1] + pads[3] - (kw - 1) * dw - 1) // sw + 1
    toc = data.draw(st.sampled_from([d for d in (1, 2, 4) if og % d == 0]), "tile_oc")
    vec = data.draw(st.sampled_from([v for v in (1, 1, 2, 4, 8) if v <= ow]), "vec")
    tow = data.draw(st.integers(1, min(-(-ow // vec), 4)), "tile_ow")
    conv_case((data.draw(st.integers(1, 2), "n"), cg * groups, h, w), og * groups, (kh, kw), (sh, sw), pads,
              (dh, dw), groups, bias=data.draw(st.booleans(), "bias"),
              schedule={"wg": data.draw(st.sampled_from([1, 16, 64]), "wg"), "tile_oc": toc, "tile_ow": tow,
                        "vec": vec})


# ---------------------------------------------------------------------------- matmul


@pytest.mark.parametrize("case", [
    dict(a=(3, 7), b=(7, 5), sched={"wg": 8, "tile_m": 2, "tile_n": 2}),
    dict(a=(2, 1, 4, 6), b=(3, 6, 5), sched={"wg": 16, "tile_m": 3, "tile_n": 4, "unroll_k": 0}),
    dict(a=(6, 4), b=(9, 6), ta=1, tb=1, c=(9,), alpha=0.5, beta=-2.0, sched={"wg": 4, "tile_n": 3}),
    dict(a=(5, 8), b=(10, 8), tb=1, c=(5, 1), sched=None),
    dict(a=(3, 9), b=(9, 21), sched={"wg": 4, "tile_m": 2, "tile_n": 2, "vec": 4}),  # ragged vectors
    dict(a=(2, 3, 9), b=(2, 9, 16), c=(16,), sched={"wg": 4, "tile_n": 1, "vec": 8}),
    dict(a=(4, 19), b=(7, 19), tb=1, sched={"wg": 4, "tile_m": 2, "tile_n": 3, "vec": 8}),  # vector k + tail
    dict(a=(19, 4), b=(7, 19), ta=1, tb=1, alpha=2.0, sched={"wg": 4, "tile_n": 2, "vec": 4}),
])
def test_matmul(case: dict[str, Any]) -> None:
    a, b = randn(*case["a"]), randn(*case["b"])
    ta, tb = case.get("ta", 0), case.get("tb", 0)
    alpha, beta = case.get("alpha", 1.0), case.get("beta", 1.0)
    want = alpha * np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b)
    weights = {"b": b}
    ins = ["a", "b"]
    if "c" in case:
        weights["c"] = c = randn(*case["c"])
        want = want + beta * c
        ins.append("c")
    attrs: dict[str, Any] = {"transpose_a": ta, "transpose_b": tb, "alpha": alpha, "beta": beta}
    if case["sched"] is not None:
        attrs["schedule"] = case["sched"]
    (got,) = run("matmul", {"a": a}, {"y": (want.shape, np.float32)}, attrs, ins, weights)
    close(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,schedule", [(10, {"wg": 4, "tile_m": 2, "tile_n": 4}), (10, {"wg": 4, "tile_m": 3, "vec": 4}),
                                        (12, {"wg": 4, "tile_m": 2, "vec": 4})])
def test_matmul_epilogue(n: int, schedule: dict[str, int]) -> None:
    a, b, bias = randn(4, 6), randn(6, n), randn(n)
    body = """  ^bb0(%acc: f32, %v: f32):
    %s = arith.addf %acc, %v : f32
    %e = math.tanh %s : f32
    vision.yield %e : f32"""
    (got,) = run("matmul", {"a": a}, {"y": ((4, n), np.float32)},
                 {"schedule": schedule}, ["a", "b"], {"b": b, "bias": bias},
                 fuse=["bias"], body=body)
    close(got, np.tanh(a @ b + bias), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- pooling


def pool_case(op_type: str, x_shape: Sequence[int], kernel: Sequence[int], strides=None, pads=None,
              dilations=None, ceil_mode: int = 0, count_include_pad: int = 0, p: int = 2,
              schedule: dict[str, int] | None = None) -> None:
    r = len(kernel)
    strides = strides or (1,) * r
    pads = pads or (0,) * (2 * r)
    dilations = dilations or (1,) * r
    x = randn(*x_shape)
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": strides, "pads": pads}
    if op_type != "LpPool":
        attrs["ceil_mode"] = ceil_mode
        attrs["dilations"] = dilations
    if op_type == "AveragePool":
        attrs["count_include_pad"] = count_include_pad
    if op_type == "LpPool":
        attrs["p"] = p
    (want,) = ort_run(op_type, [x], attrs)
    kind = {"MaxPool": "max", "AveragePool": "avg", "LpPool": "lp"}[op_type]
    vattrs: dict[str, Any] = {"kind": kind, "kernel": kernel, "strides": strides, "pads": pads,
                              "dilations": dilations, "ceil_mode": ceil_mode,
                              "count_include_pad": count_include_pad, "p": p}
    if schedule:
        vattrs["schedule"] = schedule
    (got,) = run("pool2d", {"x": x}, {"y": (want.shape, np.float32)}, vattrs, ["x"])
    close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [
    dict(op_type="MaxPool", x_shape=(1, 3, 9, 9), kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1)),
    dict(op_type="MaxPool", x_shape=(2, 2, 8, 7), kernel=(2, 3), strides=(2, 2), ceil_mode=1,
         dilations=(2, 1)),
    dict(op_type="AveragePool", x_shape=(1, 2, 7, 7), kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1)),
    dict(op_type="AveragePool", x_shape=(1, 2, 7, 7), kernel=(3, 3), strides=(2, 2), pads=(1, 0, 0, 1),
         count_include_pad=1),
    dict(op_type="AveragePool", x_shape=(1, 2, 6, 6), kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
         ceil_mode=1, count_include_pad=1),
    dict(op_type="AveragePool", x_shape=(1, 3, 8), kernel=(3,), strides=(2,), pads=(1, 1), ceil_mode=1),
    dict(op_type="MaxPool", x_shape=(1, 2, 4, 5, 6), kernel=(2, 2, 3), strides=(1, 2, 2), pads=(0, 1, 1, 1, 0, 1)),
    dict(op_type="LpPool", x_shape=(1, 2, 6, 6), kernel=(3, 3), strides=(1, 1), p=2),
    dict(op_type="LpPool", x_shape=(1, 2, 6, 6), kernel=(2, 2), strides=(2, 2), pads=(1, 1, 1, 1), p=3),
    dict(op_type="MaxPool", x_shape=(1, 4, 6, 6), kernel=(3, 3), schedule={"wg": 3, "unroll_win": 2}),
    # vectors of output columns: strided gathers, a shifted last group, masked borders
    dict(op_type="MaxPool", x_shape=(1, 3, 11, 11), kernel=(3, 3), strides=(2, 2), ceil_mode=1,
         schedule={"wg": 4, "vec": 4, "unroll_win": 0}),
    dict(op_type="AveragePool", x_shape=(1, 2, 9, 13), kernel=(3, 3), pads=(1, 1, 1, 1),
         schedule={"wg": 4, "vec": 8}),
    dict(op_type="AveragePool", x_shape=(1, 2, 7, 9), kernel=(2, 3), strides=(2, 2), pads=(1, 1, 1, 1),
         count_include_pad=1, ceil_mode=1, schedule={"wg": 4, "vec": 3}),
    dict(op_type="LpPool", x_shape=(1, 2, 6, 9), kernel=(2, 2), pads=(1, 1, 1, 1), p=3,
         schedule={"wg": 4, "vec": 4}),
    dict(op_type="MaxPool", x_shape=(1, 2, 9), kernel=(3,), schedule={"wg": 2, "vec": 2}),
    # strided last dim, interior threads: window rows reduced on the span, then lanes picked
    dict(op_type="MaxPool", x_shape=(1, 3, 7, 23), kernel=(3, 3), strides=(2, 2),
         schedule={"wg": 4, "vec": 4}),
    dict(op_type="MaxPool", x_shape=(1, 2, 9, 41), kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
         schedule={"wg": 8, "vec": 8, "unroll_win": 0}),
    dict(op_type="MaxPool", x_shape=(1, 2, 8, 30), kernel=(2, 3), strides=(2, 2), dilations=(1, 2),
         schedule={"wg": 4, "vec": 8}),
    dict(op_type="MaxPool", x_shape=(1, 2, 5, 26), kernel=(3, 3), strides=(3, 3), schedule={"wg": 4, "vec": 4}),
    dict(op_type="MaxPool", x_shape=(1, 2, 5, 26), kernel=(2, 2), strides=(3, 3), schedule={"wg": 4, "vec": 4}),
    dict(op_type="MaxPool", x_shape=(1, 2, 3, 5, 21), kernel=(2, 2, 3), strides=(1, 2, 2),
         schedule={"wg": 4, "vec": 4}),
    dict(op_type="MaxPool", x_shape=(1, 2, 19), kernel=(3,), strides=(2,), schedule={"wg": 2, "vec": 3}),
    dict(op_type="AveragePool", x_shape=(1, 2, 7, 23), kernel=(3, 3), strides=(2, 2), pads=(0, 1, 0, 1),
         schedule={"wg": 4, "vec": 4}),
    dict(op_type="LpPool", x_shape=(1, 2, 6, 21), kernel=(2, 3), strides=(1, 2), p=3,
         schedule={"wg": 4, "vec": 4}),
    dict(op_type="LpPool", x_shape=(1, 2, 6, 21), kernel=(2, 2), strides=(2, 2), p=2,
         schedule={"wg": 4, "vec": 2}),
])
def test_pool(case: dict[str, Any]) -> None:
    pool_case(**case)


@pytest.mark.parametrize("vec", [1, 4, 8])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1)])
def test_max_pool_skips_nan(vec: int, pads: tuple[int, ...]) -> None:
    """Max pooling skips NaN taps as onnxruntime does (IEEE maxNum), in interior and border
    windows, scalar and vector schedules alike; a window whose every tap is NaN stays NaN.
    onnxruntime gives the numbers (its vector max keeps a NaN only as a window's last tap, so
    the NaNs are read as -inf there), and a max pool of the not-NaN mask finds the all-NaN
    windows."""
    x = randn(1, 2, 9, 37)
    for at in [(0, 0, 0, 0), (0, 1, 4, 17), (0, 1, 4, 18), (0, 0, 8, 36), (0, 1, 2, 9)]:
        x[at] = np.nan
    x[0, 0, 0:3, 9:13] = np.nan  # a whole window, with and without padding
    attrs = {"kernel_shape": (3, 3), "strides": (2, 2), "pads": pads}
    (numbers,) = ort_run("MaxPool", [np.nan_to_num(x, nan=-np.inf)], attrs)
    (some,) = ort_run("MaxPool", [(~np.isnan(x)).astype(np.float32)], attrs)
    want = np.where(some > 0, numbers, np.float32(np.nan))
    (got,) = run("pool2d", {"x": x}, {"y": (want.shape, np.float32)},
                 {"kind": "max", "kernel": (3, 3), "strides": (2, 2), "pads": pads, "dilations": (1, 1),
                  "ceil_mode": 0, "count_include_pad": 0, "schedule": {"wg": 8, "vec": vec}}, ["x"])
    assert np.isnan(want).sum() >= 1 and np.isnan(x).sum() >= 13
    np.testing.assert_array_equal(got, want)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_pool_property(data: st.DataObject) -> None:
    op_type = data.draw(st.sampled_from(["MaxPool", "AveragePool"]), "op")
    r = data.draw(st.integers(1, 3), "rank")
    kernel = [data.draw(st.integers(1, 3), f"k{i}") for i in range(r)]
    strides = [data.draw(st.integers(1, 3), f"s{i}") for i in range(r)]
    dil = [data.draw(st.integers(1, 2), f"d{i}") for i in range(r)] if op_type == "MaxPool" else [1] * r
    pads = [data.draw(st.integers(0, kernel[i % r] - 1), f"p{i}") for i in range(2 * r)]
    spatial = [data.draw(st.integers((kernel[i] - 1) * dil[i] + 1, 7), f"n{i}") for i in range(r)]
    vec = data.draw(st.sampled_from([1, 1, 2, 4]), "vec")
    ceil = data.draw(st.integers(0, 1), "ceil")
    cip = data.draw(st.integers(0, 1), "cip") if op_type == "AveragePool" else 0
    out_w = conv_out_size(spatial[-1], kernel[-1], strides[-1], pads[r - 1], pads[2 * r - 1], dil[-1], bool(ceil))
    schedule = {"wg": 8, "vec": vec} if vec <= out_w else None  # vectors must fit the output
    pool_case(op_type, (1, 2, *spatial), kernel, strides, pads, dil, ceil, cip, schedule=schedule)


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_global_pool(kind: str) -> None:
    x = randn(2, 3, 5, 7)
    (got,) = run("global_pool", {"x": x}, {"y": ((2, 3, 1, 1), np.float32)}, {"kind": kind}, ["x"])
    want = x.mean(axis=(2, 3), keepdims=True) if kind == "avg" else x.max(axis=(2, 3), keepdims=True)
    close(got, want)


def test_max_pool_int8() -> None:
    x = RNG.integers(-128, 128, (1, 2, 5, 5)).astype(np.int8)
    (got,) = run("pool2d", {"x": x}, {"y": ((1, 2, 4, 4), np.int8)},
                 {"kind": "max", "kernel": (2, 2), "strides": (1, 1), "pads": (0, 0, 0, 0),
                  "dilations": (1, 1), "ceil_mode": 0, "count_include_pad": 0}, ["x"])
    want = np.max([x[:, :, i:i + 4, j:j + 4] for i in range(2) for j in range(2)], axis=0)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------- normalization


def test_batch_norm() -> None:
    x = randn(2, 3, 4, 5)
    scale, bias, mean = randn(3), randn(3), randn(3)
    var = RNG.uniform(0.5, 2.0, 3).astype(np.float32)
    (want,) = ort_run("BatchNormalization", [x, scale, bias, mean, var], {"epsilon": 1e-3})
    (got,) = run("batch_norm", {"x": x}, {"y": (x.shape, np.float32)}, {"epsilon": 1e-3},
                 ["x", "s", "b", "m", "v"], {"s": scale, "b": bias, "m": mean, "v": var})
    close(got, want)


@pytest.mark.parametrize("size", [3, 4])
def test_lrn(size: int) -> None:
    x = randn(1, 7, 3, 4)
    attrs = {"size": size, "alpha": 2e-2, "beta": 0.75, "bias": 1.5}
    if size % 2:
        (want,) = ort_run("LRN", [x], attrs)
    else:  # onnxruntime rejects even sizes (and onnx's reference loops over the wrong dim)
        sq = np.stack([(x[:, max(0, c - (size - 1) // 2):c + size // 2 + 1] ** 2).sum(1) for c in range(7)], 1)
        want = (x / (1.5 + 2e-2 / size * sq) ** 0.75).astype(np.float32)
    (got,) = run("lrn", {"x": x}, {"y": (x.shape, np.float32)}, attrs, ["x"])
    close(got, want)


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [1, -1, 0])
def test_softmax(op_type: str, axis: int) -> None:
    x = randn(3, 5, 4) * 30  # large logits: needs the max subtraction
    (want,) = ort_run(op_type, [x], {"axis": axis})
    kind = "softmax" if op_type == "Softmax" else "log_softmax"
    (got,) = run(kind, {"x": x}, {"y": (x.shape, np.float32)}, {"axis": axis}, ["x"])
    close(got, want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- reduce


def _reduce_ref(kind: str, x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    f = {
        "sum": lambda: x.sum(axes, keepdims=keep),
        "mean": lambda: x.mean(axes, keepdims=keep),
        "max": lambda: x.max(axes, keepdims=keep),
        "min": lambda: x.min(axes, keepdims=keep),
        "prod": lambda: x.prod(axes, keepdims=keep),
        "sum_square": lambda: (x * x).sum(axes, keepdims=keep),
        "l1": lambda: np.abs(x).sum(axes, keepdims=keep),
        "l2": lambda: np.sqrt((x * x).sum(axes, keepdims=keep)),
        "log_sum": lambda: np.log(x.sum(axes, keepdims=keep)),
        "log_sum_exp": lambda: np.log(np.exp(x.astype(np.float64)).sum(axes, keepdims=keep)),
    }[kind]
    return np.asarray(f()).astype(x.dtype)


@pytest.mark.parametrize("kind", ["sum", "mean", "max", "min", "prod", "sum_square", "l1", "l2",
                                  "log_sum", "log_sum_exp"])
@pytest.mark.parametrize("axes,keep", [((1,), True), ((0, 2), False), ((), False)])
def test_reduce(kind: str, axes: tuple[int, ...], keep: bool) -> None:
    x = RNG.uniform(0.5, 1.5, (2, 3, 4)).astype(np.float32) if kind in ("log_sum", "prod") else randn(2, 3, 4)
    if kind == "log_sum_exp":
        x = x * 40
    full = axes or (0, 1, 2)
    want = _reduce_ref(kind, x, full, keep)
    attrs: dict[str, Any] = {"kind": kind, "schedule": {"wg": 4, "unroll_k": 2}}
    if axes:
        attrs["axes"] = axes
    (got,) = run("reduce", {"x": x}, {"y": (want.shape, np.float32)}, attrs, ["x"])
    close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["max", "min"])
def test_reduce_bool(kind: str) -> None:
    x = RNG.integers(0, 2, (3, 4)).astype(np.bool_)
    x[0] = True
    x[1] = False
    want = x.max(1) if kind == "max" else x.min(1)
    (got,) = run("reduce", {"x": x}, {"y": ((3,), np.bool_)}, {"kind": kind, "axes": (1,)}, ["x"])
    np.testing.assert_array_equal(got, want)


def test_reduce_int_and_negative_axis() -> None:
    x = RNG.integers(-50, 50, (3, 4, 2)).astype(np.int64)
    for kind in ("sum", "max", "min"):
        want = _reduce_ref(kind, x, (1,), False)
        (got,) = run("reduce", {"x": x}, {"y": (want.shape, np.int64)}, {"kind": kind, "axes": (-2,)}, ["x"])
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------- map and data movement


def test_map_broadcast_int_to_bool() -> None:
    a = RNG.integers(-5, 5, (2, 1, 4)).astype(np.int32)
    b = RNG.integers(-5, 5, (3, 1)).astype(np.int32)
    body = """  ^bb0(%p: i32, %q: i32):
    %s = arith.addi %p, %q : i32
    %z = arith.constant 0 : i32
    %c = arith.cmpi sgt, %s, %z : i32
    vision.yield %c : i1"""
    (got,) = run("map", {"a": a, "b": b}, {"y": ((2, 3, 4), np.bool_)}, {}, ["a", "b"], body=body)
    np.testing.assert_array_equal(got, (a + b) > 0)


def test_map_scalar_output_and_zero_inputs() -> None:
    body = """  ^bb0():
    %c = arith.constant 2.500000e+00 : f32
    vision.yield %c : f32"""
    (got,) = run("map", {}, {"y": ((), np.float32)}, {}, [], body=body)
    assert got.shape == () and got == np.float32(2.5)


def test_concat_split() -> None:
    a, b, c = randn(2, 1, 3), randn(2, 4, 3), randn(2, 2, 3)
    (got,) = run("concat", {"a": a, "b": b, "c": c}, {"y": ((2, 7, 3), np.float32)}, {"axis": 1}, ["a", "b", "c"])
    np.testing.assert_array_equal(got, np.concatenate([a, b, c], axis=1))
    x = RNG.integers(0, 100, (5, 4)).astype(np.int64)
    outs = run("split", {"x": x}, {"p": ((5, 1), np.int64), "q": ((5, 3), np.int64)}, {"axis": -1}, ["x"])
    for got_part, want_part in zip(outs, np.split(x, [1], axis=1), strict=True):
        np.testing.assert_array_equal(got_part, want_part)


def test_slice_negative_steps() -> None:
    x = randn(4, 6, 5)
    want = x[3:0:-2, 1:6:2, 4::-1]
    (got,) = run("slice", {"x": x}, {"y": (want.shape, np.float32)},
                 {"starts": (3, 1, 4), "steps": (-2, 2, -1)}, ["x"])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad(mode: str) -> None:
    x = randn(3, 4, 5)
    # begins then ends; a negative pad crops (onnxruntime allows reflect pads up to n - 2)
    pads = (0, 2, 2, 1, -1, 3) if mode == "reflect" else (0, 3, 2, 1, -1, 4)
    (want,) = ort_run("Pad", [x, np.array(pads, np.int64), np.array(0.75, np.float32)], {"mode": mode})
    (got,) = run("pad", {"x": x}, {"y": (want.shape, np.float32)}, {"pads": pads, "mode": mode, "value": 0.75},
                 ["x"])
    np.testing.assert_array_equal(got, want)


def test_pad_large_reflect_and_wrap_match_numpy() -> None:
    x = randn(3, 4)
    for mode, npmode in (("reflect", "reflect"), ("wrap", "wrap")):
        want = np.pad(x, ((5, 2), (0, 9)), mode=npmode)
        (got,) = run("pad", {"x": x}, {"y": (want.shape, np.float32)}, {"pads": (5, 0, 2, 9), "mode": mode}, ["x"])
        np.testing.assert_array_equal(got, want)


def test_transpose() -> None:
    x = randn(2, 3, 4, 5)
    (got,) = run("transpose", {"x": x}, {"y": ((5, 2, 4, 3), np.float32)}, {"perm": (3, 0, 2, 1)}, ["x"])
    np.testing.assert_array_equal(got, x.transpose(3, 0, 2, 1))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_negative_indices(axis: int) -> None:
    data = randn(4, 5, 3)
    n = data.shape[axis]
    idx = RNG.integers(-n, n, (2, 3)).astype(np.int64)
    want = np.take(data, idx, axis=axis)
    (got,) = run("gather", {"data": data}, {"y": (want.shape, np.float32)}, {"axis": axis}, ["data", "idx"],
                 {"idx": idx})
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------- resize


def resize_case(x_shape: Sequence[int], scales: Sequence[float], mode: str, coord: str,
                nearest: str = "round_prefer_floor", roi: Sequence[float] | None = None,
                sizes: Sequence[int] | None = None, cubic_a: float = -0.75, exclude: int = 0,
                extrap: float = 0.0, rtol: float = 1e-5) -> None:
    x = randn(*x_shape)
    roi_arr = np.array(roi if roi is not None else [], np.float32)
    attrs = {"mode": mode, "coordinate_transformation_mode": coord, "nearest_mode": nearest,
             "cubic_coeff_a": cubic_a, "exclude_outside": exclude, "extrapolation_value": extrap}
    if sizes is not None:
        (want,) = ort_run("Resize", [x, roi_arr, None, np.array(sizes, np.int64)], attrs)
        scales = [s / n for s, n in zip(sizes, x_shape, strict=True)]
    else:
        (want,) = ort_run("Resize", [x, roi_arr, np.array(scales, np.float32)], attrs)
    vattrs: dict[str, Any] = {"mode": mode, "coord_mode": coord, "nearest_mode": nearest,
                              "scales": F(float(np.float32(s)) for s in scales), "cubic_coeff_a": cubic_a,
                              "exclude_outside": exclude, "extrapolation_value": extrap}
    if roi is not None:
        vattrs["roi"] = F(roi)
    (got,) = run("resize", {"x": x}, {"y": (want.shape, np.float32)}, vattrs, ["x"])
    close(got, want, rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("nearest", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("coord", ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                   "tf_half_pixel_for_nn"])
def test_resize_nearest(nearest: str, coord: str) -> None:
    resize_case((1, 2, 4, 5), (1.0, 1.0, 2.0, 1.5), "nearest", coord, nearest)


@pytest.mark.parametrize("coord", ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                   "align_corners", "asymmetric"])
def test_resize_linear(coord: str) -> None:
    resize_case((1, 2, 5, 4), (1.0, 1.0, 1.6, 0.75), "linear", coord)


def test_resize_linear_sizes_and_3d() -> None:
    resize_case((2, 3, 4), (), "linear", "half_pixel", sizes=(2, 5, 7))
    resize_case((1, 1, 3, 4, 5), (1.0, 1.0, 2.0, 0.5, 1.4), "linear", "asymmetric")


def test_resize_tf_crop_and_resize() -> None:
    roi = [0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2]
    resize_case((1, 2, 5, 6), (1.0, 1.0, 1.2, 1.5), "linear", "tf_crop_and_resize", roi=roi, extrap=-3.0)
    resize_case((1, 2, 5, 6), (1.0, 1.0, 1.2, 1.5), "nearest", "tf_crop_and_resize", roi=roi, extrap=2.0)


@pytest.mark.parametrize("exclude", [0, 1])
def test_resize_cubic(exclude: int) -> None:
    resize_case((1, 2, 5, 6), (1.0, 1.0, 1.8, 0.7), "cubic", "half_pixel", exclude=exclude, cubic_a=-0.5,
                rtol=1e-4)


# ---------------------------------------------------------------------------- errors and schedules


def _conv_module(schedule: str | None, extra: str = "") -> str:
    sched = f", schedule = {schedule}" if schedule else ""
    return f"""func.func @main(%x: memref<1x4x6x6xf32>, %y: memref<1x6x6x6xf32>) {{
  %w = vision.weight @w : memref<6x4x1x1xf32>
  vision.conv2d ins(%x, %w : memref<1x4x6x6xf32>, memref<6x4x1x1xf32>) outs(%y : memref<1x6x6x6xf32>) {{strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv_a"{sched}}}
  {extra}
  func.return
}}
"""


def _lower(text: str) -> ModuleOp:
    module = parse(text)
    LowerVisionToLoopsPass().apply(make_context(), module)
    return module


@pytest.mark.parametrize("schedule,message", [
    (None, "no schedule attribute"),
    ("#vision.schedule<{wg = 8 : i64, tile_oc = 4 : i64}>", "tile_oc=4 must divide the 6 output channels"),
    ("#vision.schedule<{wg = 8 : i64, tile_ow = 7 : i64}>", "tile_ow=7 is illegal here"),
    ("#vision.schedule<{tile_oc = 2 : i64}>", "no 'wg'"),
    ("#vision.schedule<{wg = 8 : i64, local = 1 : i64}>", "local are not read by its lowering"),
    ("#vision.schedule<{wg = 8 : i64, vec = 5 : i64}>", "vec=5 is illegal"),
    ("#vision.schedule<{wg = 8 : i64, vec = 8 : i64}>", "wider than the output's 6 columns"),
    ("#vision.schedule<{wg = 0 : i64}>", "wg=0 is illegal"),
])
def test_schedule_errors_name_the_node(schedule: str | None, message: str) -> None:
    with pytest.raises(CompileError, match="conv_a") as info:
        _lower(_conv_module(schedule))
    assert message in str(info.value)


def test_all_problems_reported_at_once() -> None:
    extra = ('vision.pool2d ins(%x : memref<1x4x6x6xf32>) outs(%y : memref<1x6x6x6xf32>) '
             '{kind = "avg", kernel = array<i64: 1, 1>, onnx_node = "pool_b"}')
    with pytest.raises(CompileError) as info:
        _lower(_conv_module("#vision.schedule<{wg = 8 : i64, tile_oc = 5 : i64}>", extra))
    assert "conv_a" in str(info.value) and "tile_oc=5" in str(info.value)
    assert "pool_b" in str(info.value) and "no schedule" in str(info.value)


def test_tensor_ops_are_rejected() -> None:
    text = """func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %y = vision.transpose ins(%x : tensor<2x3xf32>) {perm = array<i64: 0, 1>, onnx_node = "t",
       schedule = #vision.schedule<{wg = 8 : i64}>} -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}"""
    with pytest.raises(CompileError, match="not bufferized"):
        _lower(text)


def test_output_is_stage4() -> None:
    """Only top-level scf.parallel kernels with unique names remain; bodies use allowed ops."""
    text = _conv_module("#vision.schedule<{wg = 8 : i64, tile_oc = 3 : i64, tile_ow = 4 : i64}>")
    text = text.replace("%y: memref<1x6x6x6xf32>)", "%y: memref<1x6x6x6xf32>, %z: memref<1x4x6x6xf32>)")
    text = text.replace("  func.return", "  vision.softmax ins(%x : memref<1x4x6x6xf32>) outs(%z : memref<1x4x6x6xf32>) "
                        '{axis = 1 : i64, onnx_node = "conv_a", schedule = #vision.schedule<{wg = 8 : i64}>}\n'
                        "  func.return")
    module = _lower(text)
    module.verify()
    fn = next(iter(module.ops))
    top = [op.name for op in fn.body.block.ops]
    assert top.count("scf.parallel") == 2
    assert set(top) <= {"scf.parallel", "arith.constant", "vision.weight", "func.return"}
    names = [op.attributes["kernel_name"].data for op in fn.body.block.ops if op.name == "scf.parallel"]
    assert names == ["conv2d_conv_a", "softmax_conv_a"]
    allowed = ("arith.", "math.", "scf.for", "scf.if", "scf.yield", "scf.reduce", "memref.load", "memref.store")
    for par in (op for op in fn.body.block.ops if op.name == "scf.parallel"):
        for inner in par.body.walk():
            assert inner.name.startswith(allowed), inner.name
        assert all(v.owner.parent_block() is fn.body.block for v in par.operands)  # bounds outside
        assert all(v.owner.name == "arith.constant" for v in par.operands)


def test_default_schedule_fills_legal_keys() -> None:
    text = _conv_module(None)
    module = parse(text)
    DefaultSchedulePass().apply(make_context(), module)
    conv = next(op for op in module.walk() if op.name == "vision.conv2d")
    sched = conv.attributes["schedule"].as_dict()
    assert set(sched) <= {"wg", "tile_oc", "tile_ow", "vec", "flat", "unroll_k", "unroll_win"}
    assert 6 % sched["tile_oc"] == 0
    LowerVisionToLoopsPass().apply(make_context(), module)  # legal for the lowering


def test_default_schedule_keeps_existing_and_resnet_like_tiles() -> None:
    text = _conv_module("#vision.schedule<{wg = 8 : i64}>")
    module = parse(text)
    DefaultSchedulePass().apply(make_context(), module)
    conv = next(op for op in module.walk() if op.name == "vision.conv2d")
    assert conv.attributes["schedule"].as_dict() == {"wg": 8}
    big = parse(text.replace("1x4x6x6", "1x256x56x56").replace("1x6x6x6", "1x64x56x56")
                .replace("6x4x1x1", "64x256x1x1").replace(', schedule = #vision.schedule<{wg = 8 : i64}>', ""))
    conv = next(op for op in big.walk() if op.name == "vision.conv2d")
    gpu = default_schedule(conv, "gpu")
    assert gpu["tile_oc"] * gpu["tile_ow"] >= 8 and 32 <= gpu["wg"] <= 256 and "vec" not in gpu
    cpu = default_schedule(conv, "cpu")  # packed weights: vectors of output channels
    assert cpu["pack"] == 8 and cpu["tile_oc"] % 8 == 0 and (cpu["tile_oc"] // 8) * cpu["tile_ow"] >= 8
    assert "vec" not in cpu


def test_unknown_target_or_device_type_is_an_error() -> None:
    with pytest.raises(CompileError, match="unknown target"):
        DefaultSchedulePass(target="tpu").apply(make_context(), parse(_conv_module(None)))
    with pytest.raises(CompileError, match="unknown device_type"):
        DefaultSchedulePass(device_type="fpga").apply(make_context(), parse(_conv_module(None)))


@pytest.mark.parametrize("device_type", ["gpu", "cpu"])
def test_default_schedules_run_correctly(device_type: str) -> None:
    """Both device kinds' heuristics give legal, correct kernels on odd shapes."""
    x, w, b = randn(1, 6, 7, 11), randn(12, 3, 3, 3), randn(12)
    text = stage3("conv2d", {"x": x}, {"w": w, "b": b}, {"y": ((1, 12, 7, 11), np.float32)},
                  {"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "groups": 2}, ["x", "w", "b"])
    module = parse(text)
    DefaultSchedulePass(device_type=device_type).apply(make_context(), module)
    (got,) = run_bufferized(module, {"w": w, "b": b}, [x])
    (want,) = ort_run("Conv", [x, w, b], {"pads": [1, 1, 1, 1], "group": 2})
    close(got, want, rtol=1e-4, atol=1e-4)


def _resnet_like_module(blocks: int) -> str:
    """A chain of conv(+residual)(+relu) ops on arena buffers, ResNet-50 sized."""
    lines, c, hw = [], 64, 56
    lines.append(f"  %t0 = vision.buffer offset 0 : memref<1x{c}x{hw}x{hw}xf32>")
    cur = "%x"
    shapes = []
    for i in range(blocks):
        for j, (o, k) in enumerate(((c, 1), (c, 3), (4 * c, 1))):
            ci = c if j else (4 * c if i else c)
            w = f"%w{i}_{j}"
            lines.append(f"  {w} = vision.weight @w{i}_{j} : memref<{o}x{ci}x{k}x{k}xf32>")
            dst = f"%b{i}_{j}"
            lines.append(f"  {dst} = vision.buffer offset {1024 * (3 * i + j + 1)} : memref<1x{o}x{hw}x{hw}xf32>")
            p = k // 2
            lines.append(
                f"  vision.conv2d ins({cur}, {w} : memref<1x{ci}x{hw}x{hw}xf32>, memref<{o}x{ci}x{k}x{k}xf32>) "
                f"outs({dst} : memref<1x{o}x{hw}x{hw}xf32>) {{strides = array<i64: 1, 1>, "
                f"pads = array<i64: {p}, {p}, {p}, {p}>, dilations = array<i64: 1, 1>, groups = 1 : i64, "
                f'onnx_node = "conv{i}_{j}"}} body {{\n  ^bb0(%a: f32):\n    %z = arith.constant 0.000000e+00 : f32\n'
                f"    %m = arith.maximumf %a, %z : f32\n    vision.yield %m : f32\n  }}")
            cur = dst
            shapes.append(ci)
    return (f"func.func @main(%x: memref<1x{c}x{hw}x{hw}xf32>, %y: memref<1x{4 * c}x{hw}x{hw}xf32>) {{\n"
            + "\n".join(lines) + "\n  func.return\n}\n")


def test_lowering_is_fast_enough_for_a_network() -> None:
    """~120 conv ops lower well within the budget (printed, not asserted: no timed assertion)."""
    module = parse(_resnet_like_module(40))
    ctx = make_context()
    start = time.perf_counter()
    DefaultSchedulePass().apply(ctx, module)
    VisionPackWeightsPass().apply(ctx, module)  # the CPU default (PoCL here) packs weights
    LowerVisionToLoopsPass().apply(ctx, module)
    elapsed = time.perf_counter() - start
    kernels = sum(1 for op in module.walk() if op.name == "scf.parallel")
    print(f"lowered 120 convs into {kernels} kernels in {elapsed:.2f} s")
    assert kernels == 120


def test_unused_names_are_readable_c_identifiers() -> None:
    from visc.passes.lowering.loops import c_identifier

    assert c_identifier("resnet/conv1:0+relu") == "resnet_conv1_0_relu"
    assert c_identifier("0abc") == "k_0abc"
    assert c_identifier("") == "k_"
    assert math.isfinite(len(c_identifier("x" * 500))) and len(c_identifier("x" * 500)) <= 64
