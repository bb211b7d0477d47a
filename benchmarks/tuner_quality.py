"""Benchmark: tuner quality, TPE against random search on ResNet-50 and MobileNetV2 convolutions.

Workloads (the most frequent task of each kind; seeded random weights): ResNet-50's 7x7/2
stem, a 3x3, a strided 3x3 and a 1x1; MobileNetV2's 1x1 expansion, 3x3 depthwise, strided
3x3 depthwise and 1x1 projection (`--workloads` picks a subset, `--list` shows them).

Each workload runs, for every seed, a TPE study of `--trials` measured trials and a random
study of `--random-trials` (by default 3x as many, so random's count is measured rather than
censored), all through `tune_task` and one measurement worker on the same device and inputs;
a schedule measured once is not measured again (a cache shared by the studies, so noise and
build time are the same for both methods). Per workload:

* every study's trials are its sampler's own (TPE: a few random legal schedules, then its
  model; `--start naive|heuristic` makes that schedule every study's first trial instead:
  both head starts can hide the search, since the heuristic is often within 5% of the best
  already, and on GPUs so is the naive schedule for small memory-bound convs, so that both
  methods need one trial);
* TPE refines (`--refine N`, default 2, as `visc tune`): after its random startup, every
  Nth trial is an unmeasured neighbor of its best so far (`tune_task`'s refine); `--refine 0`
  measures plain TPE. Random search never refines;
* `--transfer N --transfer-from RECORDS` (default off): TPE's startup first measures up to N
  best schedules of the most similar *other* workloads in RECORDS (records of an earlier run
  on the device; `visc.tuner.transfer`, as `visc tune --transfer`). A workload's own key is
  never a donor. Random search gets no seeds: it stays the baseline without prior knowledge;
* `--batch B` (default 1) takes the convs of the models at batch B (ResNet-50 light's
  flattening Reshape to [1, 2048] is given -1): the same layers with B times the work, where
  small MobileNetV2 kernels are no longer bound by the launch. With `--transfer`, a workload's
  batch-1 key is another key, so batch-1 records seed the batch-B studies;
* a trial that times within 10% of its study's best so far is built and timed `--confirm`
  more times, and the study keeps the median of all its runs (`tune_task`'s confirm): a
  trial reaches the target on its typical time, not on a lucky draw;
* target: 95% of the best speed found (time <= best / 0.95). "Best" is not the lowest single
  measurement (the minimum of hundreds of noisy medians is a lucky one that no trial can
  reach again): the `--retime` fastest distinct schedules any study found, the heuristic's
  and the naive one are timed again, `--retime-rounds` builds of `--repeat` runs each, and
  best is the lowest of their medians (the naive or heuristic schedule, when no study beat it);
* "to 95%": measured trials a study needs to reach the target (its first trial included),
  median over seeds. A study that never reaches it counts as its
  budget + 1 for random (in random's favour) and as infinite for TPE (against TPE);
* ratio = TPE's median / random's median; the summary gives the median ratio over workloads
  (issue 5 wants <= 0.5) and the ratio of the medians;
* "random need": random search's trials to the target are geometric, so they are also
  estimated from all its trials pooled (median ln 2 / p, p = the fraction of random trials
  that reach the target; ">" with no hit: a lower bound at p's 95% upper bound). The
  censored count caps random's need at its budget + 1, which flatters random exactly where
  the search matters; "TPE/need" is TPE's median over that estimate;
* "@budget": each method's best time within TPE's budget (median over seeds), over the best
  found: the usual equal-budget comparison;
* "tuned/heuristic": the heuristic default schedule's time (`vision-default-schedule`, timed
  again with the best) over the best time (below 1: the search did not beat the heuristic);
  "tuned/naive": the same against the untuned naive schedule (also timed again), the
  neutral value of every key the lowering reads (tile 1x1, vec 1, no flat, no unroll,
  unstaged) with the heuristic's work-group size (issue 5 wants >= 3).

Prints the table and saves JSON (per-seed counts and curves included). `--jobs N` runs N
workloads at once, each in its own process, their timed runs taking turns on a lock file
(`visc.tuner.measure.timing_turn`): for GPUs on a many-core host, where the builds are the
cost; on a CPU device the builds would disturb the timed runs, so keep `--jobs 1` there.

    python benchmarks/tuner_quality.py [--trials 16] [--random-trials 48] [--seeds 3]
        [--target opencl|cuda|cpu] [--workloads "R 3x3,M dw 3x3"] [--batch 1] [--records-dir DIR] [--plot tq.png]
    python benchmarks/tuner_quality.py --merge a.json,b.json --out tq.json   # subsets run apart
    python benchmarks/tuner_quality.py --target cuda --jobs 8 --trials 32    # a GPU host

Run time: about (trials + random-trials) x seeds x workloads x ~2 s on a 2-core PoCL CPU
(8 workloads, defaults: ~1 h); a smoke run: --trials 4 --random-trials 6 --seeds 1
--workloads "M dw 3x3".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from visc.tools.model_zoo import load_model
from visc.tools.visc_cli import print_table
from visc.tuner.measure import IsolatedMeasurer, Measurement, device_identity
from visc.tuner.plot import Curve, plot_curves, read_curves
from visc.tuner.search import tune_task
from visc.tuner.space import SearchSpace, signature
from visc.tuner.transfer import donors_of, transfer_seeds
from visc.tuner.workload import Task, Workload, model_tasks

# The untuned lowering: each key's neutral value (what the lowering does without the key).
NAIVE = {"tile_oc": 1, "tile_ow": 1, "vec": 1, "flat": 0, "unroll_k": 1, "unroll_win": 1, "stage": 0, "pack": 0,
         "split_k": 1, "threads_k": 1}


def conv_fields(work: Workload) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int, int]:
    """A conv workload's input, weight and output shapes, its stride and groups."""
    x, w = (tuple(int(d) for d in s.split(":")[0].split("x")) for s in work.ins[:2])
    out = tuple(int(d) for d in work.outs[0].split(":")[0].split("x"))
    attrs = dict(work.attrs)
    stride = int(attrs.get("strides", "1").replace("array<i64: ", "").split(",")[0].strip(" >"))
    groups = int(attrs.get("groups", "1").split(":")[0].strip())
    return x, w, out, stride, groups


