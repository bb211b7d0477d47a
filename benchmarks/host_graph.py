"""Benchmark: the host (data-dependent) part of the four torchvision detectors in tests/models
run by `visc.runtime.host_graph.HostGraph` against onnx's ReferenceEvaluator and onnxruntime.

The host part of a detector is every node from the first NonZero/If/NonMaxSuppression/Loop on
and every node that depends on one (tests/host_graph_cases.py), fed the boundary tensors
onnxruntime computes on the whole model for a seeded random image. Prints, per detector: the
host part's nodes, the reference evaluator's time (one run), HostGraph's and onnxruntime's
(2 intra-op threads, in a process of its own, warm, medians of interleaved blocks), their
ratio, whether HostGraph's outputs match onnxruntime's (boxes and scores allclose 1e-5, labels
equal, same counts), and HostGraph's slowest op types; then, per op type that runs on a visc
kernel, its time with onnx's reference implementation and with the kernel; saves the tables
as JSON.

    python benchmarks/host_graph.py [--models ssdlite320_mobilenet_v3_large,...] [--repeat 15]
        [--reference | --no-reference] [--out benchmarks/results/host_graph.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from host_graph_cases import DETECTORS, HostPart, host_part, outputs_match  # noqa: E402

from visc.runtime.bench import OrtProcess, interleaved_medians  # noqa: E402
from visc.runtime.host_graph import HostGraph  # noqa: E402
from visc.tools.visc_cli import print_table  # noqa: E402

THREADS = 2


def reference_ms(part: HostPart) -> float:
    """One run of onnx's ReferenceEvaluator on the host part (slow: timed once)."""
    from onnx.reference import ReferenceEvaluator

    ref = ReferenceEvaluator(part.model)
    start = time.perf_counter()
    ref.run(None, part.feeds)
    return (time.perf_counter() - start) * 1e3


def op_profile(graph: HostGraph, inputs: list[np.ndarray], runs: int = 5,
               nested: bool = False) -> list[tuple[str, int, float]]:
    """(op type, nodes, median ms per run) of HostGraph's top-level nodes (with ``nested``, of
    the nodes inside If branches too), slowest first."""
    per_run: dict[str, list[float]] = collections.defaultdict(list)
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(runs):
        totals: dict[str, float] = collections.defaultdict(float)
        counts.clear()
        for t in graph.profile(inputs):
            if t.inside and not nested:
                continue
            totals[t.op_type] += t.seconds
            counts[t.op_type] += 1
        for op, seconds in totals.items():
            per_run[op].append(seconds)
    rows = [(op, counts[op], float(np.median(v)) * 1e3) for op, v in per_run.items()]
    return sorted(rows, key=lambda r: -r[2])


def measure(name: str, repeat: int, with_reference: bool) -> dict[str, Any]:
    part = host_part(name)
    model = part.model.SerializeToString()
    graph = HostGraph(model)
    inputs = part.inputs
    same = outputs_match(graph.run(inputs), part.expected)
    with OrtProcess(model, part.feeds, threads=THREADS) as ort:
        ort_same = outputs_match(ort.outputs(), part.expected)
        ours, theirs = interleaved_medians([lambda: graph.run(inputs), ort], warmup=2, repeat=repeat)
    ops = op_profile(graph, inputs)
    before = ({op: ms for op, _, ms in op_profile(HostGraph(model, fast_ops=()), inputs, runs=1, nested=True)}
              if with_reference else {})
    after = {op: (n, ms) for op, n, ms in op_profile(graph, inputs, nested=True)}
    kernels = [{"op": op, "nodes": after[op][0], "reference_ms": round(before[op], 2) if op in before else None,
                "host_graph_ms": round(after[op][1], 2)} for op in sorted(graph.fast_ops) if op in after]
    return {
        "model": name,
        "nodes": len(part.model.graph.node),
        "inputs": len(inputs),
        "reference_ms": round(reference_ms(part), 1) if with_reference else None,
        "host_graph_ms": round(ours * 1e3, 2),
        "onnxruntime_ms": round(theirs * 1e3, 2),
        "ratio": round(ours / theirs, 3),
        "same_as_onnxruntime": same,
        "onnxruntime_same_as_whole_model": ort_same,
        "detections": int(part.expected[0].shape[0]),
        "slowest_ops": [{"op": op, "nodes": n, "ms": round(ms, 2)} for op, n, ms in ops[:6]],
        "kernels": kernels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DETECTORS))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                        help="time onnx's ReferenceEvaluator too (minutes for ssdlite and fasterrcnn)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "host_graph.json"))
    args = parser.parse_args()
    rows = [measure(name, args.repeat, args.reference) for name in args.models.split(",")]
    for r in rows:
        r["reference"] = "-" if r["reference_ms"] is None else f"{r['reference_ms']:.0f}"
        r["slowest"] = ", ".join(f"{o['op']} {o['ms']:.1f}" for o in r["slowest_ops"][:3])
    print_table(rows, [("model", "model", ""), ("nodes", "nodes", "d"), ("reference", "reference ms", ""),
                       ("host_graph_ms", "HostGraph ms", ".1f"), ("onnxruntime_ms", "onnxruntime ms", ".1f"),
                       ("ratio", "ratio", ".2f"), ("same_as_onnxruntime", "same", ""),
                       ("slowest", "HostGraph's slowest ops (ms)", "")])
    for r in rows:
        del r["reference"], r["slowest"]
    kernel_rows = [{"model": r["model"], **k} for r in rows for k in r["kernels"]]
    if any(k["reference_ms"] is not None for k in kernel_rows):
        print("\nthe ops on visc's kernels, per run: onnx's reference implementation (one profiled run) and "
              "HostGraph's (median of 5)")
        for k in kernel_rows:
            k["ref"] = "-" if k["reference_ms"] is None else f"{k['reference_ms']:.1f}"
        print_table(kernel_rows, [("model", "model", ""), ("op", "op", ""), ("nodes", "nodes", "d"),
                                  ("ref", "reference ms", ""), ("host_graph_ms", "HostGraph ms", ".2f")])
        for k in kernel_rows:
            del k["ref"]
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "onnxruntime_threads": THREADS,
              "repeat": args.repeat, "rows": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
