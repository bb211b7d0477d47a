"""Staged (shared-memory) conv2d schedules on an NVIDIA GPU against PyTorch/cuDNN, fp32.

For each ResNet-50 convolution shape (batch 1 by default) a single Conv+Relu ONNX model is
built in memory (seeded random weights), compiled with ``target="cuda"`` under the old
unstaged GPU default (``stage = 0``), the new default heuristic and a few explicit staged
schedules; every build's output is checked against ``torch.nn.functional.conv2d`` + relu
(TF32 off), and a table of GPU times is printed: the whole plan (one kernel) replayed as a
CUDA graph between CUDA events, median of ``--repeat``, against cuDNN timed the same way.
Needs torch, pycuda + cuda-python (``pip install 'visc[cuda]'``) and a GPU; downloads nothing.

    python scripts/gpu/staged_conv_check.py [--batch 1] [--repeat 50] [--arch sm_90] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

# (C, H, O, K, stride): ResNet-50's convolution shapes (square images, pad K // 2)
SHAPES = [
    (3, 224, 64, 7, 2),  # stem
    (64, 56, 64, 1, 1), (64, 56, 64, 3, 1), (64, 56, 256, 1, 1), (256, 56, 64, 1, 1),
    (256, 56, 128, 1, 1), (128, 56, 128, 3, 2), (128, 28, 128, 3, 1), (128, 28, 512, 1, 1), (512, 28, 128, 1, 1),
    (512, 28, 256, 1, 1), (256, 28, 256, 3, 2), (256, 14, 256, 3, 1), (256, 14, 1024, 1, 1),
    (1024, 14, 256, 1, 1), (1024, 14, 512, 1, 1), (512, 14, 512, 3, 2), (512, 7, 512, 3, 1),
    (512, 7, 2048, 1, 1), (2048, 7, 512, 1, 1),
]


def staged(stage: int, bm: int, bn: int, bk: int, tm: int, tn: int) -> dict[str, int]:
    return {"stage": stage, "block_m": bm, "block_n": bn, "tile_k": bk, "tile_oc": tm, "tile_ow": tn,
            "wg": (bm // tm) * (bn // tn), "unroll_k": 0}


# name -> schedule (None: the compiler's default; "old": the unstaged default of before)
SCHEDULES: dict[str, Any] = {
    "old default": "old",
    "default": None,
    "s2 64x64 k16 4x4": staged(2, 64, 64, 16, 4, 4),
    "s2 64x32 k16 4x4": staged(2, 64, 32, 16, 4, 4),
    "s2 32x32 k16 2x4": staged(2, 32, 32, 16, 2, 4),
    "s2 128x64 k8 8x4": staged(2, 128, 64, 8, 8, 4),
    "s2 32x16 k32 2x2": staged(2, 32, 16, 32, 2, 2),
    "s1 64x64 k16 4x4": staged(1, 64, 64, 16, 4, 4),
}


def conv_model(n: int, c: int, hw: int, o: int, k: int, stride: int, w: np.ndarray, b: np.ndarray):
    from onnx import TensorProto, helper, numpy_helper

    p = k // 2
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[p] * 4, strides=[stride] * 2, name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, hw, hw])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def compile_with(model, schedule: Any, arch: str | None):
    """Compile for CUDA; `schedule` replaces the conv's default schedule (after bufferization)."""
    from visc.compiler import GRAPH_PIPELINE, finish_module, run_passes
    from visc.dialects.vision import Conv2dOp, ScheduleAttr
    from visc.frontend.onnx import import_model
    from visc.passes.llvm import NVVM_PIPELINE

    imported = import_model(model)
    module, weights = imported.module, imported.weights
    run_passes(module, [*GRAPH_PIPELINE, "vision-bufferize"], weights)
    conv = next(op for op in module.walk() if isinstance(op, Conv2dOp))
    if schedule == "old":  # what the GPU heuristic gave before staging: the register-tiled kernel
        conv.attributes["schedule"] = ScheduleAttr(_unstaged_default(conv))
    elif schedule is not None:
        conv.attributes["schedule"] = ScheduleAttr(dict(schedule))
    run_passes(module, ["vision-default-schedule{target=cuda device_type=gpu}", "lower-vision-to-loops",
                        "map-loops-to-gpu", *NVVM_PIPELINE], weights)
    return finish_module(module, weights, "cuda", arch=arch), dict(conv.attributes["schedule"].as_dict())