@dataclass(frozen=True)
class Conv:
    """What classifies a conv workload."""

    oc: int
    ic: int  # input channels (the whole tensor's)
    k: int
    stride: int
    groups: int

    @staticmethod
    def of(work: Workload) -> Conv:
        x, w, _, stride, groups = conv_fields(work)
        return Conv(w[0], x[1], w[2], stride, groups)


KINDS: dict[str, tuple[str, Callable[[Conv], bool]]] = {  # label -> (model, which convs)
    "R stem 7x7/2": ("resnet50", lambda c: c.k == 7 and c.stride == 2),
    "R 3x3": ("resnet50", lambda c: c.k == 3 and c.stride == 1 and c.groups == 1),
    "R 3x3/2": ("resnet50", lambda c: c.k == 3 and c.stride == 2 and c.groups == 1),
    "R 1x1": ("resnet50", lambda c: c.k == 1 and c.stride == 1),
    "M 1x1 expand": ("mobilenet_v2", lambda c: c.k == 1 and c.oc > c.ic),
    "M dw 3x3": ("mobilenet_v2", lambda c: c.k == 3 and c.stride == 1 and c.groups == c.ic > 1),
    "M dw 3x3/2": ("mobilenet_v2", lambda c: c.k == 3 and c.stride == 2 and c.groups == c.ic > 1),
    "M 1x1 project": ("mobilenet_v2", lambda c: c.k == 1 and c.oc < c.ic and c.groups == 1),
}

COLUMNS = (
    ("kind", "kind", ""),
    ("workload", "workload", ""),
    ("naive_us", "naive us", ".0f"),
    ("default_us", "heuristic us", ".0f"),
    ("best_us", "best us", ".0f"),
    ("tpe_to95", "TPE to 95%", ""),
    ("random_to95", "random to 95%", ""),
    ("ratio", "TPE/random", ".2f"),
    ("random_need_text", "random need", ""),
    ("ratio_need", "TPE/need", ".2f"),
    ("tpe_at_budget", "TPE@budget", ".3f"),
    ("random_at_budget", "random@budget", ".3f"),
    ("vs_default", "tuned/heuristic", ".2f"),
    ("vs_naive", "tuned/naive", ".2f"),
)


