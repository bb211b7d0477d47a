"""OpenCL backend on PoCL: hand-written stage-4 modules through map-loops-to-gpu, the C
emitter and OpenCLExecutor, compared with numpy on seeded random data."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from visc.backends.opencl import compile_stage, emit_opencl, run_bufferized
from visc.errors import CompileError, DeviceError, InputShapeError, KernelBuildError
from visc.runtime.devices import get_context, list_devices, select_device
from visc.runtime.opencl import OpenCLExecutor, build_program
from visc.runtime.plan import Plan

RNG = np.random.default_rng(1234)


def parallel(ubs: list[int], ivs: list[str], body: str, name: str, wg: int, attrs: str = "") -> str:
    """A top-level stage-4 loop in generic syntax (xDSL has no custom scf.parallel form)."""
    n = len(ubs)
    lbs = ", ".join(["%c0"] * n)
    upper = ", ".join(f"%c{u}" for u in ubs)
    steps = ", ".join(["%c1"] * n)
    args = ", ".join(f"%{iv}: index" for iv in ivs)
    types = ", ".join(["index"] * 3 * n)
    return (f'"scf.parallel"({lbs}, {upper}, {steps}) <{{operandSegmentSizes = array<i32: {n}, {n}, {n}, 0>}}> ({{\n'
            f"^bb0({args}):\n{body}\n  scf.reduce\n}}) "
            f'{{kernel_name = "{name}", workgroup_size = {wg} : i64{attrs}}} : ({types}) -> ()')


def module(inputs: list[tuple[str, str, str]], outputs: list[tuple[str, str, str]], body: str,
           arena: int = 0) -> str:
    """@main with graph inputs/outputs given as (name, memref type, numpy dtype)."""
    args = ", ".join(f"%{n}: {t}" for n, t, _ in inputs + outputs)
    consts = sorted({int(c) for c in re.findall(r"%c(\d+)\b", body)} | {0, 1})
    const_text = "\n".join(f"  %c{c} = arith.constant {c} : index" for c in consts)
    q = lambda xs: "[" + ", ".join(f'"{x}"' for x in xs) + "]"  # noqa: E731
    attrs = (f"vision.arena_size = {arena} : i64, vision.num_inputs = {len(inputs)} : i64, "
             f"vision.input_names = {q([n for n, _, _ in inputs])}, vision.output_names = {q([n for n, _, _ in outputs])}, "
             f"vision.input_dtypes = {q([d for _, _, d in inputs])}, vision.output_dtypes = {q([d for _, _, d in outputs])}")
    return f"func.func @main({args}) attributes {{{attrs}}} {{\n{const_text}\n{body}\n  func.return\n}}\n"


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------- numerics


def test_elementwise_chain_through_arena_and_weight() -> None:
    body = "\n".join([
        "  %w = vision.weight @bias : memref<5xf32>",
        "  %t0 = vision.buffer offset 0 : memref<3x5xf32>",
        parallel([3, 5], ["i", "j"], """
  %a = memref.load %x[%i, %j] : memref<3x5xf32>
  %b = memref.load %w[%j] : memref<5xf32>
  %s = arith.addf %a, %b : f32
  memref.store %s, %t0[%i, %j] : memref<3x5xf32>""", "add_bias", 4),
        parallel([3, 5], ["i", "j"], """
  %a = memref.load %t0[%i, %j] : memref<3x5xf32>
  %z = arith.constant 0.0 : f32
  %r = arith.maximumf %a, %z : f32
  memref.store %r, %y[%i, %j] : memref<3x5xf32>""", "relu", 5),
    ])
    text = module([("x", "memref<3x5xf32>", "float32")], [("y", "memref<3x5xf32>", "float32")], body, arena=1024)
    x, b = f32(3, 5), f32(5)
    (y,) = run_bufferized(text, {"bias": b}, [x])
    np.testing.assert_allclose(y, np.maximum(x + b, 0), rtol=1e-6)


def test_reduction_with_iter_args_and_unroll() -> None:
    body = parallel([4], ["i"], """
  %init = arith.constant 0.0 : f32
  %sum = scf.for %k = %c0 to %c37 step %c1 iter_args(%acc = %init) -> (f32) {
    %v = memref.load %x[%i, %k] : memref<4x37xf32>
    %e = math.exp %v : f32
    %n = arith.addf %acc, %e : f32
    scf.yield %n : f32
  } {vision.unroll = 4 : i64}
  %l = math.log %sum : f32
  memref.store %l, %y[%i] : memref<4xf32>""", "logsumexp", 64)
    text = module([("x", "memref<4x37xf32>", "float32")], [("y", "memref<4xf32>", "float32")], body)
    x = f32(4, 37)
    plan, source, _ = compile_stage(text)
    assert "#pragma unroll 4" in source
    (y,) = OpenCLExecutor(plan, source, {}).run([x])
    np.testing.assert_allclose(y, np.log(np.exp(x).sum(axis=1)), rtol=1e-5)


def test_swapping_iter_args() -> None:
    """Fibonacci-like swap: yields (b, a + b); needs temporaries in C."""
    body = parallel([6], ["i"], """
  %one = arith.constant 1.0 : f32
  %s = memref.load %x[%i] : memref<6xf32>
  %r:2 = scf.for %k = %c0 to %c5 step %c1 iter_args(%a = %s, %b = %one) -> (f32, f32) {
    %n = arith.addf %a, %b : f32
    scf.yield %b, %n : f32, f32
  }
  memref.store %r#0, %y[%i] : memref<6xf32>""", "fib", 8)
    text = module([("x", "memref<6xf32>", "float32")], [("y", "memref<6xf32>", "float32")], body)
    x = f32(6)
    (y,) = run_bufferized(text, {}, [x])
    a, b = x.copy(), np.ones_like(x)
    for _ in range(5):
        a, b = b, a + b
    np.testing.assert_allclose(y, a, rtol=1e-6)


