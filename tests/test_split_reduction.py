"""``stage = 3`` conv2d and matmul (the reduction split across a work-group's threads,
split_reduction_gemm.py): OpenCL (PoCL) and the CPU backend against onnxruntime / numpy on
ragged shapes, schedule legality, the CUDA path through ptxas and the tuner space."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_lowering import close, ort_run, parse, randn, run, stage3
from test_staged_lowering import RESIDUAL_RELU, check_matmul_case, conv_attrs, lowered_ops

from visc.compiler import finish_module, run_passes


def split(tm: int, tn: int, bn: int, rk: int, unroll: int = 1, conv: bool = True) -> dict[str, int]:
    keys = ("tile_oc", "tile_ow") if conv else ("tile_m", "tile_n")
    return {"stage": 3, keys[0]: tm, keys[1]: tn, "block_n": bn, "threads_k": rk, "unroll_k": unroll,
            "wg": (bn // tn) * rk}


CONV_CASES = [
    # 1x1 pointwise, K = 40 in 4 slices of 10, each 5 loop steps of 2
    dict(x=(1, 40, 7, 7), o=16, k=(1, 1), s=split(4, 1, 16, 4, unroll=2)),
    # ragged everything: O = 13 in groups of 4 rows, N = 2 * 9 * 10 = 180 in blocks of 32 columns,
    # K = 63 in 4 slices of 16 (the last reads zeros past K)
    dict(x=(2, 7, 9, 10), o=13, k=(3, 3), pads=(1, 1, 1, 1), s=split(4, 2, 32, 4, unroll=4)),
    # stride 2, asymmetric padding, whole slices unrolled, more outputs than threads in finish
    dict(x=(1, 6, 11, 13), o=20, k=(3, 3), strides=(2, 2), pads=(1, 0, 1, 1), s=split(4, 4, 16, 2, unroll=0)),
    # dilation, a slice per K element (threads_k = K), no bias
    dict(x=(1, 3, 8, 8), o=5, k=(2, 2), dilations=(2, 2), s=split(1, 1, 8, 12), bias=False),
    # batch 3, 1x1, one slice (threads_k = 1: a plain register tile)
    dict(x=(3, 16, 5, 7), o=24, k=(1, 1), s=split(8, 2, 32, 1, unroll=4)),
]


def _conv_case(case: dict[str, Any]) -> tuple[np.ndarray, list[np.ndarray | None], dict[str, Any], np.ndarray]:
    x = randn(*case["x"])
    w = randn(case["o"], case["x"][1], *case["k"])
    b = randn(case["o"]) if case.get("bias", True) else None
    strides, pads, dil = case.get("strides", (1, 1)), case.get("pads", (0, 0, 0, 0)), case.get("dilations", (1, 1))
    (want,) = ort_run("Conv", [x, w, b], {"strides": strides, "pads": pads, "dilations": dil})
    return x, [w, b], conv_attrs(strides, pads, dil, case["s"]), want


@pytest.mark.parametrize("case", CONV_CASES)
def test_split_reduction_conv2d_matches_onnxruntime_on_opencl(case: dict[str, Any]) -> None:
    x, (w, b), attrs, want = _conv_case(case)
    weights = {"w": w, **({"b": b} if b is not None else {})}
    (got,) = run("conv2d", {"x": x}, {"y": (want.shape, np.float32)}, attrs,
                 ["x", "w", "b"] if b is not None else ["x", "w"], weights)
    close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CONV_CASES[:3])
def test_split_reduction_conv2d_on_the_cpu_backend(case: dict[str, Any]) -> None:
    x, (w, b), attrs, want = _conv_case(case)
    weights = {"w": w, "b": b}
    text = stage3("conv2d", {"x": x}, weights, {"y": (want.shape, np.float32)}, attrs, ["x", "w", "b"])
    module = parse(text)
    run_passes(module, ["vision-default-schedule{target=cpu}", "lower-vision-to-loops", "lower-loops-to-cpu"], None)
    compiled = finish_module(module, weights, "cpu")
    close(compiled.run([x])[0], want, rtol=1e-4, atol=1e-4)


MATMUL_CASES = [
    # ragged M (37 rows in groups of 4), N (29 in blocks of 16), K (45 in 8 slices of 6)
    dict(a=(37, 45), b=(45, 29), s=split(4, 2, 16, 8, unroll=2, conv=False)),
    # both transposed, alpha / beta * c finished by the store, whole slices unrolled
    dict(a=(45, 37), b=(29, 45), ta=1, tb=1, c=(29,), alpha=0.5, beta=-2.0, s=split(2, 1, 32, 4, unroll=0, conv=False)),
    # broadcast batch dims (one grid dim per output batch dim), a long K (a GEMV-like row)
    dict(a=(2, 1, 3, 200), b=(3, 200, 24), s=split(2, 2, 8, 16, unroll=4, conv=False)),
]


@pytest.mark.parametrize("case", MATMUL_CASES)
def test_split_reduction_matmul(case: dict[str, Any]) -> None:
    check_matmul_case(case, case["s"])


def test_split_reduction_conv2d_fused_epilogue() -> None:
    x, w, b, res = randn(2, 24, 5, 6), randn(10, 24, 1, 1), randn(10), randn(2, 10, 5, 6)
    (got,) = run("conv2d", {"x": x}, {"y": ((2, 10, 5, 6), np.float32)}, conv_attrs(schedule=split(4, 2, 16, 4)),
                 ["x", "w", "b"], {"w": w, "b": b, "res": res}, fuse=["res"], body=RESIDUAL_RELU)
    (conv,) = ort_run("Conv", [x, w, b])
    close(got, np.maximum(conv + res, 0), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- IR form and legality


def _conv_text(schedule: dict[str, int]) -> str:
    x, w = np.zeros((1, 96, 6, 6), np.float32), np.zeros((16, 96, 1, 1), np.float32)
    return stage3("conv2d", {"x": x}, {"w": w}, {"y": ((1, 16, 6, 6), np.float32)}, conv_attrs(schedule=schedule),
                  ["x", "w"])


def test_one_barrier_and_partials_in_workgroup_memory() -> None:
    ops = lowered_ops(_conv_text(split(4, 2, 16, 8)))
    assert ops.count("gpu.barrier") == 1 and ops.count("scf.parallel") == 3  # group + 2 thread loops
    assert "memref.allocamemref<512xf32, 3 : i64>" in ops  # partials: 8 slices x 8 accumulators x 8 lanes
    assert not any(op.startswith("memref.allocamemref<") and ", 3 : i64>" not in op for op in ops)  # no private arrays


@pytest.mark.parametrize("schedule,message", [
    ({**split(4, 2, 16, 8), "wg": 32}, "must be the 64 threads"),
    (split(4, 3, 16, 8), "must divide block_n"),
    ({**split(4, 2, 16, 8), "tile_k": 8}, "tile_k=8 is not used by stage=3"),
    ({**split(4, 2, 16, 8), "vec": 2}, "vec=2 is not used by stage=3"),
    (split(4, 1, 8, 128), "threads_k=128 exceeds the reduction's 96"),
    (split(16, 4, 256, 4), "partial sums need"),
    (split(1, 1, 16, 1, unroll=0), "unroll_k=0 unrolls slices of 96"),
    ({**split(4, 2, 16, 8), "stage": 0}, "threads_k=8 needs stage=3"),
])
def test_illegal_split_schedules(schedule: dict[str, int], message: str) -> None:
    from visc.errors import CompileError

    with pytest.raises(CompileError, match=message):
        lowered_ops(_conv_text(schedule))


def test_cuda_path_runs_on_host_and_assembles() -> None:
    """stage 3 through NVVM: the host emulator (a block's threads as OS threads meeting at the
    barrier) against onnxruntime, and the PTX through ptxas where it is installed."""
    from test_ptx_backend import PTXAS, HostEmulator

    from visc.backends.plan_extract import extract_plan
    from visc.backends.ptx import assemble, emit_ptx, find_libdevice
    from visc.passes.llvm import NVVM_PIPELINE

    x, w, b = randn(1, 40, 5, 5), randn(12, 40, 1, 1), randn(12)
    text = stage3("conv2d", {"x": x}, {"w": w, "b": b}, {"y": ((1, 12, 5, 5), np.float32)},
                  conv_attrs(schedule=split(4, 1, 16, 4, unroll=2)), ["x", "w", "b"])
    (want,) = ort_run("Conv", [x, w, b])
    for library in ("libm", "libdevice"):
        if library == "libdevice" and (find_libdevice() is None or PTXAS is None):
            continue
        module = parse(text)
        specs = ["lower-vision-to-loops", "map-loops-to-gpu",
                 *(s.replace("library=libdevice", f"library={library}") for s in NVVM_PIPELINE)]
        run_passes(module, specs, None)
        if library == "libm":
            emulator = HostEmulator(module, extract_plan(module), {"w": w, "b": b})
            close(emulator.run([x])[0], want, rtol=1e-4, atol=1e-4)
        else:
            ptx = emit_ptx(module, "sm_90", "8.0")
            assert "bar.sync" in ptx and ".shared" in ptx
            assemble(ptx, "sm_90")


# ---------------------------------------------------------------------------- tuner space


def test_split_branch_proposals_are_legal_and_fit_the_device() -> None:
    from visc.tuner.space import DeviceLimits, search_space

    x, w = np.zeros((1, 384, 14, 14), np.float32), np.zeros((64, 384, 1, 1), np.float32)
    text = stage3("conv2d", {"x": x}, {"w": w}, {"y": ((1, 64, 14, 14), np.float32)}, conv_attrs(), ["x", "w"])
    op = next(o for o in parse(text).walk() if o.name == "vision.conv2d")
    small = DeviceLimits("gpu", 256, 8 * 1024, 128)
    space = search_space(op, small)
    (branch,) = [b for b in space.branches if b.name == "split"]
    assert branch.choices["threads_k"] == [1, 2, 4, 8, 16, 32, 64]  # K = 384: slices of >= 4
    rng = np.random.default_rng(0)
    legal = 0
    for _ in range(400):
        sched = branch.schedule({k: int(rng.choice(v)) for k, v in branch.choices.items()})
        if not space.problems(sched):
            legal += 1
            assert sched["wg"] <= 256 and sched["tile_oc"] * sched["tile_ow"] * sched["wg"] * 4 <= 8 * 1024
    assert legal > 20
    assert search_space(op, DeviceLimits("cpu", 1024, 1 << 20, 256)).choices["threads_k"] == [1]  # GPUs only