def batched(model: Any, batch: int) -> tuple[Any, dict[str, list[int]] | None]:
    """`model` (an ONNX ModelProto) and its input shapes with dim 0 set to `batch` (None: as
    saved). A Reshape to a constant shape led by 1 (ResNet-50 light flattens to [1, 2048])
    gets -1 there, so the model takes any batch."""
    if batch == 1:
        return model, None
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        shape = inits.get(node.input[1]) if node.op_type == "Reshape" and len(node.input) > 1 else None
        if shape is not None:
            value = numpy_helper.to_array(shape).copy()
            if value.size and value[0] == 1:
                value[0] = -1
                shape.CopyFrom(numpy_helper.from_array(value, shape.name))
    return model, {i.name: [batch] + [d.dim_value for d in i.type.tensor_type.shape.dim[1:]]
                   for i in model.graph.input if i.name not in inits}


def pick_workloads(labels: list[str], seed: int, batch: int = 1) -> list[tuple[str, Task]]:
    """The most frequent conv task of each kind (first occurrence on ties), at `batch`."""
    tasks: dict[str, list[Task]] = {}
    picked = []
    for label in labels:
        model, match = KINDS[label]
        if model not in tasks:
            tasks[model] = model_tasks(*batched(load_model(model, seed=seed), batch), kinds=("vision.conv2d",))
        matches = [t for t in tasks[model] if match(Conv.of(t.workload))]
        if not matches:
            raise SystemExit(f"{model} has no conv of kind '{label}'")
        picked.append((label, max(matches, key=lambda t: t.weight)))
    return picked


class CachedMeasurer:
    """One measurement per distinct schedule (and confirming round), shared by every study of
    a workload; `start` is the schedule every study measures first (its "default")."""

    def __init__(self, inner: IsolatedMeasurer, start: dict[str, int]):
        self.inner = inner
        self.default_schedule = start
        self.cache: dict[tuple[str, int], Measurement] = {}
        self._space: SearchSpace | None = None

    def space(self) -> SearchSpace:
        if self._space is None:
            self._space = self.inner.space()
        return self._space

    def measure(self, schedule: dict[str, int] | None, again: int = 0) -> Measurement:
        key = (signature(schedule), again)
        if key not in self.cache:
            self.cache[key] = self.inner.measure(schedule)
        return self.cache[key]

    def times(self, sig: str) -> list[float]:
        """Every timed run of the schedule `sig` so far (all its rounds)."""
        return [t for (s, _), m in sorted(self.cache.items()) if s == sig for t in m.times]


def measured(dbs: list[str], device_id: str, key: str) -> tuple[dict[str, float], dict[str, list[int]]]:
    """Every schedule the studies of `key` measured (its `signature`) -> its fastest time;
    and per sampler, each study's count of confirmed trials (the extra builds it cost)."""
    import optuna
    from optuna.trial import TrialState

    from visc.tuner.search import is_measured, open_storage, study_name, trial_schedule

    out: dict[str, float] = {}
    confirmed: dict[str, list[int]] = {"tpe": [], "random": []}
    for db in dbs:
        storage = open_storage(db)
        for sampler in ("tpe", "random"):
            study = optuna.load_study(study_name=study_name(device_id, key, sampler), storage=storage)
            trials = study.get_trials(deepcopy=False)
            confirmed[sampler].append(sum(1 for t in trials if is_measured(t) and "confirmed" in t.user_attrs))
            for t in trials:
                if t.state == TrialState.COMPLETE:
                    sig = signature(trial_schedule(t))
                    out[sig] = min(out.get(sig, math.inf), float(t.value))
    return out, confirmed


def retime(measurer: CachedMeasurer, found: dict[str, float], top: int, rounds: int,
           also: list[dict[str, int]]) -> list[dict[str, Any]]:
    """The `top` fastest distinct schedules the studies `found`, and those in `also`, each
    built and timed `rounds` more times: their median over every timed run, fastest first."""
    ranked = sorted(found.items(), key=lambda p: p[1])[:top]
    have = {sig for sig, _ in ranked}
    for sched in also:
        sig = signature(sched)
        m = measurer.measure(sched)
        if m.ok and sig not in have:
            ranked.append((sig, float(m.seconds)))  # type: ignore[arg-type]
    out = []
    for sig, first in ranked:
        schedule = json.loads(sig)
        times = measurer.times(sig)
        for _ in range(rounds):
            m = measurer.inner.measure(schedule)
            times += m.times if m.ok else []
        if times:
            out.append({"schedule": schedule, "first": first, "seconds": float(statistics.median(times)),
                        "runs": len(times)})
    return sorted(out, key=lambda r: r["seconds"])


