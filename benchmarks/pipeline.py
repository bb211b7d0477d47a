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

With ``--engine ray`` (sections ``ray_overhead,ray_stages``; a two-node Ray cluster is
started on this machine unless ``--ray-address`` names one whose second node offers the
resource ``edge1``):

* ``ray_overhead``: the same copy-only stages as Ray actors against the threads engine.
* ``ray_stages``: ``--model`` cut in two by hand, one-thread CPU stages, the second on the
  worker node: the Ray pipeline against the same stages on the threads engine and one after
  the other.

    python benchmarks/pipeline.py [--sections overhead,balanced,auto,ort] [--model squeezenet]
                                  [--devices cpu,cpu] [--threads 1] [--frames 100]
    python benchmarks/pipeline.py --engine ray [--ray-address HOST:PORT]
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


def _copy_rates(make_engine: Any, k: int, frames: int, x: np.ndarray) -> tuple[float, float]:
    """(streamed us per frame, one-frame latency us) of k copy stages on an engine."""
    with make_engine(k) as engine:
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
    return streamed, latency


def _threads_copies(k: int) -> ThreadEngine:
    return ThreadEngine([CopyStage(i, f"t{i}", f"t{i + 1}") for i in range(k)], [f"t{k}"], capacity=4)


def overhead(frames: int, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    start = time.perf_counter()
    for _ in range(frames * 4):
        x.copy()
    copy_us = (time.perf_counter() - start) / (frames * 4) * 1e6
    rows = []
    for k in (1, 2, 4, 8):
        streamed, latency = _copy_rates(_threads_copies, k, frames, x)
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


def ray_overhead(address: str, frames: int, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Copy-only stages: Ray actors (every other stage on the worker node) against threads."""
    import functools

    from visc.runtime.ray_engine import RayEngine, RayStage

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    def ray(k: int) -> RayEngine:
        stages = [RayStage(f"copy{i}", [f"t{i}"], [f"t{i + 1}"], functools.partial(CopyStage, i, f"t{i}", f"t{i + 1}"),
                           options={"resources": {"edge1": 1e-3}} if i % 2 else {}) for i in range(k)]
        engine = RayEngine(stages, [f"t{k}"], frames_in_flight=4, address=address)
        engine.ready()
        return engine

    rows = []
    for k in (1, 2, 4):
        t_stream, t_lat = _copy_rates(_threads_copies, k, frames, x)
        r_stream, r_lat = _copy_rates(ray, k, frames, x)
        rows.append({"stages": k, "threads_streamed_us": t_stream, "ray_streamed_us": r_stream,
                     "threads_latency_us": t_lat, "ray_latency_us": r_lat})
    for row in rows:
        row["ray_us_per_hop_streamed"] = row["ray_streamed_us"] / row["stages"]
        row["ray_us_per_hop_latency"] = row["ray_latency_us"] / row["stages"]
        row["ratio_streamed"] = row["ray_streamed_us"] / row["threads_streamed_us"]
    print_table(rows, (("stages", "stages", "d"), ("threads_streamed_us", "threads us/frame", ".1f"),
                       ("ray_streamed_us", "ray us/frame", ".1f"), ("ray_us_per_hop_streamed", "ray us/hop", ".1f"),
                       ("ratio_streamed", "ray/threads", ".1f"), ("threads_latency_us", "threads 1-frame us", ".1f"),
                       ("ray_latency_us", "ray 1-frame us", ".1f")))
    return rows


def ray_stages(address: str, model_name: str, frames: int) -> dict[str, Any]:
    """Two one-thread CPU stages, the second on the worker node, on Ray and on threads."""
    from visc.runtime.pipeline import Pipeline

    proto = load_light_model(model_name, seed=0)
    (cut,) = hand_cuts(proto, 2)
    pipe = visc.pipeline(proto, stages=[visc.Stage("cpu", until=cut, threads=1),
                                        visc.Stage("cpu", threads=1, ray={"resources": {"edge1": 1e-3}})],
                         engine="ray", ray_address=address)
    local = Pipeline(pipe.models, pipe.infos, pipe.inputs, pipe.output_names, frames_in_flight=pipe.frames_in_flight)
    frame = dict(zip(pipe.input_names, random_inputs(pipe.inputs, seed=1), strict=True))
    with pipe, local:
        rates = stage_rates(local, frame, max(10, frames // 5))
        on_ray = pipe.benchmark(frame, frames=frames, sequential=False)["pipelined_fps"]
        stats = pipe.stats()
        on_threads = local.benchmark(frame, frames=frames)
    row = {"model": model_name, "cut": cut, "stage_fps": rates, "slowest_stage_fps": min(rates), "ray_fps": on_ray,
           "threads_fps": on_threads["pipelined_fps"], "sequential_fps": on_threads["sequential_fps"],
           "ray_vs_threads": on_ray / on_threads["pipelined_fps"], "ray_vs_sequential": on_ray / on_threads["sequential_fps"],
           "ray_vs_slowest": on_ray / min(rates), "where": [s["where"] for s in stats["stages"]],
           "mean_fire_ms": [s["mean_fire_ms"] for s in stats["stages"]]}
    print_table([row], (("model", "model", ""), ("slowest_stage_fps", "slowest stage f/s", ".1f"),
                        ("ray_fps", "ray f/s", ".1f"), ("threads_fps", "threads f/s", ".1f"),
                        ("sequential_fps", "sequential f/s", ".1f"), ("ray_vs_slowest", "ray/slowest", ".2f"),
                        ("ray_vs_threads", "ray/threads", ".2f"), ("ray_vs_sequential", "ray/sequential", ".2f")))
    print(f"  stages ran on {row['where']}; mean firing ms {[round(t, 2) for t in row['mean_fire_ms']]}")
    return row


def run_ray(args: argparse.Namespace, result: dict[str, Any]) -> None:
    import contextlib

    sections = args.sections.split(",") if args.sections else ["ray_overhead", "ray_stages"]
    with contextlib.ExitStack() as stack:
        address = args.ray_address
        if address is None:
            from visc.tools.ray_cluster import local_ray_cluster

            print("starting a two-node Ray cluster on this machine (head, and a node offering 'edge1')")
            address, env = stack.enter_context(local_ray_cluster())
            os.environ.update(env)
        result["ray_address"] = address
        if "ray_overhead" in sections:
            print("== engine overhead: k copy-only stages (1x1000 float32 frames), Ray actors against threads")
            result["ray_overhead"] = ray_overhead(address, max(100, args.frames * 2), (1, 1000))
        if "ray_stages" in sections:
            print(f"== {args.model} in two one-thread CPU stages, the second on the worker node")
            result["ray_stages"] = ray_stages(address, args.model, args.frames)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", help="default: overhead,balanced,auto,ort (with --engine ray: "
                    "ray_overhead,ray_stages)")
    ap.add_argument("--engine", choices=("threads", "ray"), default="threads")
    ap.add_argument("--ray-address", help="a running cluster whose second node offers the resource 'edge1'")
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
    result: dict[str, Any] = {"benchmark": "pipeline", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "host": platform.node(), "cpus": os.cpu_count(), "devices": devices,
                              "engine": args.engine}
    if args.engine == "ray":
        run_ray(args, result)
        return _save(result, args.out)
    sections = (args.sections or "overhead,balanced,auto,ort").split(",")
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
    return _save(result, args.out)


def _save(result: dict[str, Any], out: str) -> int:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