def test_if_with_results_and_private_alloca() -> None:
    # each thread keeps 3 partial values in a private array, then picks one through scf.if
    body = parallel([7], ["i"], """
  %acc = memref.alloca() : memref<3xf32>
  %v = memref.load %x[%i] : memref<7xf32>
  %two = arith.constant 2.0 : f32
  %half = arith.constant 0.5 : f32
  %d = arith.mulf %v, %two : f32
  %h = arith.mulf %v, %half : f32
  memref.store %v, %acc[%c0] : memref<3xf32>
  memref.store %d, %acc[%c1] : memref<3xf32>
  memref.store %h, %acc[%c2] : memref<3xf32>
  %zero = arith.constant 0.0 : f32
  %pos = arith.cmpf ogt, %v, %zero : f32
  %r = scf.if %pos -> (f32) {
    %a = memref.load %acc[%c1] : memref<3xf32>
    scf.yield %a : f32
  } else {
    %b = memref.load %acc[%c2] : memref<3xf32>
    %c = arith.addf %b, %b : f32
    %s = arith.subf %c, %b : f32
    scf.yield %s : f32
  }
  memref.store %r, %y[%i] : memref<7xf32>""", "pick", 4)
    text = module([("x", "memref<7xf32>", "float32")], [("y", "memref<7xf32>", "float32")], body)
    x = f32(7)
    (y,) = run_bufferized(text, {}, [x])
    np.testing.assert_allclose(y, np.where(x > 0, 2 * x, 0.5 * x), rtol=1e-6)


def test_integer_bool_and_double_types() -> None:
    body = parallel([10], ["i"], """
  %a = memref.load %p[%i] : memref<10xi8>
  %b = memref.load %q[%i] : memref<10xi8>
  %s = arith.addi %a, %b : i8
  memref.store %s, %o8[%i] : memref<10xi8>
  %lt = arith.cmpi ult, %a, %b : i8
  memref.store %lt, %ob[%i] : memref<10xi1>
  %m = memref.load %mask[%i] : memref<10xi1>
  %x = arith.xori %m, %lt : i1
  %ax = arith.extui %a : i8 to i64
  %bx = arith.extsi %b : i8 to i64
  %big = arith.constant 4294967296 : i64
  %prod = arith.muli %ax, %bx : i64
  %sh = arith.addi %prod, %big : i64
  %sel = arith.select %x, %sh, %prod : i64
  memref.store %sel, %o64[%i] : memref<10xi64>
  %d = memref.load %dd[%i] : memref<10xf64>
  %e = math.exp %d : f64
  %fa = arith.uitofp %a : i8 to f64
  %r = arith.addf %e, %fa : f64
  memref.store %r, %of[%i] : memref<10xf64>""", "types", 16)
    ins = [("p", "memref<10xi8>", "uint8"), ("q", "memref<10xi8>", "int8"), ("mask", "memref<10xi1>", "bool"),
           ("dd", "memref<10xf64>", "float64")]
    outs = [("o8", "memref<10xi8>", "int8"), ("ob", "memref<10xi1>", "bool"), ("o64", "memref<10xi64>", "int64"),
            ("of", "memref<10xf64>", "float64")]
    text = module(ins, outs, body)
    p = RNG.integers(0, 256, 10).astype(np.uint8)
    q = RNG.integers(-128, 128, 10).astype(np.int8)
    mask = RNG.integers(0, 2, 10).astype(bool)
    dd = RNG.standard_normal(10)
    plan, source, _ = compile_stage(text)
    assert "cl_khr_fp64" in source and "__global uchar*" in source.replace("const ", "")
    assert [s.dtype for s in plan.inputs] == ["uint8", "int8", "bool", "float64"]
    o8, ob, o64, of = OpenCLExecutor(plan, source, {}).run([p, q, mask, dd])
    np.testing.assert_array_equal(o8, (p.view(np.int8).astype(np.int16) + q).astype(np.int8))
    lt = p < q.view(np.uint8)
    np.testing.assert_array_equal(ob, lt)
    prod = p.astype(np.int64) * q.astype(np.int64)
    np.testing.assert_array_equal(o64, np.where(mask ^ lt, prod + 2**32, prod))
    np.testing.assert_allclose(of, np.exp(dd) + p, rtol=1e-12)


