"""Benchmark: the dataflow runtime (`visc.pipeline`): engine overhead, two balanced stages on
two devices, automatic partition, and throughput against onnxruntime's own loop of `run`.

Sections (all by default; each prints a table; everything is saved as JSON):

* ``overhead``: k empty (copy-only) stages through the threads engine: microseconds per
  stage hop per frame, streamed (throughput) and one frame at a time (latency), with the
  copies' own cost measured alone and taken out.
* ``balanced``: a CNN cut into two stages by the automatic partition over ``--devices``
  (default ``cpu,cpu``: two CPU stages of ``--threads 1`` each, against one executor with
  all cores). Reports each stage's own rate (its executor alone), the pipeline's steady
  state, and the same stages run one after the other.
* ``auto``: ResNet-50 cut automatically into 2 and 3 stages: each stage's measured time
  against the total divided by N, and the same for the cut a user would make by hand
  (equal numbers of ops per stage).
* ``ort``: the pipeline's throughput against onnxruntime's loop of `run` (in its own process,
  ``--ort-threads`` intra-op threads) on the same frames.

    python benchmarks/pipeline.py [--sections overhead,balanced,auto,ort] [--model squeezenet]
                                  [--devices cpu,cpu] [--threads 1] [--frames 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

import visc
from visc.runtime.bench import CopyStage, OrtProcess, random_inputs
from visc.runtime.engine import ThreadEngine, format_stats
from visc.stages import hand_cuts
from visc.tools.model_zoo import load_light_model
from visc.tools.visc_cli import print_table


def overhead(frames: int, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    start = time.perf_counter()
    for _ in range(frames * 4):
        x.copy()
    copy_us = (time.perf_counter() - start) / (frames * 4) * 1e6
    rows = []
    for k in (1, 2, 4, 8):
        stages = [CopyStage(i, f"t{i}", f"t{i + 1}") for i in range(k)]
        with ThreadEngine(stages, [f"t{k}"], capacity=4) as engine:
            for _ in engine.map({"t0": x} for _ in range(20)):
                pass
            start = time.perf_counter()
            for _ in engine.map({"t0": x} for _ in range(frames)):
                pass
            streamed = (time.perf_counter() - start) / frames * 1e6
            start = time.perf_counter()
            for _ in range(frames):
                engine.run({"t0": x})
            latency = (time.perf_counter() - start) / frames * 1e6
        rows.append({"stages": k, "copy_us": copy_us, "streamed_us_per_frame": streamed,
                     "latency_us_per_frame": latency,
                     "us_per_hop_streamed": (streamed - k * copy_us) / k})
    # a frame's latency has a fixed part (the caller's submit and wake-up) and a part per hop
    rows[0]["us_per_hop_latency"] = float("nan")
    for row in rows[1:]:
        row["us_per_hop_latency"] = (row["latency_us_per_frame"] - rows[0]["latency_us_per_frame"]) / (row["stages"] - 1)
    print_table(rows, (("stages", "stages", "d"), ("copy_us", "copy alone us", ".1f"),
                       ("streamed_us_per_frame", "streamed us/frame", ".1f"),
                       ("us_per_hop_streamed", "streamed us per hop", ".1f"),
                       ("latency_us_per_frame", "one frame us", ".1f"),
                       ("us_per_hop_latency", "one frame: us per added hop", ".1f")))
    return rows


def stage_rates(pipe: Any, frame: dict[str, np.ndarray], repeat: int) -> list[float]:
    """Frames/s of each stage's executor alone (its inputs taken from one sequential run)."""
    return [1.0 / t for t in pipe.stage_seconds(frame, repeat=repeat)]


