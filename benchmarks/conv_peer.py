"""Benchmark: the tuner-quality convs on CUDA against cuDNN (PyTorch), one kernel at a time, cold L2.

Issue 5 asks that each tuned conv be at least 3x faster than its untuned default (the naive
schedule of `tuner_quality.py`: one output per thread). That can only hold where the naive
kernel leaves 3x on the table. This benchmark measures how much there is, in one process on
one GPU, per workload:

* visc: the naive, the heuristic and the best schedule (`--best-from`: a `tuner_quality.py`
  JSON; its re-timed fastest schedule per workload), each built and timed by
  `visc.tuner.measure.Measurer` (L2 flushed and the stream held before every timed run:
  the tuner's own measurement);
* cuDNN: `torch.nn.functional.conv2d` with bias (cuDNN's fastest algorithm,
  `cudnn.benchmark`, TF32 off), timed the same way: the L2 flushed, the stream held by
  `torch.cuda._sleep`, events around the one call; the activation of visc's fused epilogue
  is not included on the cuDNN side;
* floors: an empty kernel timed the same way (what events and a launch cost); the DRAM
  floor, the bytes a conv must move (input, weights, output) at the GPU's peak DRAM
  bandwidth (`--dram-gbs`, default the H100 SXM's 3350 GB/s); and the copy floor, PyTorch
  copying as many bytes as the conv moves (half read, half written) timed the same way:
  a plain copy pays the launch, the cold-L2 DRAM latency and the bandwidth, and no conv
  can move its bytes faster.

"naive/cuDNN" is the most any schedule could gain over the naive one if it matched cuDNN;
"naive/floor" (the highest floor) bounds it for any kernel at all.

    python benchmarks/conv_peer.py [--best-from benchmarks/results/tuner_quality_cuda_h100_confirm.json]
        [--workloads "M dw 3x3,R 3x3"] [--batch 1] [--repeat 50] [--out benchmarks/results/conv_peer.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tuner_quality import KINDS, conv_fields, naive_schedule, pick_workloads  # noqa: E402

from visc.tools.visc_cli import print_table  # noqa: E402
from visc.tuner.measure import Measurer  # noqa: E402
from visc.tuner.workload import Workload  # noqa: E402

COLUMNS = (
    ("kind", "kind", ""),
    ("workload", "workload", ""),
    ("naive_us", "naive us", ".1f"),
    ("heuristic_us", "heuristic us", ".1f"),
    ("best_us", "best us", ".1f"),
    ("cudnn_us", "cuDNN us", ".1f"),
    ("empty_us", "empty kernel us", ".1f"),
    ("dram_us", "DRAM floor us", ".1f"),
    ("copy_us", "copy floor us", ".1f"),
    ("naive_vs_best", "naive/best", ".2f"),
    ("naive_vs_cudnn", "naive/cuDNN", ".2f"),
    ("best_vs_cudnn", "best/cuDNN", ".2f"),
    ("naive_vs_floor", "naive/floor", ".2f"),
)


def conv_params(work: Workload) -> dict[str, Any]:
    """Shapes, stride, padding and groups of a conv workload (symmetric padding)."""
    x, w, out, stride, groups = conv_fields(work)
    pad = ((out[2] - 1) * stride + w[2] - x[2] + 1) // 2
    return {"x": x, "w": w, "out": out, "stride": stride, "pad": pad, "groups": groups}


def torch_times(params: list[dict[str, Any]], repeat: int,
                hold_s: float = 300e-6) -> tuple[list[float], list[float], float]:
    """cuDNN's cold-L2 time of each conv, a copy of as many bytes as it moves, and an empty
    kernel's, in seconds (medians)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    flush = torch.empty(64 * 2**20, dtype=torch.float32, device=dev)  # 256 MB, 5x the L2
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    # cycles the stream is held for: the SM clock (kHz; the H100's 1.98 GHz when torch does not say)
    cycles = int(getattr(torch.cuda.get_device_properties(0), "clock_rate", 1.98e6) * 1e3 * hold_s)

    def timed(fn: Any) -> float:
        for _ in range(5):
            fn()
        runs = []
        for _ in range(repeat):
            flush.zero_()
            torch.cuda._sleep(cycles)
            start.record()
            fn()
            end.record()
            end.synchronize()
            runs.append(start.elapsed_time(end) * 1e-3)
        return statistics.median(runs)

    out, copies = [], []
    for p in params:
        x = torch.randn(p["x"], device=dev)
        w = torch.randn(p["w"], device=dev) * 0.05
        b = torch.randn(p["w"][0], device=dev)
        got = torch.nn.functional.conv2d(x, w, b, p["stride"], p["pad"], 1, p["groups"])
        if tuple(got.shape) != p["out"]:
            raise SystemExit(f"torch conv gives {tuple(got.shape)}, the workload {p['out']}")
        out.append(timed(lambda x=x, w=w, b=b, p=p: torch.nn.functional.conv2d(
            x, w, b, p["stride"], p["pad"], 1, p["groups"])))
        half = int(np.prod(p["x"]) + np.prod(p["w"]) + np.prod(p["out"])) // 2
        src, dst = torch.randn(half, device=dev), torch.empty(half, device=dev)
        copies.append(timed(lambda src=src, dst=dst: dst.copy_(src)))
    one = torch.zeros(1, device=dev)
    return out, copies, timed(lambda: one.add_(1.0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default=",".join(KINDS), help="comma-separated kinds (tuner_quality.py --list)")
    ap.add_argument("--best-from", default=None, help="a tuner_quality.py JSON whose best schedules are timed too")
    ap.add_argument("--batch", type=int, default=1, help="the models' batch size (their convs' dim 0)")
    ap.add_argument("--repeat", type=int, default=50, help="timed runs per kernel (median)")
    ap.add_argument("--dram-gbs", type=float, default=3350.0, help="the GPU's peak DRAM bandwidth, GB/s")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "conv_peer.json"))
    args = ap.parse_args(argv)
    labels = [w.strip() for w in args.workloads.split(",") if w.strip()]
    best_of: dict[str, dict[str, int]] = {}
    if args.best_from:
        for row in json.load(open(args.best_from))["rows"]:
            if row.get("retimed"):
                best_of[row["key"]] = row["retimed"][0]["schedule"]
    picked = pick_workloads(labels, 0, args.batch)
    rows = []
    for label, task in picked:
        m = Measurer(task.module_text, "cuda", warmup=3, repeat=args.repeat)
        heuristic = dict(m.default_schedule)
        row: dict[str, Any] = {"kind": label, "workload": task.describe(), "key": task.key}
        for name, sched in (("naive", naive_schedule(heuristic)), ("heuristic", heuristic),
                            ("best", best_of.get(task.key))):
            if sched is None:
                continue
            got = m.measure(sched)
            if not got.ok:
                raise SystemExit(f"{label}: the {name} schedule failed: {got.error}")
            row[f"{name}_us"] = got.seconds * 1e6
            row[f"{name}_schedule"] = sched
        p = conv_params(task.workload)
        row["params"] = p
        moved = 4 * (np.prod(p["x"]) + np.prod(p["w"]) + np.prod(p["out"]))
        row["dram_us"] = float(moved / (args.dram_gbs * 1e9) * 1e6)
        rows.append(row)
        print(f"  {label}: naive {row['naive_us']:.1f} us, heuristic {row['heuristic_us']:.1f} us", flush=True)
    cudnn, copies, empty = torch_times([r["params"] for r in rows], args.repeat)
    for r, t, c in zip(rows, cudnn, copies, strict=True):
        r["cudnn_us"], r["copy_us"], r["empty_us"] = t * 1e6, c * 1e6, empty * 1e6
        r["naive_vs_cudnn"] = r["naive_us"] / r["cudnn_us"]
        r["naive_vs_floor"] = r["naive_us"] / max(r["empty_us"], r["dram_us"], r["copy_us"])
        if "best_us" in r:
            r["naive_vs_best"] = r["naive_us"] / r["best_us"]
            r["best_vs_cudnn"] = r["best_us"] / r["cudnn_us"]
    import torch

    env = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "cudnn": torch.backends.cudnn.version(), "repeat": args.repeat, "dram_gbs": args.dram_gbs,
           "best_from": args.best_from, "batch": args.batch, "python": sys.version.split()[0], "machine": platform.machine()}
    print(f"GPU: {env['gpu']}; torch {env['torch']} (cuDNN {env['cudnn']}, TF32 off); cold L2; "
          f"median of {args.repeat}")
    print_table(rows, [c for c in COLUMNS if all(c[0] in r for r in rows)])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"env": env, "rows": rows}, f, indent=1)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
