"""Tune the conv/matmul/pool tasks of torchvision CNNs on the GPU of this machine, in parallel
worker processes (each its own SQLite file, merged at the end), and export the best records
as a shipped-records JSON (visc/tuner/shipped/).

Compiling a proposal (xDSL passes, llvmlite's NVPTX backend) takes the CPU far longer than the
kernel takes the GPU, so workers compile side by side and only the short timed runs share the
GPU. Needs torch/torchvision (the models are exported to ONNX here, as
benchmarks/gpu_vs_torch.py does), a GPU, and visc with its CUDA extra; downloads nothing.

    python scripts/gpu/tune_models.py --models resnet50,mobilenet_v2 --trials 16 --jobs 8 \
        --out /tmp/tune --export visc/tuner/shipped/cuda_h100.json [--target cuda|opencl]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from typing import Any

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "benchmarks")]


def export_models(names: list[str], batch: int, out: str) -> list[str]:
    import torch
    from gpu_vs_torch import export_onnx, torch_model

    paths = []
    for name in names:
        path = os.path.join(out, f"{name}_b{batch}.onnx")
        x = torch.randn(batch, 3, 224, 224)
        with open(path, "wb") as f:
            f.write(export_onnx(torch_model(name, 0), x))
        paths.append(path)
    return paths


def worker(args: tuple[int, list[Any], str, str, int, int]) -> list[dict[str, Any]]:
    index, tasks, target, out, trials, seed = args
    from visc.tuner.measure import Measurer, device_identity
    from visc.tuner.search import open_storage, tune_task

    storage = open_storage(os.path.join(out, f"worker{index}.db"))
    device_id = device_identity(target, None)
    rows = []
    for task in tasks:
        start = time.perf_counter()
        # the worker is its own process already: measure in it (a pool worker may not fork)
        measurer = Measurer(task.module_text, target, None, warmup=2, repeat=10, timeout=10.0, seed=seed)
        result = tune_task(task, measurer, storage, device_id, trials, "tpe", seed, False, None)
        rows.append({"task": task.describe()[:60], "default_us": (result.default_seconds or 0) * 1e6,
                     "best_us": (result.best_seconds or 0) * 1e6, "speedup": result.speedup or 0.0,
                     "seconds": time.perf_counter() - start})
        print(f"[worker {index}] {rows[-1]}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="resnet50,mobilenet_v2")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--target", default="cuda", choices=["cuda", "opencl"])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/visc-tune")
    ap.add_argument("--export", required=True, help="the merged best records (JSON) are written here")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    from visc.tuner.records import export_records, import_records
    from visc.tuner.workload import model_tasks

    paths = export_models(args.models.split(","), args.batch, args.out)
    tasks: dict[str, Any] = {}
    for path in paths:
        for task in model_tasks(path):
            tasks.setdefault(task.key, task)
    ordered = sorted(tasks.values(), key=lambda t: -t.weight)
    chunks = [ordered[i::args.jobs] for i in range(args.jobs)]
    print(f"{len(ordered)} distinct tasks over {args.jobs} workers, {args.trials} trials each", flush=True)
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = [r for part in pool.map(worker, [(i, c, args.target, args.out, args.trials, args.seed)
                                                 for i, c in enumerate(chunks) if c]) for r in part]
    merged = os.path.join(args.out, "merged.db")
    for i in range(args.jobs):
        part = os.path.join(args.out, f"worker{i}.json")
        db = os.path.join(args.out, f"worker{i}.db")
        if os.path.exists(db) and export_records(db, part):
            import_records(merged, part)
    n = export_records(merged, args.export)
    with open(os.path.join(args.out, "tune_rows.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(f"exported {n} records to {args.export}")
    for r in rows:
        print(f"{r['task']:60s} default {r['default_us']:9.1f} us  best {r['best_us']:9.1f} us  x{r['speedup']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
