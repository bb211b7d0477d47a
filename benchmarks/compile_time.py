"""Benchmark: how long visc takes to compile and to load, per model and target.

For each model and target, three fresh processes (so no state of one step helps the next):
  cold    `visc.compile` with an empty compile cache (the time a first compile costs),
  cached  `visc.compile` again in a new process over that cache (what a re-run costs),
  load    `visc.load` of the saved artifact up to a ready executor (what deployment costs);
and where the cold compile's time goes (`CompileReport.seconds`, the largest stages). Times
are of the calls; `cold process s` is the whole cold process (Python, imports, compile, save).

    python benchmarks/compile_time.py [--models resnet50,squeezenet] [--targets cpu,opencl,cuda]

Targets default to those this machine can run (cuda with pycuda and a GPU, opencl with a
device); a target named but not runnable here (cuda without a GPU: PTX for sm_80) is compiled
and cached but not loaded. Prints a table and saves JSON (benchmarks/results/compile_time_<host kind>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.visc_cli import print_table

COLUMNS = (
    ("model", "model", ""),
    ("target", "target", ""),
    ("process_s", "cold process s", ".2f"),
    ("cold_s", "cold s", ".2f"),
    ("cached_s", "cached s", ".2f"),
    ("load_s", "load s", ".3f"),
    ("first_run_s", "first run s", ".3f"),
    ("kernels", "kernels", "d"),
    ("where", "cold compile: largest stages (s)", ""),
)


def _child(request: dict[str, str]) -> dict[str, object]:
    """One step in this (fresh) process; the parent reads the JSON it prints."""
    import numpy as np

    import visc

    target, model_path, artifact = request["target"], request["model"], request["artifact"]
    if request["step"] in ("cold", "cached"):
        start = time.perf_counter()
        model = visc.compile(model_path, target=target)
        seconds = time.perf_counter() - start
        if request["step"] == "cold":
            model.save(artifact)
        return {"seconds": seconds, "cached": bool(model.report.cached),
                "stages": model.report.seconds, "kernels": model.report.num_kernels}
    start = time.perf_counter()
    loaded = visc.load(artifact)
    loaded.executor()
    seconds = time.perf_counter() - start
    feeds = {t.name: np.random.default_rng(0).random(t.shape).astype(t.dtype) for t in loaded.plan.inputs}
    start = time.perf_counter()
    loaded.run(feeds)
    return {"seconds": seconds, "first_run": time.perf_counter() - start}


def _step(step: str, target: str, model: str, artifact: str, cache: str) -> dict[str, object]:
    env = dict(os.environ, VISC_CACHE_DIR=cache)
    env.pop("VISC_CACHE", None)
    request = json.dumps({"step": step, "target": target, "model": model, "artifact": artifact})
    start = time.perf_counter()
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", request], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{step} {target} {os.path.basename(model)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    result["warnings"] = [line for line in done.stderr.splitlines() if "Warning:" in line]
    return result


def available_targets() -> list[str]:
    found = ["cpu"]
    try:
        from visc.runtime.devices import list_devices

        if list_devices():
            found.append("opencl")
    except Exception:  # noqa: BLE001 - no OpenCL runtime: not a target here
        pass
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() > 0:
            found.append("cuda")
    except Exception:  # noqa: BLE001 - no CUDA: not a target here
        pass
    return found


def _where(stages: dict[str, float], top: int = 4) -> str:
    graph = sum(v for k, v in stages.items() if k.startswith("vision-"))
    merged = {"graph passes": graph, **{k: v for k, v in stages.items() if not k.startswith("vision-")}}
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(merged.items(), key=lambda kv: -kv[1])[:top])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(LIGHT_MODELS))
    ap.add_argument("--targets", default=None, help="comma-separated (default: those this machine runs)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    available = available_targets()
    targets = args.targets.split(",") if args.targets else available
    models = args.models.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="visc-compile-time-") as tmp:
        for i, name in enumerate(models):
            path = os.path.join(tmp, f"{name}.onnx")
            with open(path, "wb") as f:
                f.write(load_light_model(name, seed=0).SerializeToString())
            for target in targets:
                print(f"[{i + 1}/{len(models)}] {name} {target} ...", file=sys.stderr, flush=True)
                cache = os.path.join(tmp, f"cache-{name}-{target}")
                artifact = os.path.join(tmp, f"{name}-{target}.visc")
                cold = _step("cold", target, path, artifact, cache)
                cached = _step("cached", target, path, artifact, cache)
                runnable = target in available
                load = _step("load", target, path, artifact, cache) if runnable else \
                    {"seconds": None, "first_run": None, "warnings": []}
                stages = dict(cold["stages"])  # type: ignore[arg-type]
                rows.append({"model": name, "target": target, "cold_s": cold["seconds"],
                             "cached_s": cached["seconds"], "cache_hit": cached["cached"], "load_s": load["seconds"],
                             "first_run_s": load["first_run"], "kernels": cold["kernels"], "where": _where(stages),
                             "stages": stages, "process_s": cold["process"],
                             "warnings": sorted({*cold["warnings"], *cached["warnings"], *load["warnings"]})})
    print(f"host: {platform.node()} ({os.cpu_count()} cores); compile processes: "
          f"{os.environ.get('VISC_COMPILE_JOBS', 'all cores')}")
    print_table(rows, COLUMNS)
    misses = [f"{r['model']}/{r['target']}" for r in rows if not r["cache_hit"]]
    if misses:
        print(f"not from the cache on the second compile: {', '.join(misses)}")
    for r in rows:
        for line in r["warnings"]:
            print(f"{r['model']}/{r['target']}: {line}")
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   f"compile_time_{'gpu' if 'cuda' in available else 'cpu'}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"benchmark": "compile_time", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(),
                   "cpus": os.cpu_count(), "machine": platform.machine(), "rows": rows}, f, indent=1)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