FLOAT_OPS = """
  %a = memref.load %x[%i] : memref<16xf32>
  %b = memref.load %z[%i] : memref<16xf32>
  %mx = arith.maximumf %a, %b : f32
  memref.store %mx, %o[%c0, %i] : memref<24x16xf32>
  %mn = arith.minimumf %a, %b : f32
  memref.store %mn, %o[%c1, %i] : memref<24x16xf32>
  %uno = arith.cmpf uno, %a, %b : f32
  %ueq = arith.cmpf ueq, %a, %b : f32
  %one = arith.cmpf one, %a, %b : f32
  %ult = arith.cmpf ult, %a, %b : f32
  %f1 = arith.uitofp %uno : i1 to f32
  %f2 = arith.uitofp %ueq : i1 to f32
  %f3 = arith.uitofp %one : i1 to f32
  %f4 = arith.uitofp %ult : i1 to f32
  memref.store %f1, %o[%c2, %i] : memref<24x16xf32>
  memref.store %f2, %o[%c3, %i] : memref<24x16xf32>
  memref.store %f3, %o[%c4, %i] : memref<24x16xf32>
  memref.store %f4, %o[%c5, %i] : memref<24x16xf32>
  %t = math.tanh %a : f32
  memref.store %t, %o[%c6, %i] : memref<24x16xf32>
  %e = math.erf %a : f32
  memref.store %e, %o[%c7, %i] : memref<24x16xf32>
  %ab = math.absf %a : f32
  %rs = math.rsqrt %ab : f32
  memref.store %rs, %o[%c8, %i] : memref<24x16xf32>
  %pw = math.powf %ab, %b : f32
  memref.store %pw, %o[%c9, %i] : memref<24x16xf32>
  %s3 = arith.constant 3.0 : f32
  %a3 = arith.mulf %a, %s3 : f32
  %fl = math.floor %a3 : f32
  memref.store %fl, %o[%c10, %i] : memref<24x16xf32>
  %ce = math.ceil %a3 : f32
  memref.store %ce, %o[%c11, %i] : memref<24x16xf32>
  %hf = arith.constant 0.5 : f32
  %ah = arith.addf %fl, %hf : f32
  %ro = math.round %ah : f32
  memref.store %ro, %o[%c12, %i] : memref<24x16xf32>
  %re = math.roundeven %ah : f32
  memref.store %re, %o[%c13, %i] : memref<24x16xf32>
  %fm = math.fma %a, %b, %a3 : f32
  memref.store %fm, %o[%c14, %i] : memref<24x16xf32>
  %sn = math.sin %a : f32
  memref.store %sn, %o[%c15, %i] : memref<24x16xf32>
  %cs = math.cos %a : f32
  memref.store %cs, %o[%c16, %i] : memref<24x16xf32>
  %rf = math.log1p %ab : f32
  memref.store %rf, %o[%c17, %i] : memref<24x16xf32>
  %inf = arith.constant 0x7F800000 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %cl = arith.maximumf %a3, %ninf : f32
  %cl2 = arith.minimumf %cl, %inf : f32
  memref.store %cl2, %o[%c18, %i] : memref<24x16xf32>
  %si = arith.fptosi %a3 : f32 to i32
  %sf = arith.sitofp %si : i32 to f32
  memref.store %sf, %o[%c19, %i] : memref<24x16xf32>
  %ng = arith.negf %a : f32
  %dv = arith.divf %ng, %b : f32
  memref.store %dv, %o[%c20, %i] : memref<24x16xf32>
  %sg = arith.cmpf oge, %a, %b : f32
  %sel = arith.select %sg, %a, %b : f32
  memref.store %sel, %o[%c21, %i] : memref<24x16xf32>
  %ex = arith.extf %a : f32 to f64
  %ex2 = arith.mulf %ex, %ex : f64
  %tr = arith.truncf %ex2 : f64 to f32
  memref.store %tr, %o[%c22, %i] : memref<24x16xf32>
  %ui = arith.fptoui %ab : f32 to i32
  %mu = arith.maxui %ui, %c3i : i32
  %du = arith.divui %mu, %c2i : i32
  %uf = arith.uitofp %du : i32 to f32
  memref.store %uf, %o[%c23, %i] : memref<24x16xf32>"""


