"""Probe: does the tuner's CUDA timing (L2 flush, stream hold, input copies, events around the
launch) add a constant to every kernel? Times the same kernels four ways in one process, with a
hand-written CUDA C kernel (CuPy) of the same stage-3 configuration as a yardstick.
python timing_probe.py OUT.json"""
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from tuner_quality import naive_schedule, pick_workloads  # noqa: E402

from visc.tuner.measure import Measurer, build  # noqa: E402

SPLIT = {  # split_probe_h100.json's best per conv (b1), and the hand probe's best configuration
    "M 1x1 project": [dict(tile_oc=4, tile_ow=1, block_n=32, threads_k=32, unroll_k=4),
                      dict(tile_oc=2, tile_ow=1, block_n=32, threads_k=16, unroll_k=4)],
    "M 1x1 expand": [dict(tile_oc=8, tile_ow=2, block_n=32, threads_k=16, unroll_k=4),
                     dict(tile_oc=4, tile_ow=1, block_n=64, threads_k=8, unroll_k=4)],
}


def ways(m: Measurer, sched: dict, reps: int = 30) -> dict:
    model = build(m.module, sched, "cuda", None, "gpu", m.weights)
    model.run(m.inputs)
    ex = model.executor()
    drv = ex._drv
    out = {}
    arrays = ex.plan.check_inputs(m.inputs)

    def variant(order: str) -> float:
        times = []
        for r in range(reps + 2):
            with ex._lock, ex.active():
                ev = [drv.Event() for _ in range(len(ex._launches) + 1)]
                for step in order.split(","):
                    if step == "flush":
                        ex._flush_l2_async()
                    elif step == "hold":
                        ex._hold_stream(300e-6)
                    elif step == "copy":
                        ex._copy_in(arrays)
                ex._enqueue_launches(ev)
                ex._copy_out()
                if r >= 2:
                    times.append(sum(ev[i + 1].time_since(ev[i]) for i in range(len(ex._launches))) * 1e3)
        return statistics.median(times)

    out["tuner (flush,hold,copy)"] = variant("flush,hold,copy")
    out["flush,copy,hold"] = variant("flush,copy,hold")
    out["copy,flush,hold"] = variant("copy,flush,hold")
    out["graph cold"] = sum(t for _, _, t in ex.kernel_times(repeat=reps, cold=True)) * 1e6
    out["measure()"] = m.measure(sched).seconds * 1e6
    return out


def main() -> None:
    rows = []
    for batch in (1, 8):
        for label, task in pick_workloads(list(SPLIT), 0, batch):
            m = Measurer(task.module_text, "cuda", warmup=2, repeat=20)
            scheds = {"naive": naive_schedule(dict(m.default_schedule)), "heuristic": dict(m.default_schedule)}
            for i, s in enumerate(SPLIT[label]):
                full = {**m.default_schedule, "stage": 3, "block_m": 64, "tile_k": 16, "split_k": 1, **s}
                full["wg"] = full["block_n"] // full["tile_ow"] * full["threads_k"]
                scheds[f"split{i}"] = full
            for name, s in scheds.items():
                row = {"batch": batch, "conv": label, "schedule": name, **ways(m, s)}
                rows.append(row)
                print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    json.dump(rows, open(sys.argv[1], "w"), indent=1)


if __name__ == "__main__":
    np.random.seed(0)
    main()
