"""Benchmark: visc on an NVIDIA GPU (CUDA PTX and OpenCL) against PyTorch (eager and CUDA
graphs, cuDNN, TF32 off), fp32, on torchvision CNNs with seeded random weights.

For each model and batch size, all in this one process on the same input:

* visc CUDA, graph: one CUDA-graph replay of the whole plan (input already on the GPU);
* visc CUDA, stream: the same launches one by one from Python (pycuda);
* visc CUDA, kernels: the sum of the kernels' own GPU times (each launch replayed alone in
  a graph, so caches are warm: a lower bound), and "gpu busy": the GPU time of one whole
  graph replay (events around it). Host and launch time is then `stream - gpu busy` when
  launching kernel by kernel and `graph - gpu busy` with a graph; `gpu busy - kernels` is
  what running the kernels in sequence costs on the GPU (gaps, colder caches); "kernels,
  cold L2": the same sum with the L2 flushed before each kernel (its weights come from DRAM);
* visc OpenCL: `run` on NVIDIA's OpenCL driver (input and output copies included), and the
  sum of its kernels' profiled times;
* PyTorch eager and PyTorch CUDA-graph replay of the same model (exported to ONNX for visc).

Latencies are medians of wall-clock times around synchronized runs, in milliseconds;
ratios are visc / PyTorch-with-graphs. The table is printed and saved as JSON.

    python benchmarks/gpu_vs_torch.py [--models resnet50,resnet18,mobilenet_v2,squeezenet1_1]
        [--batches 1,8] [--repeat 50] [--out benchmarks/results/gpu_vs_torch.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from visc.runtime.bench import median_seconds

MODELS = ("resnet50", "resnet18", "mobilenet_v2", "squeezenet1_1")

COLUMNS = (
    ("model", "model", ""),
    ("batch", "batch", "d"),
    ("launches", "launches", "d"),
    ("visc_cuda_graph_ms", "cuda graph", ".3f"),
    ("visc_cuda_stream_ms", "cuda stream", ".3f"),
    ("visc_cuda_kernel_ms", "cuda kernels", ".3f"),
    ("visc_opencl_ms", "opencl", ".3f"),
    ("visc_opencl_kernel_ms", "ocl kernels", ".3f"),
    ("torch_eager_ms", "torch eager", ".3f"),
    ("torch_graph_ms", "torch graph", ".3f"),
    ("ratio_cuda_graph", "cuda/torchG", ".2f"),
    ("ratio_opencl", "ocl/torchG", ".2f"),
    ("ratio_torch_eager", "eager/torchG", ".2f"),
    ("rel_err_cuda", "err cuda", ".1e"),
    ("rel_err_opencl", "err ocl", ".1e"),
)

OVERHEAD_COLUMNS = (
    ("model", "model", ""),
    ("batch", "batch", "d"),
    ("visc_cuda_kernel_ms", "kernels ms", ".3f"),
    ("visc_cuda_cold_kernel_ms", "kernels, cold L2 ms", ".3f"),
    ("visc_cuda_device_graph_ms", "gpu busy ms", ".3f"),
    ("visc_cuda_graph_ms", "graph wall ms", ".3f"),
    ("visc_cuda_stream_ms", "stream wall ms", ".3f"),
    ("sequence_ms", "busy-kernels", ".3f"),
    ("stream_overhead_ms", "stream host/launch", ".3f"),
    ("graph_overhead_ms", "graph host/launch", ".3f"),
    ("busy_share_stream", "gpu busy/stream", ".0%"),
    ("busy_share_graph", "gpu busy/graph", ".0%"),
    ("top_kernels", "slowest kernels (ms)", ""),
    ("cold_penalty_kernels", "largest cold-L2 penalty (warm->cold ms)", ""),
)


def median_ms(fn: Callable[[], Any], warmup: int, repeat: int) -> float:
    return median_seconds(fn, warmup, repeat) * 1e3


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    want = np.asarray(want, dtype=np.float64)
    return float(np.abs(np.asarray(got, dtype=np.float64) - want).max() / max(float(np.abs(want).max()), 1e-30))


def torch_model(name: str, seed: int) -> Any:
    import torch
    import torchvision

    torch.manual_seed(seed)
    return getattr(torchvision.models, name)(weights=None).eval()


def export_onnx(model: Any, x: Any) -> bytes:
    """The model as ONNX (opset 17), static shapes; TorchScript exporter first, else dynamo."""
    import torch

    errors = []
    for dynamo in (False, True):
        buf = io.BytesIO()
        try:
            torch.onnx.export(model, (x,), buf, input_names=["input"], output_names=["logits"], opset_version=17,
                              dynamo=dynamo)
            return buf.getvalue()
        except Exception as e:  # noqa: BLE001 - try the other exporter, report both if both fail
            errors.append(f"dynamo={dynamo}: {e}")
    raise RuntimeError("ONNX export failed: " + " | ".join(errors))


def bench_torch(model: Any, x: Any, warmup: int, repeat: int) -> tuple[float, float, np.ndarray]:
    """(eager ms, CUDA-graph replay ms, output) with the input already on the GPU."""
    import torch

    model = model.cuda()
    static = x.cuda()
    with torch.no_grad():
        def eager() -> None:
            model(static)
            torch.cuda.synchronize()

        eager_ms = median_ms(eager, warmup, repeat)
        out = model(static).float().cpu().numpy()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model(static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = model(static)

        def replay() -> None:
            graph.replay()
            torch.cuda.synchronize()

        graph_ms = median_ms(replay, warmup, repeat)
        replay()
        assert np.allclose(captured.float().cpu().numpy(), out, rtol=1e-3, atol=1e-4)
    model.cpu()
    torch.cuda.empty_cache()
    return eager_ms, graph_ms, out


def bench_visc_cuda(onnx_bytes: bytes, x: np.ndarray, warmup: int, repeat: int) -> dict[str, Any]:
    import visc

    start = time.perf_counter()
    model = visc.compile(onnx_bytes, target="cuda")
    row: dict[str, Any] = {"visc_cuda_compile_s": time.perf_counter() - start,
                           "launches": len(model.plan.launches), "kernels": model.report.num_kernels,
                           "cuda_arch": model.metadata.get("cuda_arch")}
    ex = model.executor()
    out = model.run([x])[0]
    ex.set_inputs([x])
    row["visc_cuda_graph_ms"] = median_ms(lambda: ex.launch(use_graph=True), warmup, repeat)
    row["visc_cuda_stream_ms"] = median_ms(lambda: ex.launch(use_graph=False), warmup, repeat)
    row["visc_cuda_run_ms"] = median_ms(lambda: ex.run([x]), warmup, repeat)
    kernels = ex.kernel_times(repeat=5)
    row["visc_cuda_kernel_ms"] = sum(t for _, _, t in kernels) * 1e3
    row["visc_cuda_device_graph_ms"] = ex.device_time(use_graph=True, repeat=repeat) * 1e3
    row["visc_cuda_device_stream_ms"] = ex.device_time(use_graph=False, repeat=repeat) * 1e3
    cold = ex.kernel_times(repeat=5, cold=True)
    row["visc_cuda_cold_kernel_ms"] = sum(t for _, _, t in cold) * 1e3
    worst = sorted(zip(kernels, cold, strict=True), key=lambda kc: -(kc[1][2] - kc[0][2]))[:5]
    row["cold_penalty_kernels"] = ", ".join(f"{node or name} {w * 1e3:.3f}->{c * 1e3:.3f}"
                                            for (name, node, w), (_, _, c) in worst)
    slowest = sorted(kernels, key=lambda k: -k[2])[:3]
    row["top_kernels"] = ", ".join(f"{node or name} {t * 1e3:.2f}" for name, node, t in slowest)
    row["kernel_times"] = [{"kernel": name, "node": node, "ms": t * 1e3, "cold_ms": c * 1e3}
                           for (name, node, t), (_, _, c) in zip(kernels, cold, strict=True)]
    row["device"] = model.device_name
    ex.close()
    return {**row, "_out": out}


def bench_visc_opencl(onnx_bytes: bytes, x: np.ndarray, warmup: int, repeat: int) -> dict[str, Any]:
    import visc

    start = time.perf_counter()
    model = visc.compile(onnx_bytes, target="opencl")
    row: dict[str, Any] = {"visc_opencl_compile_s": time.perf_counter() - start}
    out = model.run([x])[0]
    row["visc_opencl_ms"] = median_ms(lambda: model.run([x]), warmup, repeat)
    row["visc_opencl_kernel_ms"] = float(np.median([sum(t for _, t in model.profile([x])) for _ in range(5)])) * 1e3
    row["opencl_device"] = model.device_name
    return {**row, "_out": out}


def bench(name: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    row: dict[str, Any] = {"model": name, "batch": batch}
    net = torch_model(name, args.seed)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
    onnx_bytes = export_onnx(net, torch.from_numpy(x))
    eager_ms, graph_ms, ref = bench_torch(net, torch.from_numpy(x), args.warmup, args.repeat)
    row.update(torch_eager_ms=eager_ms, torch_graph_ms=graph_ms)
    for target, fn in (("cuda", bench_visc_cuda), ("opencl", bench_visc_opencl)):
        if target not in args.targets:
            continue
        try:
            result = fn(onnx_bytes, x, args.warmup, args.repeat)
            out = result.pop("_out")
            row.update(result)
            row[f"rel_err_{target}"] = rel_error(out, ref)
        except Exception as e:  # noqa: BLE001 - one failing target must not hide the others
            traceback.print_exc()
            row[f"{target}_error"] = f"{type(e).__name__}: {e}"
    derive(row)
    return row


def derive(row: dict[str, Any]) -> None:
    """Ratios to PyTorch with graphs, and where visc CUDA's time goes."""
    graph = row["torch_graph_ms"]
    for key, src in (("ratio_cuda_graph", "visc_cuda_graph_ms"), ("ratio_cuda_stream", "visc_cuda_stream_ms"),
                     ("ratio_opencl", "visc_opencl_ms"), ("ratio_torch_eager", "torch_eager_ms")):
        if src in row:
            row[key] = row[src] / graph
    if "visc_cuda_device_graph_ms" in row:
        busy = row["visc_cuda_device_graph_ms"]
        row["sequence_ms"] = busy - row["visc_cuda_kernel_ms"]
        row["stream_overhead_ms"] = max(0.0, row["visc_cuda_stream_ms"] - busy)
        row["graph_overhead_ms"] = max(0.0, row["visc_cuda_graph_ms"] - busy)
        row["busy_share_stream"] = busy / row["visc_cuda_stream_ms"]
        row["busy_share_graph"] = busy / row["visc_cuda_graph_ms"]
        for stale in ("kernel_share_stream", "kernel_share_graph"):
            row.pop(stale, None)