def balanced(model_name: str, pipe: Any, devices: list[str], threads: int | None, frames: int,
             compile_s: float) -> dict[str, Any]:
    proto = load_light_model(model_name, seed=0)
    cuts = pipe.metadata["cuts"]
    frame = dict(zip(pipe.input_names, random_inputs(pipe.inputs, seed=1), strict=True))
    rates = stage_rates(pipe, frame, max(10, frames // 5))
    result = pipe.benchmark(frame, frames=frames)
    stats = pipe.stats()
    single_target = devices[0] if len(set(devices)) == 1 else None
    single_fps = None
    if single_target is not None:
        whole = visc.compile(proto, target=single_target)
        run = whole.runner(frame)
        for _ in range(5):
            run()
        start = time.perf_counter()
        for _ in range(frames):
            run()
        single_fps = frames / (time.perf_counter() - start)
    row = {"model": model_name, "devices": ",".join(devices), "threads_per_stage": threads, "cuts": cuts,
           "compile_s": compile_s, "stage_fps": rates, "slowest_stage_fps": min(rates),
           "pipelined_fps": result["pipelined_fps"], "sequential_fps": result["sequential_fps"],
           "vs_slowest": result["pipelined_fps"] / min(rates), "vs_sequential": result["speedup"],
           "single_executor_fps": single_fps,
           "vs_single_executor": result["pipelined_fps"] / single_fps if single_fps else None,
           "stats": stats}
    print_table([row], (("model", "model", ""), ("devices", "stages on", ""),
                        ("slowest_stage_fps", "slowest stage f/s", ".1f"), ("pipelined_fps", "pipelined f/s", ".1f"),
                        ("sequential_fps", "sequential f/s", ".1f"), ("vs_slowest", "/slowest", ".2f"),
                        ("vs_sequential", "/sequential", ".2f")))
    if single_fps:
        print(f"one {single_target} executor with all cores: {single_fps:.1f} f/s; pipeline/it: "
              f"{row['vs_single_executor']:.2f}")
    print(format_stats(stats))
    return row


def auto_partition(model_name: str, device: str, frames: int) -> list[dict[str, Any]]:
    proto = load_light_model(model_name, seed=0)
    rows = []
    for n in (2, 3):
        pipe = visc.pipeline(proto, stages=n, devices=[device])
        frame = dict(zip(pipe.input_names, random_inputs(pipe.inputs, seed=1), strict=True))
        with pipe:
            times = [1e3 * t for t in pipe.stage_seconds(frame, repeat=max(10, frames // 5))]
            nodes = [s.info.nodes for s in pipe.stages]
        # the hand cut: equal numbers of compute ops per stage
        hand = visc.pipeline(proto, stages=[visc.Stage(target=device, until=c) for c in hand_cuts(proto, n)]
                             + [visc.Stage(target=device)])
        with hand:
            hand_times = [1e3 * t for t in hand.stage_seconds(frame, repeat=max(10, frames // 5))]
        rows.append({"model": model_name, "stages": n, "device": device, "auto_ms": times, "auto_ops": nodes,
                     "auto_balance": max(times) / (sum(times) / n), "hand_ms": hand_times,
                     "hand_balance": max(hand_times) / (sum(hand_times) / n)})
    print_table(rows, (("model", "model", ""), ("stages", "N", "d"), ("auto_balance", "auto: slowest/(total/N)", ".3f"),
                       ("hand_balance", "hand: slowest/(total/N)", ".3f")))
    for r in rows:
        print(f"  N={r['stages']}: auto stage ms {[round(t, 2) for t in r['auto_ms']]} (ops {r['auto_ops']}); "
              f"hand {[round(t, 2) for t in r['hand_ms']]}")
    return rows


def against_ort(model_name: str, pipe: Any, devices: list[str], ort_threads: int, frames: int,
                rounds: int = 3) -> dict[str, Any]:
    """Alternating blocks (pipeline, onnxruntime, ...) so the machine's drifts reach both
    sides of the ratio; onnxruntime runs in its own process (in one process the two runtimes'
    thread pools slow each other). Medians of the blocks' rates."""
    proto = load_light_model(model_name, seed=0)
    frame = dict(zip(pipe.input_names, random_inputs(pipe.inputs, seed=1), strict=True))
    ours, theirs = [], []
    with OrtProcess(proto.SerializeToString(), frame, threads=ort_threads) as ort:
        ort.timed(5)
        for _ in range(rounds):
            ours.append(pipe.benchmark(frame, frames=frames, warmup=4, sequential=False)["pipelined_fps"])
            times = ort.timed(frames)
            theirs.append(len(times) / sum(times))
    row = {"model": model_name, "devices": ",".join(devices), "pipelined_fps": float(np.median(ours)),
           "ort_fps": float(np.median(theirs)), "ort_threads": ort_threads, "blocks": rounds,
           "pipelined_blocks": ours, "ort_blocks": theirs}
    row["ratio"] = row["pipelined_fps"] / row["ort_fps"]
    print_table([row], (("model", "model", ""), ("devices", "stages on", ""), ("pipelined_fps", "visc pipeline f/s", ".1f"),
                        ("ort_fps", "onnxruntime loop f/s", ".1f"), ("ratio", "visc/ort", ".2f")))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="overhead,balanced,auto,ort")
    ap.add_argument("--model", default="squeezenet", help="light model for balanced and ort")
    ap.add_argument("--auto-model", default="resnet50")
    ap.add_argument("--devices", default="cpu,cpu")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per cpu stage (0: all cores)")
    ap.add_argument("--ort-threads", type=int, default=os.cpu_count())
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "pipeline.json"))
    args = ap.parse_args(argv)
    devices = args.devices.split(",")
    threads = args.threads or None
    sections = args.sections.split(",")
    result: dict[str, Any] = {"benchmark": "pipeline", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "host": platform.node(), "cpus": os.cpu_count(), "devices": devices}
    if "overhead" in sections:
        print("== engine overhead: k copy-only stages (1x1000 float32 frames)")
        result["overhead"] = overhead(max(200, args.frames * 5), (1, 1000))
    pipe = None
    if "balanced" in sections or "ort" in sections:
        start = time.perf_counter()
        pipe = visc.pipeline(load_light_model(args.model, seed=0), stages=len(devices), devices=devices,
                             threads=threads)
        compile_s = time.perf_counter() - start
        print(f"{args.model}: automatic cut over {args.devices} after {pipe.metadata['cuts']} "
              f"(profile and compile {compile_s:.1f} s)\n{pipe.describe()}")
    if "balanced" in sections:
        print(f"== two stages, automatic cut, on {args.devices}")
        result["balanced"] = balanced(args.model, pipe, devices, threads, args.frames, compile_s)
    if "auto" in sections:
        print(f"== automatic partition of {args.auto_model} on {devices[0]}")
        result["auto"] = auto_partition(args.auto_model, devices[0], args.frames)
    if "ort" in sections:
        print(f"== throughput against onnxruntime's loop ({args.ort_threads} threads)")
        result["ort"] = against_ort(args.model, pipe, devices, args.ort_threads, args.frames)
    if pipe is not None:
        pipe.close()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