def test_float_semantics_nan_inf_and_math() -> None:
    body = FLOAT_OPS.replace("%c3i", "%k3").replace("%c2i", "%k2")
    body = "  %k3 = arith.constant 3 : i32\n  %k2 = arith.constant 2 : i32\n" + parallel([16], ["i"], body, "floats", 8)
    text = module([("x", "memref<16xf32>", "float32"), ("z", "memref<16xf32>", "float32")],
                  [("o", "memref<24x16xf32>", "float32")], body)
    x, z = f32(16) * 2, f32(16)
    x[0], z[1], x[2], z[2] = np.nan, np.nan, 1.5, 1.5
    x[3], z[3] = -0.5, 0.25
    (o,) = run_bufferized(text, {}, [x, z])
    ab = np.abs(x)
    x3 = x * 3
    with np.errstate(all="ignore"):
        want = [
            np.maximum(x, z), np.minimum(x, z),
            np.isnan(x) | np.isnan(z), ~((x < z) | (x > z)), (x < z) | (x > z), ~(x >= z),
            np.tanh(x), np.array([__import__("math").erf(v) for v in x.astype(np.float64)], np.float32),
            1 / np.sqrt(ab), ab ** z, np.floor(x3), np.ceil(x3),
            np.where(np.floor(x3) + 0.5 >= 0, np.floor(np.floor(x3) + 1.0), np.ceil(np.floor(x3))),
            np.rint(np.floor(x3) + 0.5), x * z + x3, np.sin(x), np.cos(x), np.log1p(ab), x3,
            np.trunc(x3), -x / z, np.where(x >= z, x, z), (x.astype(np.float64) ** 2).astype(np.float32),
            np.floor(np.maximum(np.nan_to_num(ab, nan=0).astype(np.uint32), 3) / 2),
        ]
    for row, expected in enumerate(want):
        got, exp = o[row], np.asarray(expected, dtype=np.float32)
        ok = ~np.isnan(x) & ~np.isnan(z) if row in (19, 23) else np.ones(16, bool)
        np.testing.assert_allclose(got[ok], exp[ok], rtol=2e-5, atol=1e-6, err_msg=f"row {row}")


def test_vector_load_store() -> None:
    body = parallel([2, 3], ["i", "j"], """
  %four = arith.constant 4 : index
  %k = arith.muli %j, %four : index
  %a = vector.load %x[%i, %k] : memref<2x12xf32>, vector<4xf32>
  %b = vector.load %w[%k] : memref<12xf32>, vector<4xf32>
  %two = arith.constant dense<2.0> : vector<4xf32>
  %p = arith.mulf %a, %two : vector<4xf32>
  %s = vector.fma %p, %b, %a : vector<4xf32>
  %m = arith.maximumf %s, %b : vector<4xf32>
  vector.store %m, %y[%i, %k] : memref<2x12xf32>, vector<4xf32>
  %l = vector.extract %m[3] : f32 from vector<4xf32>
  %r = vector.reduction <add>, %m : vector<4xf32> into f32
  %t = arith.addf %r, %l : f32
  memref.store %t, %z[%i, %j] : memref<2x3xf32>""", "vec", 2)
    text = module([("x", "memref<2x12xf32>", "float32")],
                  [("y", "memref<2x12xf32>", "float32"), ("z", "memref<2x3xf32>", "float32")],
                  "  %w = vision.weight @w : memref<12xf32>\n" + body)
    x, w = f32(2, 12), f32(12)
    plan, source, _ = compile_stage(text)
    assert "vload4(0, " in source and "vstore4(" in source
    y, z = OpenCLExecutor(plan, source, {"w": w}).run([x])
    m = np.maximum((x * 2) * w + x, w)
    np.testing.assert_allclose(y, m, rtol=1e-5)
    np.testing.assert_allclose(z, m.reshape(2, 3, 4).sum(-1) + m.reshape(2, 3, 4)[..., 3], rtol=1e-5)


