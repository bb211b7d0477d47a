"""Probe: staged 1x1 conv schedules with deeper K tiles (tile_k 64) on CUDA, cold L2.
python tile_k_probe.py BATCH LABEL OUT.json LOCK"""
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from tuner_quality import naive_schedule, pick_workloads  # noqa: E402

from visc.tuner.measure import Measurer  # noqa: E402

batch, label, path, lock = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
((_, task),) = pick_workloads([label], 0, batch)
m = Measurer(task.module_text, "cuda", warmup=2, repeat=20, lock=lock)
naive = m.measure(naive_schedule(dict(m.default_schedule))).seconds
res = []
splits = (1, 2, 4, 8) if "expand" not in label else (1, 2)
for bm, bn, tk, sp, (tm, tn) in itertools.product((32, 64), (32, 64), (16, 32, 64), splits, ((4, 4), (2, 4))):
    wg = (bm // tm) * (bn // tn)
    s = {"stage": 2, "block_m": bm, "block_n": bn, "tile_k": tk, "split_k": sp, "tile_oc": tm, "tile_ow": tn,
         "wg": wg, "unroll_k": 0, "flat": 0, "pack": 0, "unroll_win": 1, "vec": 1}
    r = m.measure(s)
    if r.ok:
        res.append((r.seconds * 1e6, s))
    else:
        print(label, s, r.error[:200], flush=True)
res.sort(key=lambda p: p[0])
by_tk = {tk: min((t for t, s in res if s["tile_k"] == tk), default=None) for tk in (16, 32, 64)}
print(f"b{batch} {label}: naive {naive * 1e6:.1f} us; best per tile_k {by_tk}; top: {res[0]}", flush=True)
json.dump({"batch": batch, "kind": label, "naive_us": naive * 1e6, "by_tile_k": by_tk, "top": res[:8]},
          open(path, "w"), indent=1)
