"""Probe for the GPU heuristic's stage-3 rule: every distinct groups=1 conv of ResNet-50 and
MobileNetV2 (batch 1 and 8) timed on CUDA (cold L2) with the current heuristic and a fixed set
of stage-3 schedules that fit in 256 threads (the heuristic's work-group limit), in worker
processes whose timed runs take turns on the GPU.
python heuristic_probe.py OUT.json [JOBS]"""
import json
import multiprocessing as mp
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

# (tile_oc, tile_ow, block_n, threads_k): wg = block_n / tile_ow * threads_k
CANDIDATES = [(2, 1, 32, 8), (4, 1, 32, 8), (2, 1, 16, 16), (4, 1, 16, 16), (4, 2, 64, 8), (8, 2, 32, 16),
              (4, 1, 64, 4), (2, 1, 64, 4), (8, 1, 32, 8), (2, 1, 32, 16), (4, 1, 32, 32)]
LOCK = "/tmp/heuristic_probe.lock"


def one(args):
    model, batch, text = args
    from xdsl.parser import Parser

    from visc.dialects import make_context
    from visc.passes.lowering.conv_staged import gemm_sizes
    from visc.tuner.measure import Measurer
    from visc.tuner.space import task_op

    m = Measurer(text, "cuda", warmup=2, repeat=15, lock=LOCK)
    op = task_op(Parser(make_context(), text).parse_module())
    mm, nn, kk = gemm_sizes(op)
    row = {"model": model, "batch": batch, "m": mm, "n": nn, "k": kk, "heuristic": dict(m.default_schedule)}
    r = m.measure(dict(m.default_schedule))
    row["heuristic_us"] = r.seconds * 1e6 if r.ok else None
    row["split"] = {}
    for tm, tn, bn, rk in CANDIDATES:
        s = {**m.default_schedule, "stage": 3, "block_m": 64, "tile_k": 16, "split_k": 1, "tile_oc": tm,
             "tile_ow": tn, "block_n": bn, "threads_k": rk, "unroll_k": 4, "wg": bn // tn * rk}
        if m.space().problems(s):
            continue
        r = m.measure(s)
        row["split"][f"{tm},{tn},{bn},{rk}"] = r.seconds * 1e6 if r.ok else None
    return row


def main() -> None:
    from tuner_quality import batched

    from visc.tools.model_zoo import load_model
    from visc.tuner.workload import model_tasks

    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    work = []
    for model in ("mobilenet_v2", "resnet50"):
        for batch in (1, 8):
            for t in model_tasks(*batched(load_model(model, seed=0), batch), kinds=("vision.conv2d",)):
                if "groups=1" in t.describe():
                    work.append((model, batch, t.module_text))
    print(len(work), "tasks", flush=True)
    rows = []
    with mp.get_context("spawn").Pool(jobs) as pool:
        for row in pool.imap_unordered(one, work):
            rows.append(row)
            best = min(((t, k) for k, t in row["split"].items() if t), default=(None, None))
            print(row["model"], row["batch"], row["m"], row["n"], row["k"], "heur", row["heuristic_us"] and
                  round(row["heuristic_us"], 1), "best split", best[0] and round(best[0], 1), best[1], flush=True)
            json.dump(rows, open(sys.argv[1], "w"), indent=1)


if __name__ == "__main__":
    main()
