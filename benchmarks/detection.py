"""Benchmark: the detection models of tests/detection_models.py (YOLO- and SSD-style, NMS and
TopK inside the graph) compiled by visc against onnxruntime, in one process on one input.

Prints, per model: candidates above the score threshold, selected boxes, and for every visc
configuration in `CONFIGS` its compile seconds, latency, ratio to onnxruntime, the device
time of its TopK/NMS kernels, and whether it selects exactly onnxruntime's boxes; saves the
table as JSON. A configuration is one entry of `CONFIGS` (a name and how to compile a model),
so a new plan -- e.g. NMS and TopK on a CPU fallback -- is one more entry and its columns.

    python benchmarks/detection.py [--models yolo,ssd] [--size 128] [--repeat 20] [--threads 2]

``--torchvision [--target opencl] [--models NAME,...]``: torchvision's detectors instead (tests/models, weights
refilled as tests/test_detectors.py does), each compiled into a device stage and a host stage
for its data-dependent post-processing: per frame, the device and host stages' own times, the
whole frame run stage after stage and pipelined, against onnxruntime in a process of its own
(``--threads``, alternating blocks), and whether the detections match.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from detection_models import MODELS, image  # noqa: E402
from test_detectors import DETECTORS, check_detections, detector  # noqa: E402

from visc.compiler import compile_model  # noqa: E402
from visc.runtime.bench import OrtProcess, interleaved_medians, median_seconds, ort_session  # noqa: E402
from visc.tools.visc_cli import print_table  # noqa: E402

# visc configuration name -> compile(model, device); each adds the columns <name>_ms,
# <name>/ort, <name>_postproc_ms, <name>_same and <name>_compile_s
CONFIGS: dict[str, Callable[[onnx.ModelProto, str | None], Any]] = {
    "opencl": lambda model, device: compile_model(model, device=device),
    # the mixed plan: NMS and TopK on the CPU backend, the rest on OpenCL
    "fallback": lambda model, device: compile_model(model, device=device, fallback=["NonMaxSuppression", "TopK"]),
}
POSTPROC_KERNELS = ("nms_", "topk_")  # name prefixes of the post-processing kernels


def bench_model(name: str, size: int, device: str | None, repeat: int, threads: int) -> dict[str, Any]:
    model = MODELS[name](size=size)
    x = image(size)
    sess = ort_session(model.SerializeToString(), threads)
    want = sess.run(None, {"image": x})
    ort_s = median_seconds(lambda: sess.run(None, {"image": x}), 2, repeat)
    threshold = float(onnx.numpy_helper.to_array(
        next(t for t in model.graph.initializer if t.name == model.graph.node[-1].input[4]))[0])
    row: dict[str, Any] = {"model": name, "image": f"{size}x{size}",
                           "candidates": int((want[1] > threshold).sum()), "selected": len(want[2]),
                           "ort_ms": ort_s * 1e3}
    for config, build in CONFIGS.items():
        start = time.perf_counter()
        compiled = build(model, device)
        row[f"{config}_compile_s"] = time.perf_counter() - start
        got = compiled.run({"image": x})
        row["device"] = compiled.device_name
        row[f"{config}_same"] = bool(np.array_equal(got[2], want[2]))
        seconds = compiled.benchmark({"image": x}, warmup=2, repeat=repeat)["median"]
        row[f"{config}_ms"] = seconds * 1e3
        row[f"{config}/ort"] = seconds / ort_s
        profile = compiled.profile({"image": x})
        row[f"{config}_postproc_ms"] = 1e3 * sum(t for kernel, t in profile
                                                 if kernel.removeprefix("cpu_").startswith(POSTPROC_KERNELS))
    return row


def bench_torchvision(name: str, target: str, repeat: int, threads: int) -> dict[str, Any]:
    """One torchvision detector: compile, check against onnxruntime, time the stages alone,
    the frame sequential and pipelined, and onnxruntime."""
    model, x = detector(name)
    start = time.perf_counter()
    pipe = compile_model(model, target=target)
    compile_s = time.perf_counter() - start
    frame = {"image": x}
    try:
        with OrtProcess(model.SerializeToString(), frame, threads) as peer:
            want = peer.outputs()
            got = pipe.run(frame)
            try:
                check_detections(got, want)
                same = True
            except AssertionError:
                same = False
            visc_s, ort_s = interleaved_medians([lambda: pipe.run_sequential(frame), peer], 2, repeat)
        device_s, host_s = pipe.stage_seconds(frame, repeat=repeat)
        fps = pipe.benchmark(frame, frames=max(repeat, 8), warmup=3, sequential=False)["pipelined_fps"]
        nodes = [info.nodes for info in pipe.infos]
        return {"model": name, "target": target, "device": pipe.stages[0].executor().device_name,
                "compile_s": compile_s, "device_ops": nodes[0], "host_nodes": nodes[1],
                "detections": len(want[0]), "device_ms": device_s * 1e3, "host_ms": host_s * 1e3,
                "visc_ms": visc_s * 1e3, "ort_ms": ort_s * 1e3, "ratio": visc_s / ort_s,
                "pipelined_fps": fps, "ort_fps": 1.0 / ort_s, "same": same}
    finally:
        pipe.close()


TORCHVISION_COLUMNS = [("model", "model", ""), ("compile_s", "compile s", ".1f"), ("device_ops", "device ops", "d"),
                       ("host_nodes", "host nodes", "d"), ("detections", "detections", "d"),
                       ("device_ms", "device ms", ".1f"), ("host_ms", "host ms", ".1f"), ("visc_ms", "visc ms", ".1f"),
                       ("ort_ms", "ort ms", ".1f"), ("ratio", "visc/ort", ".2f"),
                       ("pipelined_fps", "pipelined f/s", ".1f"), ("ort_fps", "ort f/s", ".1f"),
                       ("same", "same detections", "")]


def columns() -> list[tuple[str, str, str]]:
    cols = [("model", "model", ""), ("image", "image", ""), ("candidates", "candidates", "d"),
            ("selected", "selected", "d"), ("ort_ms", "onnxruntime ms", ".2f")]
    for config in CONFIGS:
        cols += [(f"{config}_ms", f"{config} ms", ".2f"), (f"{config}/ort", f"{config}/ort", ".2f"),
                 (f"{config}_postproc_ms", f"{config} topk+nms ms", ".2f"),
                 (f"{config}_same", f"{config} same boxes", "")]
    return cols


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None,
                    help=f"comma-separated (default: {','.join(MODELS)}; with --torchvision: {','.join(DETECTORS)})")
    ap.add_argument("--size", type=int, default=128, help="input image side")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="onnxruntime intra-op threads")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "detection.json"))
    ap.add_argument("--torchvision", action="store_true", help="torchvision's detectors (tests/models)")
    ap.add_argument("--target", default="opencl", help="with --torchvision: the device stage's target")
    args = ap.parse_args(argv)
    if args.torchvision:
        return main_torchvision(args)
    names = args.models.split(",") if args.models else list(MODELS)
    rows = []
    for name in names:
        print(f"[{len(rows) + 1}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_model(name, args.size, args.device, args.repeat, args.threads))
    print(f"device: {rows[0]['device']}; onnxruntime threads: {args.threads}; repeat: {args.repeat}")
    print_table(rows, columns())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "detection", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(),
                   "cpus": os.cpu_count(), "onnxruntime_threads": args.threads, "configs": list(CONFIGS),
                   "rows": rows}, f, indent=1)
    print(f"saved {args.out}")
    return 0


def main_torchvision(args: argparse.Namespace) -> int:
    names = args.models.split(",") if args.models else list(DETECTORS)
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        print(f"unknown torchvision detector(s) {', '.join(unknown)}; known: {', '.join(DETECTORS)}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        print(f"[{len(rows) + 1}/{len(names)}] {name} on {args.target} ...", file=sys.stderr, flush=True)
        rows.append(bench_torchvision(name, args.target, args.repeat, args.threads))
    print(f"device: {rows[0]['device']}; onnxruntime threads: {args.threads} (own process); repeat: {args.repeat}")
    print_table(rows, TORCHVISION_COLUMNS)
    out = args.out.replace("detection.json", f"detection_torchvision_{args.target}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"benchmark": "detection-torchvision", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "host": platform.node(), "cpus": os.cpu_count(), "onnxruntime_threads": args.threads,
                   "target": args.target, "rows": rows}, f, indent=1)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