def naive_schedule(default: dict[str, int]) -> dict[str, int]:
    return {k: NAIVE.get(k, v) for k, v in default.items()}


def _short(describe: str) -> str:
    return describe.removeprefix("conv2d ").replace(" groups=1", "").replace(" +epilogue", "+")


def _count(n: float) -> str:
    return "inf" if math.isinf(n) else f"{n:g}"


def random_need(times: list[list[float | None]], target: float) -> tuple[float, bool]:
    """Trials random search needs to reach `target`, estimated from all its trials pooled
    (`times`: one list per seed): each random trial reaches the target with probability p,
    so the trials needed are geometric with median ln 2 / p. p is estimated as hits / trials;
    with no hit, p is taken at its 95% upper bound 3 / trials (rule of three), so the estimate
    is a lower bound (returned with True). Unlike the censored per-seed count, this does not
    cap random's need at its budget."""
    pooled = [t for seed in times for t in seed]
    hits = sum(1 for t in pooled if t is not None and t <= target)
    p = (hits if hits else 3) / max(1, len(pooled))
    return max(1.0, math.log(2) / p), hits == 0


def best_after(times: list[list[float | None]], n: int, best: float) -> float | None:
    """Median over seeds of the best time within the first `n` trials, over `best`."""
    firsts = [min((t for t in seed[:n] if t is not None), default=math.inf) for seed in times]
    value = statistics.median(firsts) / best if firsts else math.inf
    return None if math.isinf(value) else value


def score(row: dict[str, Any], curves: dict[str, list[list[float | None]]], trials: int) -> dict[str, Any]:
    """`row`'s measures read off the saved curves: random's geometric need and the ratio
    against it, and both methods' best within TPE's budget (1.00: the best found)."""
    best = row["best_us"] * 1e-6
    need, bound = random_need(curves["random"], best / 0.95)
    return {**row, "random_need": need, "random_need_bound": bound,
            "random_need_text": (">" if bound else "") + f"{need:.0f}",
            "ratio_need": row["tpe_median"] / need,
            "tpe_at_budget": best_after(curves["tpe"], trials, best),
            "random_at_budget": best_after(curves["random"], trials, best)}