def test_nested_block_thread_loops_with_local_memory() -> None:
    """One work-group per row: threads stage the row in local memory, then a tree sum."""
    inner_load = """
    %v = memref.load %x[%r, %t] : memref<5x16xf32>
    memref.store %v, %tile[%t] : memref<16xf32, 3>"""
    steps = []
    for stride in (8, 4, 2, 1):
        steps.append(f"""
    %s{stride} = arith.constant {stride} : index
    "scf.parallel"(%c0, %s{stride}, %c1) <{{operandSegmentSizes = array<i32: 1, 1, 1, 0>}}> ({{
    ^bb0(%u{stride}: index):
      %o{stride} = arith.addi %u{stride}, %s{stride} : index
      %a{stride} = memref.load %tile[%u{stride}] : memref<16xf32, 3>
      %b{stride} = memref.load %tile[%o{stride}] : memref<16xf32, 3>
      %n{stride} = arith.addf %a{stride}, %b{stride} : f32
      memref.store %n{stride}, %tile[%u{stride}] : memref<16xf32, 3>
      scf.reduce
    }}) : (index, index, index) -> ()
    "gpu.barrier"() : () -> ()""")
    body = f"""
  %tile = memref.alloca() : memref<16xf32, 3>
  "scf.parallel"(%c0, %c16, %c1) <{{operandSegmentSizes = array<i32: 1, 1, 1, 0>}}> ({{
  ^bb0(%t: index):{inner_load}
    scf.reduce
  }}) : (index, index, index) -> ()
  "gpu.barrier"() : () -> (){''.join(steps)}
  "scf.parallel"(%c0, %c1, %c1) <{{operandSegmentSizes = array<i32: 1, 1, 1, 0>}}> ({{
  ^bb0(%z: index):
    %total = memref.load %tile[%c0] : memref<16xf32, 3>
    memref.store %total, %y[%r] : memref<5xf32>
    scf.reduce
  }}) : (index, index, index) -> ()"""
    text = module([("x", "memref<5x16xf32>", "float32")], [("y", "memref<5xf32>", "float32")],
                  parallel([5], ["r"], body, "row_sum", 16))
    plan, source, _ = compile_stage(text)
    assert "__local float" in source and "barrier(CLK_LOCAL_MEM_FENCE" in source
    assert plan.launches[0].grid == (5, 1, 1) and plan.launches[0].block == (16, 1, 1)
    x = f32(5, 16)
    (y,) = OpenCLExecutor(plan, source, {}).run([x])
    np.testing.assert_allclose(y, x.sum(axis=1), rtol=1e-5, atol=1e-6)


def test_identical_kernels_are_emitted_once_and_views_alias() -> None:
    def scale(src: str, dst: str) -> str:
        return parallel([6], ["i"], f"""
  %a = memref.load %{src}[%i] : memref<6xf32>
  %b = arith.mulf %a, %a : f32
  memref.store %b, %{dst}[%i] : memref<6xf32>""", "square", 4, attrs=f', onnx_node = "sq_{dst}"')
    body = "\n".join([
        "  %t0 = vision.buffer offset 0 : memref<2x3xf32>",
        "  %t1 = vision.buffer offset 1024 : memref<6xf32>",
        "  %v0 = vision.reshape ins(%t0 : memref<2x3xf32>) -> memref<6xf32>",
        scale("x", "v0"), scale("v0", "t1"), scale("t1", "y"),
    ])
    text = module([("x", "memref<6xf32>", "float32")], [("y", "memref<6xf32>", "float32")], body, arena=2048)
    plan, source, _ = compile_stage(text)
    assert source.count("__kernel") == 1
    assert [launch.kernel for launch in plan.launches] == ["square"] * 3
    assert [launch.node for launch in plan.launches] == ["sq_v0", "sq_t1", "sq_y"]
    kinds = [b.kind for b in plan.buffers]
    assert kinds == ["input", "output", "arena", "arena", "view"]
    assert plan.buffers[4].base == 2 and plan.buffers[4].shape == (6,)
    x = f32(6)
    ex = OpenCLExecutor(plan, source, {})
    (y,) = ex.run([x])
    np.testing.assert_allclose(y, x ** 8, rtol=1e-5)
    prof = ex.profile_run([x])
    assert [name for name, _ in prof] == ["square"] * 3 and all(t >= 0 for _, t in prof)


def test_plan_json_round_trip() -> None:
    body = "\n".join([
        "  %w = vision.weight @w : memref<4xf32>",
        "  %w2 = vision.weight @w : memref<4xf32>",
        parallel([4], ["i"], """
  %a = memref.load %x[%i] : memref<4xf32>
  %b = memref.load %w[%i] : memref<4xf32>
  %c = memref.load %w2[%i] : memref<4xf32>
  %s = arith.addf %a, %b : f32
  %t = arith.addf %s, %c : f32
  memref.store %t, %y[%i] : memref<4xf32>""", "add2", 4),
    ])
    text = module([("x", "memref<4xf32>", "float32")], [("y", "memref<4xf32>", "float32")], body)
    plan, source, _ = compile_stage(text)
    assert plan.weights == ["w"] and plan.launches[0].args == [0, 2, 2, 1]
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert json.loads(plan.to_json())["launches"][0]["grid"] == [1, 1, 1]
    x, w = f32(4), f32(4)
    (y,) = OpenCLExecutor(again, source, {"w": w}).run([x])
    np.testing.assert_allclose(y, x + 2 * w, rtol=1e-6)


# ---------------------------------------------------------------------------- errors


