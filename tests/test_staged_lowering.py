"""Staged (work-group memory) conv2d and matmul schedules: OpenCL (PoCL runs local memory and
barriers) against onnxruntime / numpy on odd shapes, the CUDA path through ptxas and the host
emulator, the CPU backend, schedule legality, the GPU default heuristic and the tuner space."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_lowering import close, ort_run, parse, randn, run, stage3

import visc
from visc.compiler import GRAPH_PIPELINE, compile_model, default_pipeline, finish_module, run_passes
from visc.dialects import make_context
from visc.errors import CompileError
from visc.passes.lowering.default_schedule import default_schedule
from visc.passes.lowering.vision_to_loops import LowerVisionToLoopsPass


def staged(stage: int, bm: int, bn: int, bk: int, tm: int, tn: int, **extra: int) -> dict[str, int]:
    return {"stage": stage, "block_m": bm, "block_n": bn, "tile_k": bk, "tile_oc": tm, "tile_ow": tn,
            "wg": (bm // tm) * (bn // tn), **extra}


def conv_attrs(strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), schedule=None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"strides": strides, "pads": pads, "dilations": dilations, "groups": 1}
    if schedule is not None:
        attrs["schedule"] = schedule
    return attrs


# ---------------------------------------------------------------------------- conv2d on OpenCL

CONV_CASES = [
    # 3x3 padded; O (13) not a multiple of block_m, N (2*9*10) not of block_n, K (7*9) not of tile_k
    dict(x=(2, 7, 9, 10), o=13, k=(3, 3), pads=(1, 1, 1, 1), s=staged(2, 16, 32, 8, 4, 4)),
    dict(x=(2, 7, 9, 10), o=13, k=(3, 3), pads=(1, 1, 1, 1), s=staged(1, 16, 32, 8, 4, 4)),
    # stride 2, asymmetric padding, unrolled-by-hint K step
    dict(x=(1, 6, 11, 13), o=20, k=(3, 3), strides=(2, 2), pads=(1, 0, 1, 1),
         s=staged(2, 16, 16, 4, 2, 4, unroll_k=2)),
    # 1x1 pointwise (input read as rows through a view), batch 3
    dict(x=(3, 16, 5, 7), o=24, k=(1, 1), s=staged(2, 16, 16, 8, 2, 2)),
    # 1x1 stride 2 (not pointwise: im2col path)
    dict(x=(1, 12, 9, 9), o=8, k=(1, 1), strides=(2, 2), s=staged(1, 8, 16, 16, 2, 2)),
    # 7x7 stem-like: stride 2, pad 3, K = 3 * 49
    dict(x=(1, 3, 23, 21), o=16, k=(7, 7), strides=(2, 2), pads=(3, 3, 3, 3), s=staged(2, 16, 32, 16, 4, 4)),
    # dilation, copies that do not divide the work-group (threads > tile elements)
    dict(x=(1, 5, 12, 12), o=9, k=(3, 3), pads=(2, 2, 2, 2), dilations=(2, 2), s=staged(2, 16, 16, 2, 2, 2)),
    # one K step, no bias
    dict(x=(1, 4, 6, 6), o=8, k=(1, 1), s=staged(2, 8, 32, 8, 2, 4), bias=False),
    # split-K: 3 slices of K = 63 in 8-deep tiles (8 tiles: slices of 3, 3, 2), ragged M and N
    dict(x=(2, 7, 9, 10), o=13, k=(3, 3), pads=(1, 1, 1, 1), s=staged(2, 16, 32, 8, 4, 4, split_k=3)),
    # split-K with more slices than tiles (the last slices sum only zeros), stage 1, batch 3
    dict(x=(3, 16, 5, 7), o=24, k=(1, 1), s=staged(1, 16, 16, 8, 2, 2, split_k=4)),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_staged_conv2d_matches_onnxruntime(case: dict[str, Any]) -> None:
    x = randn(*case["x"])
    w = randn(case["o"], case["x"][1], *case["k"])
    bias = case.get("bias", True)
    b = randn(case["o"]) if bias else None
    strides, pads, dil = case.get("strides", (1, 1)), case.get("pads", (0, 0, 0, 0)), case.get("dilations", (1, 1))
    (want,) = ort_run("Conv", [x, w, b], {"strides": strides, "pads": pads, "dilations": dil})
    weights = {"w": w, **({"b": b} if bias else {})}
    (got,) = run("conv2d", {"x": x}, {"y": (want.shape, np.float32)}, conv_attrs(strides, pads, dil, case["s"]),
                 ["x", "w", "b"] if bias else ["x", "w"], weights)
    close(got, want, rtol=1e-4, atol=1e-4)


# a fused epilogue: the conv's accumulator plus a residual operand, then ReLU
RESIDUAL_RELU = """  ^bb0(%acc: f32, %r: f32):
    %s = arith.addf %acc, %r : f32
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %s, %z : f32
    vision.yield %m : f32"""


@pytest.mark.parametrize("stage", [1, 2])
def test_staged_conv2d_bias_relu_residual_epilogue(stage: int) -> None:
    x, w, b, res = randn(2, 6, 7, 9), randn(10, 6, 3, 3), randn(10), randn(2, 10, 7, 9)
    (got,) = run("conv2d", {"x": x}, {"y": ((2, 10, 7, 9), np.float32)},
                 conv_attrs(pads=(1, 1, 1, 1), schedule=staged(stage, 16, 32, 8, 4, 4)),
                 ["x", "w", "b"], {"w": w, "b": b, "res": res}, fuse=["res"], body=RESIDUAL_RELU)
    (conv,) = ort_run("Conv", [x, w, b], {"pads": [1, 1, 1, 1]})
    close(got, np.maximum(conv + res, 0), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- matmul on OpenCL

MATMUL_CASES = [
    dict(a=(37, 45), b=(45, 29), s=(2, 16, 16, 8, 2, 2)),
    dict(a=(45, 37), b=(29, 45), ta=1, tb=1, c=(29,), alpha=0.5, beta=-2.0, s=(2, 16, 32, 16, 4, 4)),
    dict(a=(20, 33), b=(17, 33), tb=1, c=(20, 1), s=(1, 16, 16, 8, 4, 2)),
    dict(a=(2, 1, 18, 40), b=(3, 40, 24), s=(2, 16, 16, 16, 2, 4, 2)),  # broadcast batch, K hint loop
    # split-K over a batch, with alpha/beta/c finished by the kernel that adds the slices
    dict(a=(2, 1, 18, 70), b=(3, 70, 24), c=(24,), alpha=0.5, beta=2.0, s=(2, 16, 16, 8, 2, 4, 0, 4)),
]


def check_matmul_case(case: dict[str, Any], sched: dict[str, int]) -> None:
    """One matmul case (shapes ``a``, ``b``, optional ``ta``/``tb``, ``alpha``/``beta``, ``c``)
    lowered with `sched` on OpenCL, against numpy."""
    a, b = randn(*case["a"]), randn(*case["b"])
    ta, tb = case.get("ta", 0), case.get("tb", 0)
    alpha, beta = case.get("alpha", 1.0), case.get("beta", 1.0)
    want = alpha * np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b)
    weights, ins = {"b": b}, ["a", "b"]
    if "c" in case:
        weights["c"] = c = randn(*case["c"])
        want, ins = want + beta * c, [*ins, "c"]
    attrs = {"transpose_a": ta, "transpose_b": tb, "alpha": alpha, "beta": beta, "schedule": sched}
    (got,) = run("matmul", {"a": a}, {"y": (want.shape, np.float32)}, attrs, ins, weights)
    close(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", MATMUL_CASES)
def test_staged_matmul(case: dict[str, Any]) -> None:
    stage, bm, bn, bk, tm, tn, *extra = case["s"]
    check_matmul_case(case, {"stage": stage, "block_m": bm, "block_n": bn, "tile_k": bk, "tile_m": tm, "tile_n": tn,
                             "wg": (bm // tm) * (bn // tn), "unroll_k": extra[0] if extra else 0,
                             "split_k": extra[1] if len(extra) > 1 else 1})


def test_staged_matmul_epilogue() -> None:
    a, b, bias = randn(24, 40), randn(40, 20), randn(20)
    body = """  ^bb0(%acc: f32, %v: f32):
    %s = arith.addf %acc, %v : f32
    %e = math.tanh %s : f32
    vision.yield %e : f32"""
    sched = {"stage": 2, "block_m": 16, "block_n": 16, "tile_k": 8, "tile_m": 2, "tile_n": 2, "wg": 64}
    (got,) = run("matmul", {"a": a}, {"y": ((24, 20), np.float32)}, {"schedule": sched}, ["a", "b"],
                 {"b": b, "bias": bias}, fuse=["bias"], body=body)
    close(got, np.tanh(a @ b + bias), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- IR form and legality


def _conv_text(schedule: dict[str, int], placement: str | None = None) -> str:
    x, w = np.zeros((1, 8, 6, 6), np.float32), np.zeros((16, 8, 3, 3), np.float32)
    attrs = conv_attrs(pads=(1, 1, 1, 1), schedule=schedule)
    if placement:
        attrs["placement"] = placement
    return stage3("conv2d", {"x": x}, {"w": w}, {"y": ((1, 16, 6, 6), np.float32)}, attrs, ["x", "w"])


def lowered_ops(text: str) -> list[str]:
    module = parse(text)
    LowerVisionToLoopsPass().apply(make_context(), module)
    module.verify()
    return [op.name + (str(op.results[0].type) if op.name == "memref.alloca" else "") for op in module.walk()]


def test_block_thread_form_and_accumulator_storage() -> None:
    regs = lowered_ops(_conv_text(staged(2, 16, 16, 8, 4, 4)))
    assert regs.count("gpu.barrier") == 2 and regs.count("scf.parallel") == 5  # group + 4 thread loops
    assert "memref.allocamemref<16xf32>" in regs  # private accumulators
    assert "memref.allocamemref<136xf32, 3 : i64>" in regs  # A tile: 8 x (16 + 1)
    # stage 2 placed on the CPU backend keeps its accumulators in work-group memory
    cpu = lowered_ops(_conv_text(staged(2, 16, 16, 8, 4, 4), placement="cpu"))
    assert "memref.allocamemref<16xf32>" not in cpu and "memref.allocamemref<256xf32, 3 : i64>" in cpu


@pytest.mark.parametrize("schedule,message", [
    ({**staged(2, 16, 16, 8, 4, 4), "wg": 32}, "must be the 16 threads"),
    (staged(2, 16, 16, 8, 3, 4), "must divide block_m"),
    ({**staged(2, 16, 16, 8, 4, 4), "vec": 4}, "vec=4 is not used by a staged schedule"),
    (staged(1, 256, 256, 64, 16, 16), "bytes of work-group memory"),
    (staged(2, 16, 16, 8, 4, 4, split_k=0), "split_k=0"),
    ({**staged(2, 16, 16, 8, 4, 4), "stage": 4}, "stage=4 is illegal"),
])
def test_illegal_staged_schedules(schedule: dict[str, int], message: str) -> None:
    with pytest.raises(CompileError, match=message):
        lowered_ops(_conv_text(schedule))


def test_grouped_conv_cannot_stage() -> None:
    text = _conv_text(staged(2, 16, 16, 8, 4, 4)).replace("groups = 1", "groups = 2").replace("16x8x3x3", "16x4x3x3")
    with pytest.raises(CompileError, match="needs groups = 1"):
        lowered_ops(text)


# ---------------------------------------------------------------------------- heuristic and space


def _resnet_conv(c: int, o: int, hw: int, k: int, n: int = 1) -> Any:
    x, w = np.zeros((n, c, hw, hw), np.float32), np.zeros((o, c, k, k), np.float32)
    p = k // 2
    text = stage3("conv2d", {"x": x}, {"w": w}, {"y": ((n, o, hw, hw), np.float32)},
                  conv_attrs(pads=(p, p, p, p)), ["x", "w"])
    return next(op for op in parse(text).walk() if op.name == "vision.conv2d")


@pytest.mark.parametrize("shape", [(64, 64, 56, 3), (256, 64, 56, 1), (256, 256, 14, 3), (512, 512, 7, 3),
                                   (1024, 256, 14, 1), (128, 128, 28, 3)])
def test_gpu_default_stages_resnet_convs(shape) -> None:
    from visc.passes.lowering.common import Schedule
    from visc.passes.lowering.conv import check_conv2d

    op = _resnet_conv(*shape)
    gpu = default_schedule(op, "gpu", 256, "cuda")
    assert gpu["stage"] == 2 and gpu["wg"] <= 256 and check_conv2d(op, Schedule(gpu)) == []
    assert default_schedule(op, "gpu", 256, "cpu")["stage"] == 1  # the CPU backend
    assert "stage" not in default_schedule(op, "cpu", 256, "cpu")  # CPU heuristics unchanged
    m, n, k = shape[1], shape[2] ** 2, shape[0] * shape[3] ** 2
    blocks = -(-m // gpu["block_m"]) * -(-n // gpu["block_n"])
    # deep layers split K rather than launch a few blocks; large layers do not split
    assert blocks * gpu["split_k"] >= 64
    assert gpu["split_k"] == 1 or k // gpu["split_k"] >= 8 * gpu["tile_k"]


def test_gpu_default_splits_the_reduction_of_small_convs() -> None:
    """A conv GEMM of at most 2^24 multiply-adds (MobileNetV2's 1x1 projection at batch 1:
    64 x 196 x 384) gets the split reduction on GPU targets, within the work-group limit;
    larger ones, the CPU backend and CPU devices keep their kernels."""
    from visc.passes.lowering.common import Schedule
    from visc.passes.lowering.conv import check_conv2d

    project = _resnet_conv(384, 64, 14, 1)
    for target in ("cuda", "opencl"):
        for max_wg in (256, 64):
            s = default_schedule(project, "gpu", max_wg, target)
            assert s["stage"] == 3 and s["wg"] <= max_wg and check_conv2d(project, Schedule(s)) == []
            assert 384 / s["threads_k"] >= 12  # slices long enough to amortize the partial sums
    expand = default_schedule(_resnet_conv(64, 384, 14, 1), "gpu", 256, "cuda")
    assert expand["stage"] == 3 and expand["threads_k"] == 8  # short K: fewer, wider slices
    assert default_schedule(project, "gpu", 256, "cpu")["stage"] == 1
    assert "stage" not in default_schedule(project, "cpu", 256, "opencl")
    assert default_schedule(_resnet_conv(384, 64, 28, 1), "gpu", 256, "cuda")["stage"] == 2  # 2^24 < 64 x 784 x 384
    assert default_schedule(_resnet_conv(16, 64, 14, 1), "gpu", 256, "cuda").get("stage", 0) == 0  # K = 16: too short


def test_tuner_space_proposals_respect_device_limits() -> None:
    from visc.tuner.space import DeviceLimits, search_space

    op = _resnet_conv(64, 64, 14, 3)
    small = DeviceLimits("gpu", 128, 8 * 1024, 128)
    space = search_space(op, small)
    assert space.choices["stage"] == [0, 1, 2, 3] and set(space.choices) >= {"block_m", "block_n", "tile_k"}
    base = default_schedule(op, "gpu", 128, "cuda")
    sched = {k: base.get(k, v[0]) for k, v in space.choices.items()}
    assert space.problems({**sched, "stage": 2, "block_m": 64, "block_n": 64, "tile_k": 32, "tile_oc": 4,
                           "tile_ow": 4, "wg": 256})  # more threads and local memory than the device has
    rng = np.random.default_rng(0)
    legal = 0
    for _ in range(6000):
        proposal = {k: int(rng.choice(v)) for k, v in space.choices.items()}
        proposal["threads_k"] = 1  # stage 3's key (test_split_reduction.py)
        if proposal["stage"] in (1, 2) and not space.problems(proposal):
            legal += 1
            tiles_bytes = proposal["tile_k"] * (proposal["block_m"] + 1 + proposal["block_n"]) * 4
            assert tiles_bytes <= small.local_memory_bytes and proposal["wg"] <= 128
            # every K-slice keeps at least two K tiles (K = 64 * 9 = 576)
            assert 576 // proposal["tile_k"] >= 2 * proposal["split_k"]
    assert legal > 0
    assert space.choices["split_k"] == [1, 2, 4, 8, 16, 32]  # slices of >= 2 tiles of 8: 576 >= 2 * 32 * 8
    assert space.problems({**sched, "stage": 0, "split_k": 2})  # split-K needs a staged kernel
    cpu_space = search_space(op, DeviceLimits("cpu", 1024, 1 << 20, 256))
    assert cpu_space.choices["stage"] == [0, 1]  # per-thread register arrays need a GPU
    assert cpu_space.choices["split_k"] == [1]  # CPU threads are few: slices would only add a pass


# ---------------------------------------------------------------------------- whole compiles


def _small_resnet_block() -> Any:
    """conv3x3+BN+relu, conv3x3 stride 2, 1x1 conv + residual add + relu, pool, gemm."""
    rng = np.random.default_rng(11)

    def init(name: str, *shape: int, scale: float = 0.2) -> TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="c1"),
        helper.make_node("BatchNormalization", ["c1", "g", "bb", "mu", "var"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="r1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="c2"),
        helper.make_node("Conv", ["c2", "w3", "b3"], ["c3"], name="c3"),
        helper.make_node("Conv", ["x", "w4"], ["c4"], strides=[2, 2], name="c4"),
        helper.make_node("Add", ["c3", "c4"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["r"], name="r"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1, name="fc"),
    ]
    inits = [init("w1", 24, 8, 3, 3), init("g", 24), init("bb", 24), init("mu", 24),
             numpy_helper.from_array((rng.random(24) + 0.5).astype(np.float32), "var"),
             init("w2", 36, 24, 3, 3), init("b2", 36), init("w3", 40, 36, 1, 1), init("b3", 40),
             init("w4", 40, 8, 1, 1), init("wf", 10, 40), init("bf", 10)]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 17, 17])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _reference(model: Any, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _staged_convs(module_text: str) -> int:
    return sum(module_text.count(f"stage = {stage}") for stage in (1, 2, 3))


def test_opencl_with_gpu_default_schedules_matches_onnxruntime() -> None:
    model = _small_resnet_block()
    seen: list[str] = []

    def after(spec: str, module) -> None:
        if spec.startswith("vision-default-schedule"):
            seen.append(str(module))

    compiled = compile_model(model, target="opencl", pipeline=default_pipeline("opencl", "gpu"), print_ir_after=after)
    assert _staged_convs(seen[0]) >= 3 and "stage = 3" in seen[0]  # small GEMMs: the split reduction
    x = np.random.default_rng(2).standard_normal((2, 8, 17, 17)).astype(np.float32)
    close(compiled.run([x])[0], _reference(model, x), rtol=1e-4, atol=1e-4)


def test_cpu_backend_with_gpu_default_schedules() -> None:
    """GPU heuristics on the CPU backend: stage 1 (accumulators in work-group memory)."""
    model = _small_resnet_block()
    specs = [*GRAPH_PIPELINE, "vision-bufferize", "vision-default-schedule{target=cpu device_type=gpu}",
             "lower-vision-to-loops", "lower-loops-to-cpu"]
    seen: list[str] = []
    compiled = compile_model(model, target="cpu", pipeline=specs,
                             print_ir_after=lambda s, m: seen.append(str(m)) if s.startswith("vision-default") else None)
    assert "stage = 1" in seen[0] and "stage = 2" not in seen[0]
    assert all(launch.node for launch in compiled.plan.launches)  # work-group kernels name their node too
    x = np.random.default_rng(3).standard_normal((2, 8, 17, 17)).astype(np.float32)
    close(compiled.run([x])[0], _reference(model, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stage", [1, 2])
def test_cpu_backend_explicit_staged_schedule(stage: int) -> None:
    x, w, b = randn(1, 6, 9, 9), randn(12, 6, 3, 3), randn(12)
    sched = staged(stage, 16, 16, 8, 4, 4)
    attrs = conv_attrs(strides=(2, 2), pads=(1, 1, 1, 1), schedule=sched)
    if stage == 2:
        attrs["placement"] = "cpu"  # how a GPU schedule reaches the CPU backend in a mixed plan
    text = stage3("conv2d", {"x": x}, {"w": w, "b": b}, {"y": ((1, 12, 5, 5), np.float32)}, attrs, ["x", "w", "b"])
    module = parse(text)
    run_passes(module, ["lower-vision-to-loops", "lower-loops-to-cpu"], None)
    compiled = finish_module(module, {"w": w, "b": b}, "cpu")
    (want,) = ort_run("Conv", [x, w, b], {"strides": [2, 2], "pads": [1, 1, 1, 1]})
    close(compiled.run([x])[0], want, rtol=1e-4, atol=1e-4)


def test_cpu_target_runs_a_given_stage2_schedule_as_stage1() -> None:
    """Target cpu without placement: vision-default-schedule turns a given stage=2 into stage=1
    (private accumulators across barriers would be shared by a group's threads on the host)."""
    x, w, b = randn(1, 6, 9, 9), randn(12, 6, 3, 3), randn(12)
    attrs = conv_attrs(strides=(2, 2), pads=(1, 1, 1, 1), schedule=staged(2, 16, 16, 8, 4, 4))
    text = stage3("conv2d", {"x": x}, {"w": w, "b": b}, {"y": ((1, 12, 5, 5), np.float32)}, attrs, ["x", "w", "b"])
    module = parse(text)
    run_passes(module, ["vision-default-schedule{target=cpu}", "lower-vision-to-loops", "lower-loops-to-cpu"], None)
    compiled = finish_module(module, {"w": w, "b": b}, "cpu")
    (want,) = ort_run("Conv", [x, w, b], {"strides": [2, 2], "pads": [1, 1, 1, 1]})
    close(compiled.run([x])[0], want, rtol=1e-4, atol=1e-4)


def test_cuda_ptx_assembles_and_runs_on_host() -> None:
    from test_ptx_backend import PTXAS, lower_for_host

    from visc.backends.ptx import assemble, find_libdevice

    model = _small_resnet_block()
    if find_libdevice() is not None:
        for arch in ("sm_80", "sm_90"):
            ptx = visc.compile(model, target="cuda", arch=arch).sources["cuda"]
            assert "bar.sync" in ptx and ".shared" in ptx
            if PTXAS is not None:
                assemble(ptx, arch)
    emulator = lower_for_host(model)
    x = np.random.default_rng(4).standard_normal((2, 8, 17, 17)).astype(np.float32)
    got = emulator.run([x])[0]
    close(got, _reference(model, x), rtol=1e-4, atol=1e-4)