def _unstaged_default(conv) -> dict[str, int]:
    """The GPU heuristic's register-tiled schedule (stage 0), as before staging existed."""
    from visc.passes.lowering import default_schedule as ds

    saved = ds._staged
    ds._staged = lambda *a, **k: None  # type: ignore[assignment]
    try:
        return ds.default_schedule(conv, "gpu", 256, "cuda")
    finally:
        ds._staged = saved


def torch_time_ms(fn, repeat: int) -> float:
    import torch

    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--arch", default=None, help="e.g. sm_90 (default: the GPU found)")
    parser.add_argument("--shapes", default="", help="indices into the shape list, e.g. 0,2,5 (default: all)")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F  # noqa: N812

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, batch {args.batch}, "
          f"median of {args.repeat}", flush=True)
    picks = [int(i) for i in args.shapes.split(",")] if args.shapes else range(len(SHAPES))
    rows: list[dict[str, Any]] = []
    names = list(SCHEDULES)
    header = f"{'shape (C,HW,O,K,s)':<26}{'torch':>8}" + "".join(f"{n:>19}" for n in names)
    print(header)
    failures = 0
    for i in picks:
        c, hw, o, k, s = SHAPES[i]
        rng = np.random.default_rng(i)
        x = rng.standard_normal((args.batch, c, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        xt, wt, bt = (torch.from_numpy(a).to(dev) for a in (x, w, b))
        def reference(xt=xt, wt=wt, bt=bt, s=s, k=k):
            return torch.relu(F.conv2d(xt, wt, bt, stride=s, padding=k // 2))

        with torch.no_grad():
            want = reference()
            torch_ms = torch_time_ms(reference, args.repeat)
        want_np = want.cpu().numpy()
        model = conv_model(args.batch, c, hw, o, k, s, w, b)
        row: dict[str, Any] = {"shape": [c, hw, o, k, s], "batch": args.batch, "torch_ms": torch_ms, "visc": {}}
        cells = []
        for name in names:
            t0 = time.perf_counter()
            try:
                compiled, sched = compile_with(model, SCHEDULES[name], args.arch)
                got = compiled.run([x])[0]
                err = float(np.abs(got - want_np).max() / max(1e-6, np.abs(want_np).max()))
                ex = compiled.executor()
                ex.set_inputs([x])
                ms = ex.device_time(use_graph=True, repeat=args.repeat) * 1e3
                ok = err <= 1e-4
                failures += not ok
                row["visc"][name] = {"ms": ms, "rel_err": err, "schedule": sched,
                                     "compile_s": time.perf_counter() - t0}
                cells.append(f"{ms:8.3f} ({ms / torch_ms:4.1f}x){'' if ok else ' BAD'}")
            except Exception as e:  # noqa: BLE001 (a table cell per failure, keep going)
                failures += 1
                row["visc"][name] = {"error": f"{type(e).__name__}: {e}"}
                cells.append(f"{'error':>18}")
        rows.append(row)
        print(f"{str((c, hw, o, k, s)):<26}{torch_ms:8.3f}" + "".join(f"{cell:>19}" for cell in cells), flush=True)
    totals = {n: sum(r["visc"][n].get("ms", float("nan")) for r in rows) for n in names}
    print(f"{'total':<26}{sum(r['torch_ms'] for r in rows):8.3f}" + "".join(f"{totals[n]:19.3f}" for n in names))
    for r in rows:
        for n, v in r["visc"].items():
            if "error" in v:
                print(f"{r['shape']} {n}: {v['error']}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(0), "rows": rows}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