def report(rows: list[dict[str, Any]], trials: int, random_trials: int, seeds: int) -> dict[str, Any]:
    """Print the table of `rows` (one per workload) with its median row; the summary."""

    def median_of(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return statistics.median(values) if values else None

    summary = {
        "median_ratio": median_of("ratio"),
        "ratio_of_medians": (median_of("tpe_median") or math.nan) / (median_of("random_median") or math.nan),
        "tpe_median": median_of("tpe_median"), "random_median": median_of("random_median"),
        "vs_default": median_of("vs_default"), "vs_naive": median_of("vs_naive"),
        "min_vs_naive": min((r["vs_naive"] for r in rows if r["vs_naive"] is not None), default=None),
        "median_ratio_need": median_of("ratio_need"),
        "tpe_at_budget": median_of("tpe_at_budget"), "random_at_budget": median_of("random_at_budget"),
    }
    table = rows + [{"kind": "median", "workload": "", "naive_us": median_of("naive_us"),
                     "default_us": median_of("default_us"), "best_us": median_of("best_us"),
                     "tpe_to95": _count(summary["tpe_median"]), "random_to95": _count(summary["random_median"]),
                     "ratio": summary["median_ratio"], "random_need_text": "", "ratio_need": summary["median_ratio_need"],
                     "tpe_at_budget": summary["tpe_at_budget"], "random_at_budget": summary["random_at_budget"],
                     "vs_default": summary["vs_default"], "vs_naive": summary["vs_naive"]}]
    print()
    print_table([{k: (v if v is not None else float("nan")) for k, v in r.items()} for r in table], COLUMNS)
    def num(key: str, unit: str = "") -> str:
        value = summary[key]
        return "n/a" if value is None else f"{value:.2f}{unit}"

    print(f"\nmedian over workloads of TPE/random trials to 95% of the best: {num('median_ratio')} "
          f"(ratio of medians {num('ratio_of_medians')}; target <= 0.5). TPE {trials} trials, "
          f"random {random_trials}, {seeds} seeds. Tuned vs heuristic: median {num('vs_default', 'x')}; "
          f"tuned vs naive: median {num('vs_naive', 'x')}, lowest {num('min_vs_naive', 'x')} (target >= 3).\n"
          f"against random's geometric need (all its trials pooled): median TPE/random {num('median_ratio_need')}; "
          f"best within {trials} trials over the best found, median: TPE {num('tpe_at_budget')}, "
          f"random {num('random_at_budget')}.")
    failed = [f"{r['kind']}: {r['naive_error']}" for r in rows if r.get("naive_error")]
    if failed:
        print("naive schedule failed: " + "; ".join(failed))
    return summary


def merge(paths: list[str], out: str) -> int:
    """One table and JSON from runs saved apart (same trials, seeds and device)."""
    runs = [json.load(open(p)) for p in paths]
    first = runs[0]
    for r in runs[1:]:
        for key in ("device", "trials", "random_trials", "seeds", "start", "confirm", "refine"):
            if r.get(key) != first.get(key):
                raise SystemExit(f"cannot merge runs with different {key}: {first.get(key)} and {r.get(key)}")
    rows = [score(row, r["curves"][row["key"]], r["trials"]) for r in runs for row in r["rows"]]
    print(f"{len(rows)} workloads on {first['device']} from {', '.join(paths)}")
    summary = report(rows, first["trials"], first["random_trials"], len(first["seeds"]))
    merged = {**first, "rows": rows, "summary": summary, "merged_from": paths,
              "curves": {k: v for r in runs for k, v in r["curves"].items()}}
    with open(out, "w") as f:
        json.dump(merged, f, indent=1)
    print(f"saved {out}")
    return 0


def _without(argv: list[str], *options: str) -> list[str]:
    """`argv` less `options` and their values."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in options:
            skip = True
        elif not any(a.startswith(o + "=") for o in options):
            out.append(a)
    return out


def _record_files(paths: list[str]) -> list[str]:
    """Records sources, a directory standing for every database under it."""
    import glob

    out = []
    for p in paths:
        out += sorted(glob.glob(os.path.join(p, "**", "*.db"), recursive=True)) if os.path.isdir(p) else [p]
    return out


def run_jobs(labels: list[str], args: argparse.Namespace, argv: list[str]) -> int:
    """Each workload in its own process (`args.jobs` at once), timed runs on one lock; merged."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    os.makedirs(args.records_dir or ".", exist_ok=True)
    parts = tempfile.mkdtemp(prefix="tuner_quality_")
    lock = os.path.join(parts, "timing.lock")
    base = _without(argv, "--jobs", "--workloads", "--out", "--plot", "--records-dir")

    def one(i: int, label: str) -> str:
        out = os.path.join(parts, f"part{i}.json")
        records = os.path.join(args.records_dir, f"w{i}") if args.records_dir else os.path.join(parts, f"w{i}")
        cmd = [sys.executable, os.path.abspath(__file__), *base, "--workloads", label, "--out", out,
               "--records-dir", records, "--timing-lock", lock]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(f"--- {label} (exit {proc.returncode})\n{proc.stdout}{proc.stderr[-2000:] if proc.returncode else ''}",
              flush=True)
        if proc.returncode:
            raise SystemExit(f"workload '{label}' failed")
        return out

    with ThreadPoolExecutor(args.jobs) as pool:
        outs = list(pool.map(one, range(len(labels)), labels))
    return merge(outs, args.out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=16, help="measured trials of each TPE study")
    ap.add_argument("--random-trials", type=int, default=None,
                    help="measured trials of each random study (default: 3x --trials)")
    ap.add_argument("--seeds", type=int, default=3, help="studies per method and workload (seeds S..S+N-1)")
    ap.add_argument("--first-seed", type=int, default=0, help="S, the first seed (a second run on new seeds)")
    ap.add_argument("--start", choices=["none", "naive", "heuristic"], default="none",
                    help="the first trial of every study: the sampler's own (default), the untuned naive "
                    "schedule, or the heuristic's (often within 5%% of the best: both methods then need 1 trial)")
    ap.add_argument("--workloads", default=",".join(KINDS), help="comma-separated kinds (see --list)")
    ap.add_argument("--list", action="store_true", help="list the workload kinds and exit")
    ap.add_argument("--target", default="opencl", choices=["opencl", "cuda", "cpu"],
                    help="the backend whose kernels are tuned and timed")
    ap.add_argument("--device", default=None, help="OpenCL device ('P:D' or a name substring)")
    ap.add_argument("--merge", default=None, metavar="A.json,B.json",
                    help="only merge saved runs (e.g. workload subsets run apart) into one table and --out")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per trial (median)")
    ap.add_argument("--min-repeat-ms", type=float, default=0.0,
                    help="more timed runs per trial (up to 200) until the kernels add up to this many ms")
    ap.add_argument("--confirm", type=int, default=2,
                    help="re-measurements of a trial within 10%% of its study's best (tune_task's confirm; 0: off)")
    ap.add_argument("--refine", type=int, default=2,
                    help="TPE's local moves: every Nth trial after its startup a neighbor of the best "
                    "(tune_task's refine; 0: plain TPE); random search never refines")
    ap.add_argument("--transfer", type=int, default=0, metavar="N",
                    help="TPE's startup first measures up to N best schedules of the most similar other workloads "
                    "in --transfer-from (0: none)")
    ap.add_argument("--transfer-from", action="append", default=[], metavar="RECORDS",
                    help="records databases or exports of an earlier run to transfer from (repeatable)")
    ap.add_argument("--retime", type=int, default=6,
                    help="distinct fastest schedules timed again to fix the best time (0: the lowest single median)")
    ap.add_argument("--retime-rounds", type=int, default=3, help="extra builds (of --repeat runs) per re-timed schedule")
    ap.add_argument("--jobs", type=int, default=1, help="workloads run at once, one process each (GPU hosts)")
    ap.add_argument("--timing-lock", default=None, help=argparse.SUPPRESS)  # set by --jobs for its children
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds of timed runs before a trial fails")
    ap.add_argument("--build-timeout", type=float, default=30.0,
                    help="seconds a trial's build may take before it fails (a slow compile is a failure)")
    ap.add_argument("--weights-seed", type=int, default=0, help="seed of the models' random weights")
    ap.add_argument("--batch", type=int, default=1, help="the models' batch size (their convs' dim 0)")
    ap.add_argument("--records-dir", default=None, help="keep the studies here, one database per seed "
                    "(default: a temporary directory)")
    ap.add_argument("--plot", default=None, help="also write seed 0's best-time-versus-trial PNG here")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "tuner_quality.json"))
    args = ap.parse_args(argv)
    if args.list:
        for label, (model, _) in KINDS.items():
            print(f"{label:15s} {model}")
        return 0
    if args.merge:
        return merge([p.strip() for p in args.merge.split(",") if p.strip()], args.out)
    labels = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in labels if w not in KINDS]
    if unknown:
        raise SystemExit(f"unknown workload kinds {unknown} (known: {', '.join(KINDS)})")
    random_trials = args.random_trials or 3 * args.trials
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if args.jobs > 1 and len(labels) > 1:
        return run_jobs(labels, args, argv if argv is not None else sys.argv[1:])

    tmp = None
    if args.records_dir is None:
        tmp = tempfile.TemporaryDirectory()
        args.records_dir = tmp.name
    os.makedirs(args.records_dir, exist_ok=True)
    dbs = {s: os.path.join(args.records_dir, f"tuner_quality_seed{s}.db") for s in seeds}
    device_id = device_identity(args.target, args.device)
    picked = pick_workloads(labels, args.weights_seed, args.batch)
    print(f"{len(picked)} conv workloads on {device_id}; per seed ({len(seeds)}): TPE {args.trials} trials, "
          f"random {random_trials}; first trials: {args.start}", flush=True)
    donors = donors_of(_record_files(args.transfer_from), device_id) if args.transfer else []
    if args.transfer:
        print(f"transfer: {len(donors)} tuned workloads of {device_id} in {len(args.transfer_from)} sources", flush=True)

    start = time.perf_counter()
    rows = []
    curves_out: dict[str, Any] = {}
    for label, task in picked:
        t0 = time.perf_counter()
        with IsolatedMeasurer(task.module_text, args.target, args.device, warmup=1, repeat=args.repeat,
                              timeout=args.timeout, seed=0, build_timeout=args.build_timeout,
                              lock=args.timing_lock, min_ms=args.min_repeat_ms) as inner:
            heuristic = dict(inner.default_schedule)
            naive_sched = naive_schedule(heuristic)
            measurer = CachedMeasurer(inner, naive_sched if args.start == "naive" else heuristic)
            first = args.start != "none"
            default = measurer.measure(heuristic)
            naive = measurer.measure(naive_sched)
            transferred = transfer_seeds(task, measurer.space(), donors, args.transfer)
            for s in seeds:
                tune_task(task, measurer, dbs[s], device_id, args.trials, "tpe", s, resume=True,
                          start_with_default=first, confirm=args.confirm, refine=args.refine, seeds=transferred)
                tune_task(task, measurer, dbs[s], device_id, random_trials, "random", s, resume=True,
                          start_with_default=first, confirm=args.confirm)
            found, confirmed = measured([dbs[s] for s in seeds], device_id, task.key)
            retimed = retime(measurer, found, args.retime, args.retime_rounds,
                             [heuristic, naive_sched] if args.retime else [])
        again = {signature(r["schedule"]): r["seconds"] for r in retimed}
        default_s = again.get(signature(heuristic), default.seconds)
        naive_s = again.get(signature(naive_sched), naive.seconds)
        per_seed: dict[str, list[Curve]] = {"tpe": [], "random": []}
        for s in seeds:
            (tc,) = read_curves(dbs[s], device_id, [task.key])
            for method in per_seed:
                per_seed[method].append(tc.curves[method])
        single = min(c.best for cs in per_seed.values() for c in cs if c.best is not None)
        best = min((r["seconds"] for r in retimed), default=single)
        target = best / 0.95
        counts = {m: [c.trials_to_reach(target) for c in cs] for m, cs in per_seed.items()}
        censored = {"tpe": math.inf, "random": random_trials + 1}
        med = {m: statistics.median(n if n is not None else censored[m] for n in ns) for m, ns in counts.items()}
        row = {
            "kind": label, "model": KINDS[label][0], "workload": _short(task.describe()), "key": task.key,
            "occurrences": task.weight, "naive_us": naive_s * 1e6 if naive.ok else None,
            "naive_error": naive.error, "naive_schedule": naive_sched,
            "default_us": default_s * 1e6 if default.ok else None,
            "default_schedule": heuristic, "best_us": best * 1e6, "best_single_us": single * 1e6,
            "retimed": retimed,
            "tpe_counts": counts["tpe"], "random_counts": counts["random"],
            "tpe_median": med["tpe"], "random_median": med["random"],
            "tpe_to95": _count(med["tpe"]), "random_to95": _count(med["random"]),
            "ratio": med["tpe"] / med["random"],
            "vs_default": default_s / best if default.ok else None,
            "vs_naive": naive_s / best if naive.ok else None,
            "measured_distinct": len(found), "confirmed": confirmed, "transfer_seeds": transferred,
            "failed": {m: [sum(t is None for t in c.times) for c in cs] for m, cs in per_seed.items()},
        }
        curves_out[task.key] = {m: [c.times for c in cs] for m, cs in per_seed.items()}
        row = score(row, curves_out[task.key], args.trials)
        rows.append(row)
        print(f"  {label:14s} {_short(task.describe())}: {len(transferred)} transferred; TPE {row['tpe_to95']} {counts['tpe']}, random "
              f"{row['random_to95']} {counts['random']}; {time.perf_counter() - t0:.0f} s", flush=True)

    summary = report(rows, args.trials, random_trials, len(seeds))
    print(f"{time.perf_counter() - start:.0f} s")

    if args.plot:
        first = {c.key: c for c in read_curves(dbs[seeds[0]], device_id, [t.key for _, t in picked])}
        plot_curves([first[t.key] for _, t in picked], args.plot,
                    title=f"ResNet-50 / MobileNetV2 convs on {device_id} (seed {seeds[0]})")
        print(f"plot: {args.plot}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"device": device_id, "trials": args.trials, "random_trials": random_trials, "seeds": seeds,
                   "start": args.start, "confirm": args.confirm, "refine": args.refine,
                   "transfer": args.transfer, "transfer_from": args.transfer_from,
                   "repeat": args.repeat, "min_repeat_ms": args.min_repeat_ms, "weights_seed": args.weights_seed, "batch": args.batch, "python": sys.version.split()[0],
                   "machine": platform.machine(), "cpus": os.cpu_count(), "naive": NAIVE,
                   "rows": rows, "summary": summary, "curves": curves_out}, f, indent=1)
    print(f"saved {args.out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