def _copy_module() -> str:
    body = parallel([3], ["i"], """
  %a = memref.load %x[%i] : memref<3xf32>
  memref.store %a, %y[%i] : memref<3xf32>""", "copy", 4)
    return module([("x", "memref<3xf32>", "float32")], [("y", "memref<3xf32>", "float32")], body)


def test_build_failure_names_kernel_and_carries_log() -> None:
    plan, source, _ = compile_stage(_copy_module())
    broken = source + "\n__kernel void second(__global float* a) {\n  a[0] = undefined_thing;\n}\n"
    with pytest.raises(KernelBuildError) as info:
        OpenCLExecutor(plan, broken, {})
    msg = str(info.value)
    assert "'second'" in msg and "undefined_thing" in msg
    ctx, dev = get_context()
    with pytest.raises(KernelBuildError):
        build_program(ctx, dev, "__kernel void k( {")


def test_wrong_inputs_are_reported_by_name() -> None:
    plan, source, _ = compile_stage(_copy_module())
    ex = OpenCLExecutor(plan, source, {})
    with pytest.raises(InputShapeError, match="input 'x' has shape \\[4\\], expected \\[3\\]"):
        ex.run([np.zeros(4, np.float32)])
    with pytest.raises(InputShapeError, match="input 'x' has dtype float64"):
        ex.run([np.zeros(3)])
    with pytest.raises(InputShapeError, match="expected 1 inputs"):
        ex.run([])
    np.testing.assert_array_equal(ex.run([np.arange(3, dtype=np.float32)])[0], [0, 1, 2])


def test_missing_weight_and_unknown_device() -> None:
    body = "  %w = vision.weight @gamma : memref<3xf32>\n" + parallel([3], ["i"], """
  %a = memref.load %w[%i] : memref<3xf32>
  memref.store %a, %y[%i] : memref<3xf32>""", "copyw", 4)
    text = module([], [("y", "memref<3xf32>", "float32")], body)
    plan, source, _ = compile_stage(text)
    with pytest.raises(CompileError, match="gamma"):
        OpenCLExecutor(plan, source, {})
    with pytest.raises(CompileError, match="shape"):
        OpenCLExecutor(plan, source, {"gamma": np.zeros(4, np.float32)})
    with pytest.raises(DeviceError, match="available devices"):
        select_device("no-such-device-xyz")
    with pytest.raises(DeviceError):
        select_device("99:0")
    first = list_devices()[0]
    assert select_device(first.spec).name.strip() == first.name
    assert select_device(first.name.upper()[:6]).name.strip() == first.name


def test_unlowered_vision_op_is_an_error() -> None:
    text = module([("x", "memref<3xf32>", "float32")], [("y", "memref<3xf32>", "float32")], """
  vision.map ins(%x : memref<3xf32>) outs(%y : memref<3xf32>) {onnx_node = "mystery"} body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  }""")
    from xdsl.parser import Parser

    from visc.dialects import make_context
    from visc.passes.gpu.map_loops_to_gpu import MapLoopsToGpuPass

    mod = Parser(make_context(), text).parse_module()
    with pytest.raises(CompileError, match="mystery"):
        MapLoopsToGpuPass().apply(make_context(), mod)


HALF_BODY = """
  %a = memref.load %x[%i] : memref<12xf16>
  %b = memref.load %z[%i] : memref<12xf16>
  %p = arith.mulf %a, %b : f16
  %q = arith.divf %p, %b : f16
  %third = arith.constant 0.333 : f16
  %s = arith.addf %q, %third : f16
  %tmp = memref.alloca() : memref<2xf16>
  memref.store %s, %tmp[%c1] : memref<2xf16>
  %t = memref.load %tmp[%c1] : memref<2xf16>
  %e = math.exp %a : f16
  %m = arith.minimumf %t, %e : f16
  %w = arith.extf %m : f16 to f32
  %w3 = arith.mulf %w, %w : f32
  %n = arith.truncf %w3 : f32 to f16
  %d = memref.load %dd[%i] : memref<12xf64>
  %nd = arith.truncf %d : f64 to f16
  %r = arith.addf %n, %nd : f16
  memref.store %r, %y[%i] : memref<12xf16>"""


def _half_module() -> str:
    return module([("x", "memref<12xf16>", "float16"), ("z", "memref<12xf16>", "float16"),
                   ("dd", "memref<12xf64>", "float64")],
                  [("y", "memref<12xf16>", "float16")], parallel([12], ["i"], HALF_BODY, "halves", 16))


def _half_reference(x: np.ndarray, z: np.ndarray, dd: np.ndarray) -> np.ndarray:
    s = (x * z) / z + np.float16(0.333)
    m = np.minimum(s, np.exp(x))
    w = m.astype(np.float32)
    return (w * w).astype(np.float16) + dd.astype(np.float16)


