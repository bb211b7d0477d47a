"""The CPU backend (llvmlite, all cores) against onnxruntime (CPU, all cores, in a process of
its own) on the light models, runs interleaved: latency medians, ratios, and the max relative
error; the median and worst ratio; saves JSON.

    python benchmarks/cpu_backend.py [--models squeezenet,resnet50] [--repeat 10] [--json out.json]
    python benchmarks/cpu_backend.py --torchvision      # and the CNNs of benchmarks/models
    python benchmarks/cpu_backend.py --busy             # quiet, then with a process spinning on one core:
                                                        # each side's slowdown, from one run

The torchvision CNNs (benchmarks/export_models.py --set cnns) are stored with their weights
stripped and refilled here from seed 0 (`visc.tools.stripped_models`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator

import numpy as np
import onnx

from visc.compiler import compile_model
from visc.runtime.bench import OrtProcess, interleaved_medians, random_inputs
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.stripped_models import refill_weights
from visc.tools.visc_cli import print_table, rel_error

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def torchvision_models() -> list[str]:
    if not os.path.isdir(MODELS_DIR):
        return []
    return sorted(f[:-5] for f in os.listdir(MODELS_DIR) if f.endswith(".onnx"))


def load(name: str) -> onnx.ModelProto:
    if name in LIGHT_MODELS:
        return load_light_model(name, seed=0)
    path = os.path.join(MODELS_DIR, f"{name}.onnx")
    if not os.path.exists(path):
        raise SystemExit(f"unknown model {name}: not a light model ({', '.join(LIGHT_MODELS)}) nor {path}")
    return refill_weights(onnx.load(path), seed=0)


BUSY_WARMUP = 20


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy_core(enabled: bool) -> Iterator[None]:
    """A process spinning on core 0 (another program sharing the machine), while in the block."""
    if not enabled:
        yield
        return
    proc = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    proc.start()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(proc.pid, {0})
    try:
        yield
    finally:
        proc.kill()
        proc.join()


def bench(name: str, repeat: int, busy: bool = False) -> dict[str, object]:
    model = load(name)
    start = time.perf_counter()
    compiled = compile_model(model, target="cpu", cache=False)
    compile_s = time.perf_counter() - start
    inputs = random_inputs(compiled.plan.inputs, seed=1)
    feeds = dict(zip(compiled.input_names, inputs, strict=True))
    # onnxruntime in its own process; interleaved runs: the VM's drifts reach both sides alike
    with OrtProcess(model.SerializeToString(), feeds) as peer:
        want = peer.outputs()
        got = compiled.run(inputs)
        err = max(rel_error(g, w) for g, w in zip(got, want, strict=True))
        runner = compiled.runner(inputs)
        if busy:  # the quiet times first, in the same run: slowdowns from one run
            quiet_visc_s, quiet_ort_s = interleaved_medians([runner, peer], 2, repeat)
        with busy_core(busy):
            # under contention both get 20 untimed frames first: visc's pool choice
            # (visc.runtime.cpu_pool_choice) settles within about 12, the steady state is timed
            visc_s, ort_s = interleaved_medians([runner, peer], BUSY_WARMUP if busy else 2, repeat)
    row: dict[str, object] = {"model": name, "compile_s": compile_s, "visc_ms": visc_s * 1e3, "ort_ms": ort_s * 1e3,
                              "visc/ort": visc_s / ort_s, "max_rel_err": err, "threads": os.cpu_count()}
    if busy:
        row.update({"quiet_visc_ms": quiet_visc_s * 1e3, "quiet_ort_ms": quiet_ort_s * 1e3,
                    "visc_slowdown": visc_s / quiet_visc_s, "ort_slowdown": ort_s / quiet_ort_s})
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", default=",".join(LIGHT_MODELS))
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--torchvision", action="store_true", help="also the CNNs of benchmarks/models")
    p.add_argument("--busy", action="store_true", help="a process spins on core 0 while both are timed")
    p.add_argument("--json", default=None, help="default: benchmarks/results/cpu_backend[_busy].json")
    args = p.parse_args(argv)
    names = [n for n in args.models.split(",") if n] + (torchvision_models() if args.torchvision else [])
    rows = []
    for i, name in enumerate(names):
        print(f"[{i + 1}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        rows.append(bench(name, args.repeat, args.busy))
    print_table(rows, [("model", "model", ""), ("compile_s", "compile s", ".1f"), ("ort_ms", "onnxruntime ms", ".2f"),
                       ("visc_ms", "visc cpu ms", ".2f"), ("visc/ort", "visc/ort", ".2f"),
                       ("max_rel_err", "max rel err", ".1e")])
    ratios = [float(r["visc/ort"]) for r in rows]  # type: ignore[arg-type]
    summary = {"median_ratio": float(np.median(ratios)), "max_ratio": max(ratios),
               "worst": rows[int(np.argmax(ratios))]["model"], "busy_core": args.busy}
    print(f"visc/ort over {len(rows)} models: median {summary['median_ratio']:.2f}, worst {summary['max_ratio']:.2f} "
          f"({summary['worst']}){'; a process spinning on core 0' if args.busy else ''}")
    if args.busy:
        print("\nslowdown with the busy core (busy / quiet time, both measured in this run):")
        print_table(rows, [("model", "model", ""), ("quiet_ort_ms", "onnxruntime quiet ms", ".2f"),
                           ("ort_slowdown", "onnxruntime slowdown", ".2f"), ("quiet_visc_ms", "visc quiet ms", ".2f"),
                           ("visc_slowdown", "visc slowdown", ".2f")])
        visc_slow = [float(r["visc_slowdown"]) for r in rows]  # type: ignore[arg-type]
        ort_slow = [float(r["ort_slowdown"]) for r in rows]  # type: ignore[arg-type]
        summary.update({"median_visc_slowdown": float(np.median(visc_slow)),
                        "median_ort_slowdown": float(np.median(ort_slow)),
                        "visc_slower_on": [r["model"] for r, v, o in zip(rows, visc_slow, ort_slow, strict=True) if v > o]})
        print(f"median slowdown: visc {summary['median_visc_slowdown']:.2f}x, onnxruntime "
              f"{summary['median_ort_slowdown']:.2f}x; visc's is worse on {len(summary['visc_slower_on'])} of {len(rows)}")
    out = args.json or os.path.join(os.path.dirname(__file__), "results",
                                    f"cpu_backend{'_busy' if args.busy else ''}.json")
    with open(out, "w") as f:
        json.dump({"benchmark": "cpu_backend", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows,
                   "summary": summary, "numpy": np.__version__}, f, indent=2)
    args.json = out
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
