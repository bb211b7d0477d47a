"""Probe: MobileNetV2's 1x1 convs under stage = 3 (the reduction split across a work-group's
threads) on CUDA, cold L2, against the naive kernel and the heuristic measured in the same run.
python split_probe.py OUT.json [BATCHES] [LABELS]"""
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from tuner_quality import naive_schedule, pick_workloads  # noqa: E402

from visc.tuner.measure import Measurer  # noqa: E402

path = sys.argv[1]
batches = [int(b) for b in (sys.argv[2] if len(sys.argv) > 2 else "1,8").split(",")]
labels = (sys.argv[3] if len(sys.argv) > 3 else "M 1x1 expand,M 1x1 project").split(",")
rows = []
for batch in batches:
    for label, task in pick_workloads(labels, 0, batch):
        m = Measurer(task.module_text, "cuda", warmup=2, repeat=20)
        naive = m.measure(naive_schedule(dict(m.default_schedule))).seconds * 1e6
        heuristic = m.measure(dict(m.default_schedule)).seconds * 1e6
        res, failed = [], 0
        for tm, tn, bn, rk, unroll in itertools.product((1, 2, 4, 8), (1, 2), (32, 64), (4, 8, 16, 32), (4, 8)):
            s = {**m.default_schedule, "stage": 3, "tile_oc": tm, "tile_ow": tn, "block_n": bn, "threads_k": rk,
                 "unroll_k": unroll, "wg": (bn // tn) * rk, "block_m": 64, "tile_k": 16, "split_k": 1}
            if s["wg"] > 1024 or m.space().problems(s):
                continue
            r = m.measure(s)
            if r.ok:
                res.append((r.seconds * 1e6, s))
            else:
                failed += 1
                print(label, s, r.error[:300], flush=True)
        res.sort(key=lambda p: p[0])
        row = {"batch": batch, "kind": label, "naive_us": naive, "heuristic_us": heuristic, "split_best_us": res[0][0],
               "naive_vs_split": naive / res[0][0], "measured": len(res), "failed": failed, "top": res[:5]}
        rows.append(row)
        print(f"b{batch} {label}: naive {naive:.1f} us, heuristic {heuristic:.1f} us, best stage 3 {res[0][0]:.1f} us "
              f"(naive/best {naive / res[0][0]:.2f}; {len(res)} schedules): {res[0][1]}", flush=True)
        json.dump(rows, open(path, "w"), indent=1)
