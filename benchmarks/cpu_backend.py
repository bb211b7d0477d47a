"""The CPU backend (llvmlite, all cores) against onnxruntime (CPU, all cores) on the light
models, in one process run: latency medians, ratios, and the max relative error; saves JSON.

    python benchmarks/cpu_backend.py [--models squeezenet,resnet50] [--repeat 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from visc.compiler import compile_model
from visc.runtime.bench import OrtProcess, interleaved_medians, random_inputs
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.visc_cli import print_table, rel_error


def bench(name: str, repeat: int) -> dict[str, object]:
    model = load_light_model(name, seed=0)
    start = time.perf_counter()
    compiled = compile_model(model, target="cpu")
    compile_s = time.perf_counter() - start
    inputs = random_inputs(compiled.plan.inputs, seed=1)
    feeds = dict(zip(compiled.input_names, inputs, strict=True))
    # onnxruntime in its own process; interleaved runs: the VM's drifts reach both sides alike
    with OrtProcess(model.SerializeToString(), feeds) as peer:
        want = peer.outputs()
        got = compiled.run(inputs)
        err = max(rel_error(g, w) for g, w in zip(got, want, strict=True))
        visc_s, ort_s = interleaved_medians([compiled.runner(inputs), peer], 2, repeat)
    return {"model": name, "compile_s": compile_s, "visc_ms": visc_s * 1e3, "ort_ms": ort_s * 1e3,
            "visc/ort": visc_s / ort_s, "max_rel_err": err, "threads": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", default=",".join(LIGHT_MODELS))
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results", "cpu_backend.json"))
    args = p.parse_args(argv)
    rows = [bench(name, args.repeat) for name in args.models.split(",") if name]
    print_table(rows, [("model", "model", ""), ("compile_s", "compile s", ".1f"), ("ort_ms", "onnxruntime ms", ".2f"),
                       ("visc_ms", "visc cpu ms", ".2f"), ("visc/ort", "visc/ort", ".2f"),
                       ("max_rel_err", "max rel err", ".1e")])
    with open(args.json, "w") as f:
        json.dump({"benchmark": "cpu_backend", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows,
                   "numpy": np.__version__}, f, indent=2)
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