def print_tables(rows: list[dict[str, Any]], env: dict[str, Any], repeat: int) -> None:
    print(f"GPU: {env['gpu']}; torch {env['torch']} (cuDNN {env['cudnn']}, TF32 off); visc {env['visc']}; "
          f"median of {repeat} runs; ms")
    print_table(rows, COLUMNS)
    print("\nwhere the time goes (visc CUDA): kernels, GPU busy time, host/launch time")
    print_table(rows, OVERHEAD_COLUMNS)


def print_table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str, str], ...]) -> None:
    def cell(row: dict[str, Any], key: str, fmt: str) -> str:
        if key not in row:
            return "-"
        return format(row[key], fmt) if fmt else str(row[key])

    cells = [[h for _, h, _ in columns]] + [[cell(r, k, f) for k, _, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    for j, line in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def environment() -> dict[str, Any]:
    import llvmlite
    import torch

    import visc

    info: dict[str, Any] = {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
                            "cudnn": torch.backends.cudnn.version(), "visc": visc.__version__,
                            "llvmlite": llvmlite.__version__, "gpu": torch.cuda.get_device_name(0),
                            "tf32": False, "cudnn_benchmark": True}
    try:
        import pycuda.driver as drv

        drv.init()
        info["cuda_driver"] = drv.get_driver_version()
    except Exception as e:  # noqa: BLE001
        info["cuda_driver"] = f"unknown ({e})"
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--targets", default="cuda,opencl")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "gpu_vs_torch.json"))
    ap.add_argument("--table", metavar="JSON", help="only print the tables of a saved run (derived columns redone)")
    args = ap.parse_args(argv)
    args.targets = args.targets.split(",")
    if args.table:
        with open(args.table) as f:
            saved = json.load(f)
        for row in saved["rows"]:
            derive(row)
        print_tables(saved["rows"], saved["environment"], saved["repeat"])
        return 0

    import torch

    if not torch.cuda.is_available():
        print("gpu_vs_torch: no CUDA device visible to PyTorch", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.enabled = True
    torch.backends.cudnn.benchmark = True
    rows = []
    jobs = [(m, int(b)) for m in args.models.split(",") for b in args.batches.split(",")]
    for i, (name, batch) in enumerate(jobs, start=1):
        print(f"[{i}/{len(jobs)}] {name} batch {batch} ...", file=sys.stderr, flush=True)
        rows.append(bench(name, batch, args))
    env = environment()
    print_tables(rows, env, args.repeat)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "gpu_vs_torch", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "environment": env,
                   "repeat": args.repeat, "warmup": args.warmup, "rows": rows}, f, indent=1)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