def test_half_precision_in_float_registers() -> None:
    """Without cl_khr_fp16: half in memory, float in registers, rounded op by op."""
    x = (f32(12) * 1.2).astype(np.float16)
    z = (f32(12) + 3).astype(np.float16)
    dd = RNG.standard_normal(12)
    plan, source, _ = compile_stage(_half_module())
    assert "cl_khr_fp16" not in source and "vload_half(" in source and "vstore_half_rte(" in source
    assert "float v" in source and "half v" not in source
    (y,) = OpenCLExecutor(plan, source, {}).run([x, z, dd])
    want = _half_reference(x, z, dd)
    np.testing.assert_allclose(y.astype(np.float32), want.astype(np.float32), rtol=2e-3)
    # where the minimum does not pick exp (whose last bit may differ), every op rounds
    # exactly as numpy's float16 does
    arithmetic_only = (x * z) / z + np.float16(0.333) < np.exp(x) * np.float16(0.99)
    assert arithmetic_only.any()
    np.testing.assert_array_equal(y[arithmetic_only], want[arithmetic_only])


def test_native_half_when_supported() -> None:
    ctx, dev = get_context()
    if "cl_khr_fp16" not in dev.extensions:
        pytest.skip(f"{dev.name.strip()} has no cl_khr_fp16")
    x = (f32(12) * 1.2).astype(np.float16)
    z = (f32(12) + 3).astype(np.float16)
    dd = RNG.standard_normal(12)
    plan, _, stage5 = compile_stage(_half_module())
    source = emit_opencl(stage5, native_half=True)
    assert "cl_khr_fp16 : enable" in source
    (y,) = OpenCLExecutor(plan, source, {}).run([x, z, dd])
    np.testing.assert_allclose(y.astype(np.float32), _half_reference(x, z, dd).astype(np.float32), rtol=2e-3)


def test_emit_opencl_without_kernels() -> None:
    from xdsl.dialects.builtin import ModuleOp

    assert emit_opencl(ModuleOp([])).startswith("// OpenCL C 1.2")


def test_unaligned_arena_offset_and_reinterpreted_weight() -> None:
    """A buffer at an offset the device cannot sub-buffer gets its own allocation; a uint8
    array feeds an i8 weight bit for bit."""
    body = "\n".join([
        "  %w = vision.weight @codes : memref<5xi8>",
        "  %t0 = vision.buffer offset 4 : memref<5xf32>",
        parallel([5], ["i"], """
  %c = memref.load %w[%i] : memref<5xi8>
  %u = arith.uitofp %c : i8 to f32
  %a = memref.load %x[%i] : memref<5xf32>
  %s = arith.addf %a, %u : f32
  memref.store %s, %t0[%i] : memref<5xf32>""", "decode", 8),
        parallel([5], ["i"], """
  %a = memref.load %t0[%i] : memref<5xf32>
  memref.store %a, %y[%i] : memref<5xf32>""", "copy_out", 8),
    ])
    text = module([("x", "memref<5xf32>", "float32")], [("y", "memref<5xf32>", "float32")], body, arena=64)
    codes = np.array([0, 1, 127, 128, 255], np.uint8)
    x = f32(5)
    plan, source, _ = compile_stage(text)
    ex = OpenCLExecutor(plan, source, {"codes": codes}, profile=True)
    (y,) = ex.run([x])
    np.testing.assert_allclose(y, x + codes, rtol=1e-6)
    assert [name for name, _ in ex.profile_run([x])] == ["decode", "copy_out"]
    assert ex.device_name == get_context()[1].name.strip()


def test_plan_rejects_host_ops_and_unknown_versions() -> None:
    from xdsl.parser import Parser

    from visc.backends.plan_extract import extract_plan
    from visc.dialects import make_context

    text = module([("x", "memref<4xf32>", "float32")], [("y", "memref<4xf32>", "float32")], """
  vision.map ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {onnx_node = "left_over"} body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  }""")
    with pytest.raises(CompileError, match="still contains vision.map \\(ONNX node 'left_over'\\)"):
        extract_plan(Parser(make_context(), text).parse_module())
    plan, _, _ = compile_stage(_copy_module())
    data = json.loads(plan.to_json())
    data["version"] = 99
    with pytest.raises(CompileError, match="plan format 99"):
        Plan.from_json(json.dumps(data))


def test_work_group_larger_than_the_device_allows() -> None:
    _, dev = get_context()
    too_many = int(dev.max_work_group_size) * 2
    body = parallel([too_many], ["i"], """
  %a = memref.load %x[%i] : memref<%Nxf32>
  memref.store %a, %y[%i] : memref<%Nxf32>""".replace("%N", str(too_many)), "huge", too_many)
    text = module([("x", f"memref<{too_many}xf32>", "float32")], [("y", f"memref<{too_many}xf32>", "float32")], body)
    plan, source, _ = compile_stage(text)
    with pytest.raises(KernelBuildError, match="huge"):
        OpenCLExecutor(plan, source, {})


