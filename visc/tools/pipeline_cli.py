"""`visc pipeline`: compile a model into stages, stream seeded random frames through them, and
print the per-stage table, the throughput, and the same frames run one stage after another.

    visc pipeline model.onnx --stage cuda:NODE --stage cpu --frames 500 [--trace t.json] [--plot g.png]
    visc pipeline model.onnx --auto 2 --devices opencl,cpu [-o model.visc]
    visc pipeline model.onnx --fallback NonMaxSuppression,TopK --devices cuda
    visc pipeline model.visc --frames 200          (a saved pipeline: no compiler needed)
    visc pipeline model.onnx --stage cpu:NODE --stage cpu@edge1 --engine ray [--ray-address HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from visc.errors import InputShapeError, UsageError


def _stages(args: argparse.Namespace) -> list[Any] | int | str:
    from visc.stages import Stage

    if sum(bool(x) for x in (args.auto, args.stage, args.fallback)) > 1:
        raise InputShapeError("give one of --stage ..., --auto N or --fallback OPS")
    if args.fallback:
        return "placement"
    if args.auto:
        return int(args.auto)
    if not args.stage:
        raise InputShapeError("name the stages (--stage TARGET:NODE ... --stage TARGET), ask for --auto N, or cut "
                              "where the CPU fallback placement changes device (--fallback OPS --devices GPU)")
    replicas = _replicas(args.replicas) if args.replicas else [1] * len(args.stage)
    if len(replicas) != len(args.stage):
        raise InputShapeError(f"--replicas gives {len(replicas)} numbers for {len(args.stage)} stages")
    return [Stage.parse(text, replicas=k, threads=args.threads) for text, k in zip(args.stage, replicas, strict=True)]


def _replicas(text: str) -> list[int]:
    """``--replicas 1,2``: a positive count per stage."""
    try:
        counts = [int(r) for r in text.split(",")]
    except ValueError:
        raise UsageError(f"--replicas {text}: give a whole number per stage, comma-separated (e.g. 1,2)") from None
    if any(k < 1 for k in counts):
        raise UsageError(f"--replicas {text}: every stage needs at least 1 replica")
    return counts


def check_args(args: argparse.Namespace) -> None:
    """The options a run would trip over after compiling every stage and streaming the frames
    (an unwritable --trace, a zero count), checked first."""
    from visc.compiler import TARGETS
    from visc.tools.checks import at_least, writable_output

    at_least("--frames", args.frames, 1, "frames to stream")
    at_least("--frames-in-flight", args.frames_in_flight, 1)
    at_least("--threads", args.threads, 1)
    at_least("--auto", args.auto, 1, "stages")
    at_least("--seed", args.seed, 0)
    for option, path in (("-o", args.output), ("--trace", args.trace), ("--plot", args.plot), ("--json", args.json)):
        if path:
            writable_output(path, option)
    for device in (args.devices.split(",") if args.devices else []):
        if device not in TARGETS:
            raise UsageError(f"--devices {args.devices}: '{device}' is not a target (known: {', '.join(TARGETS)})")
    if args.plot:
        from visc.tuner.plot import _pyplot

        _pyplot()  # no matplotlib: say so before streaming, not after


def cmd_pipeline(args: argparse.Namespace) -> int:
    import visc
    from visc.runtime.bench import random_inputs
    from visc.stages import build_pipeline
    from visc.tools.checks import fallback_ops
    from visc.tools.visc_cli import human_bytes, model_input_shapes

    check_args(args)
    if args.model.endswith(".visc"):
        pipe = visc.load(args.model)
        if not hasattr(pipe, "map"):
            raise InputShapeError(f"'{args.model}' holds a compiled model, not a pipeline")
        if args.engine:
            pipe.engine_kind = args.engine
        if args.ray_address:
            pipe.ray_address = args.ray_address
    else:
        fallback = fallback_ops(args.fallback, args.model)
        shapes = model_input_shapes(args.input_shape, args.model)
        devices = args.devices.split(",") if args.devices else None
        start = time.perf_counter()
        pipe = build_pipeline(args.model, _stages(args), input_shapes=shapes, devices=devices,
                              frames_in_flight=args.frames_in_flight, threads=args.threads,
                              fallback=fallback or None,
                              engine=args.engine or "threads", ray_address=args.ray_address,
                              progress=lambda m: print(f"  {m}", flush=True))
        print(f"compiled {len(pipe.stages)} stages in {time.perf_counter() - start:.1f} s")
    with pipe:
        print(pipe.describe())
        if args.output:
            pipe.save(args.output)
            print(f"saved {args.output}")
        frames = [dict(zip(pipe.input_names, random_inputs(pipe.inputs, seed=args.seed + i), strict=True))
                  for i in range(min(args.frames, 16))]
        stream = (frames[i % len(frames)] for i in range(args.frames))
        warm = max(1, min(8, args.frames // 10))
        for _ in pipe.map(frames[i % len(frames)] for i in range(warm)):
            pass
        pipe.reset_stats()
        start = time.perf_counter()
        piped = []  # the first frames' outputs, to compare with the sequential run
        for i, outs in enumerate(pipe.map(stream)):
            if i < len(frames):
                piped.append(outs)
        seconds = time.perf_counter() - start
        stats = pipe.stats()
        print(pipe.format_stats())
        seq_start = time.perf_counter()
        same = True
        for i in range(args.frames):
            outs = pipe.run_sequential(frames[i % len(frames)])
            if i < len(piped):
                same = same and all(np.array_equal(a, b) for a, b in zip(outs, piped[i], strict=True))
        seq = time.perf_counter() - seq_start
        print(f"pipelined: {args.frames / seconds:.1f} frames/s; sequential (same stages, one thread): "
              f"{args.frames / seq:.1f} frames/s; speedup {seq / seconds:.2f}x; outputs identical: {same}")
        memory = pipe.memory()
        stages = ", ".join(f"stage{i}: {human_bytes(m['weights'])} weights + {m['slots']} x "
                           f"{human_bytes(m['arena'] + m['io'])} arena and I/O" for i, m in enumerate(memory["stages"]))
        print(f"memory: {human_bytes(memory['total'])} ({stages})")
        if args.trace:
            pipe.trace(args.trace)
            print(f"trace: {args.trace} (chrome://tracing or ui.perfetto.dev)")
        if args.plot:
            pipe.plot(args.plot)
            print(f"plot: {args.plot}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"stats": stats, "pipelined_fps": args.frames / seconds,
                           "sequential_fps": args.frames / seq, "identical": same}, f, indent=1, default=str)
    return 0


def add_parser(sub: Any, shape_help: str) -> None:
    s = sub.add_parser("pipeline", help="cut a model into stages on several devices and stream frames through them")
    s.add_argument("model", help="an ONNX model, or a pipeline saved with -o")
    s.add_argument("--stage", action="append", metavar="TARGET[:NODE][@RESOURCE]",
                   help="a stage on TARGET (opencl, cuda, cpu) up to and including ONNX node (or tensor) NODE; "
                        "repeat per stage, the last without NODE; @RESOURCE (with --engine ray): on the Ray node "
                        "offering that custom resource")
    s.add_argument("--auto", type=int, metavar="N", help="let visc cut N stages, balancing measured op times")
    s.add_argument("--devices", help="targets of the --auto stages, comma-separated (one for all, or one each); "
                   "with --fallback, the GPU target")
    s.add_argument("--fallback", metavar="OPS", help="comma-separated ONNX op types to run on the CPU: a stage "
                   "wherever the placement changes device")
    s.add_argument("--replicas", help="copies of each stage's actor, comma-separated (e.g. 1,2)")
    s.add_argument("--threads", type=int, help="CPU threads per cpu-stage replica")
    s.add_argument("--engine", choices=("threads", "ray"),
                   help="threads in this process (default), or Ray actors (pip install \"visc[ray]\")")
    s.add_argument("--ray-address", help="the Ray cluster (HOST:PORT of `ray start --head`; default: the one "
                   "this host runs, else a local one)")
    s.add_argument("--frames", type=int, default=200, help="seeded random frames to stream")
    s.add_argument("--frames-in-flight", type=int, default=4)
    s.add_argument("--input-shape", action="append", help=shape_help)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--output", help="save the pipeline as one .visc file")
    s.add_argument("--trace", help="write a Chrome-trace/Perfetto timeline (.json)")
    s.add_argument("--plot", help="write a Gantt chart of the first frames (.png)")
    s.add_argument("--json", help="write the stats as JSON")
    s.set_defaults(fn=cmd_pipeline)


__all__ = ["add_parser", "cmd_pipeline"]
