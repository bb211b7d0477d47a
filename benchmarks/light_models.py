"""Benchmark: the nine model-zoo CNNs on the default OpenCL device against onnxruntime.

Prints, per model: import+compile seconds, peak arena bytes (and the unplanned sum for
comparison), visc latency, onnxruntime latency, their ratio, and the largest relative
difference; saves the table as JSON. Both run in this one process on the same inputs.

    python benchmarks/light_models.py [--models resnet50,squeezenet] [--repeat 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.visc_cli import bench_one, print_table

COLUMNS = (
    ("model", "model", ""),
    ("compile_s", "import+compile s", ".2f"),
    ("arena_bytes", "peak arena B", ","),
    ("arena_naive_bytes", "unplanned B", ","),
    ("kernels", "kernels", "d"),
    ("visc_ms", "visc ms", ".2f"),
    ("ort_ms", "onnxruntime ms", ".2f"),
    ("ratio", "visc/ort", ".2f"),
    ("max_rel_err", "max rel err", ".1e"),
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(LIGHT_MODELS))
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="onnxruntime intra-op threads")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "light_models.json"))
    args = ap.parse_args(argv)
    rows = []
    for name in args.models.split(","):
        print(f"[{len(rows) + 1}/{len(args.models.split(','))}] {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_one(load_light_model(name, seed=0), args.device, args.repeat, args.threads, name=name))
    print(f"device: {rows[0]['device']}; onnxruntime threads: {args.threads}; repeat: {args.repeat}")
    print_table(rows, COLUMNS)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "light_models", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "host": platform.node(), "cpus": os.cpu_count(), "onnxruntime_threads": args.threads,
                   "rows": rows}, f, indent=1)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