BITS_BODY = """
    %a = memref.load %x[%i] : memref<4xf32>
    %n = arith.constant 3 : i64
    %p = math.fpowi %a, %n : f32, i64
    %k = arith.constant 5 : i32
    %q = math.ipowi %k, %k : i32
    %qf = arith.sitofp %q : i32 to f32
    %r = arith.addf %p, %qf : f32
    %ci = arith.fptosi %a : f32 to i32
    %cl = math.ctlz %ci : i32
    %cp = math.ctpop %ci : i32
    %ct = math.cttz %ci : i32
    %bc = arith.bitcast %a : f32 to i32
    %s1 = arith.addi %cl, %cp : i32
    %s2 = arith.addi %s1, %ct : i32
    %s3 = arith.xori %s2, %bc : i32
    %m7 = arith.constant 7 : i32
    %s4 = arith.andi %s3, %m7 : i32
    %f4 = arith.sitofp %s4 : i32 to f32
    %out = arith.addf %r, %f4 : f32
    memref.store %out, %y[%i] : memref<4xf32>"""


def test_integer_powers_bit_counts_and_bitcast() -> None:
    text = module([("x", "memref<4xf32>", "float32")], [("y", "memref<4xf32>", "float32")],
                  parallel([4], ["i"], BITS_BODY, "bits", 4))
    x = np.array([1.5, -2.25, 7.0, 0.3], np.float32)
    (y,) = run_bufferized(text, {}, [x])

    def clz(v: int) -> int:
        return 32 - (v & 0xFFFFFFFF).bit_length()

    def ctz(v: int) -> int:
        v &= 0xFFFFFFFF
        return 32 if v == 0 else (v & -v).bit_length() - 1

    def pop(v: int) -> int:
        return bin(v & 0xFFFFFFFF).count("1")

    bits = [((clz(int(c)) + pop(int(c)) + ctz(int(c))) ^ int(b)) & 7
            for c, b in zip(x.astype(np.int32), x.view(np.int32), strict=True)]
    np.testing.assert_allclose(y, x ** 3 + 5 ** 5 + np.array(bits, np.float32), rtol=1e-6)


def test_vector_min_max_propagate_nan() -> None:
    """Vector maximumf/minimumf (the blend form of `OpenCLEmitter.nan_propagating`) and their
    reductions: NaN in either operand, or in any lane, gives NaN; a ReLU's constant 0 too."""
    body = parallel([4], ["i"], """
  %four = arith.constant 4 : index
  %k = arith.muli %i, %four : index
  %a = vector.load %x[%k] : memref<16xf32>, vector<4xf32>
  %b = vector.load %z[%k] : memref<16xf32>, vector<4xf32>
  %zero = arith.constant dense<0.0> : vector<4xf32>
  %mx = arith.maximumf %a, %b : vector<4xf32>
  %mn = arith.minimumf %a, %b : vector<4xf32>
  %re = arith.maximumf %a, %zero : vector<4xf32>
  vector.store %mx, %o[%c0, %k] : memref<3x16xf32>, vector<4xf32>
  vector.store %mn, %o[%c1, %k] : memref<3x16xf32>, vector<4xf32>
  vector.store %re, %o[%c2, %k] : memref<3x16xf32>, vector<4xf32>
  %rmx = vector.reduction <maximumf>, %a : vector<4xf32> into f32
  %rmn = vector.reduction <minimumf>, %b : vector<4xf32> into f32
  memref.store %rmx, %r[%c0, %i] : memref<2x4xf32>
  memref.store %rmn, %r[%c1, %i] : memref<2x4xf32>""", "vminmax", 2)
    text = module([("x", "memref<16xf32>", "float32"), ("z", "memref<16xf32>", "float32")],
                  [("o", "memref<3x16xf32>", "float32"), ("r", "memref<2x4xf32>", "float32")], body)
    x, z = f32(16), f32(16)
    x[0], z[1], x[6], z[6], x[9], z[15] = np.nan, np.nan, np.nan, np.nan, np.nan, np.nan  # lanes 0-3: NaN at 0 and 1
    plan, source, _ = compile_stage(text)
    assert "isnan" not in source
    o, r = OpenCLExecutor(plan, source, {}).run([x, z])
    want = [np.maximum(x, z), np.minimum(x, z), np.maximum(x, 0)]
    for row, expected in enumerate(want):
        np.testing.assert_array_equal(o[row], expected.astype(np.float32), err_msg=f"row {row}")
    np.testing.assert_array_equal(r, np.stack([x.reshape(4, 4).max(1), z.reshape(4, 4).min(1)]))
