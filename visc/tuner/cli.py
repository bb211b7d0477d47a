"""`visc tune` and `visc records`: the tuner's commands (registered by visc.tools.visc_cli).

    visc tune model.onnx --target opencl --trials 64 [--records tuning.db] [--resume] [--ray [ADDRESS]]
                         [--sampler tpe|random] [--confirm 2] [--refine 2] [--transfer 4] [--transfer-from R]
                         [--plot curves.png]
    visc records best [--records tuning.db] [--device-id ID]
    visc records export out.json | visc records import in.json
    visc records validate model.onnx [--records tuning.db|file.json|shipped] [--target opencl] [--out kept.json]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from visc.errors import UsageError

if TYPE_CHECKING:
    from visc.tuner.search import TuneResult
    from visc.tuner.workload import Task

DEFAULT_RECORDS = "tuning.db"


def tune_tasks(args: argparse.Namespace, tasks: Sequence[Task], device_id: str, storage: Any,
               bars: bool = True, tags: dict[str, Any] | None = None,
               say: Callable[[str], None] = print) -> list[TuneResult]:
    """Tune `tasks` one after the other on this host's device, as `visc tune` does (also each
    Ray worker of `visc tune --ray`, with `bars` off and `tags` naming its node). A task whose
    study already holds ``--trials`` measured trials (other runs spent the budget) is skipped
    before its measurer is built."""
    from tqdm import tqdm

    from visc.tuner.measure import IsolatedMeasurer, Measurer
    from visc.tuner.search import study_summary, tune_task
    from visc.tuner.transfer import donors_of, timings, transfer_seeds

    transfer = args.sampler == "tpe" and args.transfer > 0
    # the other donors do not change while tuning: read once; the records grow task by task
    fixed = timings([*args.transfer_from, "shipped"], device_id) if transfer else {}
    results = []
    for i, task in enumerate(tasks):
        label = f"[{i + 1}/{len(tasks)}] {task.describe()[:48]}"
        done = study_summary(storage, device_id, task.key, args.sampler) if args.resume else None
        if done is not None and done.measured >= args.trials:
            say(f"{label}: the study holds {done.measured} measured trials (--trials {args.trials}): nothing to do")
            results.append(done)
            continue
        factory: Any = Measurer if args.no_isolation else IsolatedMeasurer
        measurer = factory(task.module_text, args.target, args.device, warmup=args.warmup, repeat=args.repeat,
                           timeout=args.timeout, seed=args.seed, min_ms=args.min_repeat_ms)
        bar = tqdm(total=args.trials, desc=label, unit="trial", leave=True, dynamic_ncols=True, disable=not bars)

        def progress(measured: int, best: float | None, bar: Any = bar) -> None:
            bar.n = min(measured, bar.total)
            bar.set_postfix_str(f"best {best * 1e6:.1f} us" if best is not None else "best -", refresh=True)

        seeds: list[dict[str, int]] = []
        if transfer:
            donors = donors_of([args.records], device_id, known=fixed)
            seeds = transfer_seeds(task, measurer.space(), donors, args.transfer)
        try:
            result = tune_task(task, measurer, storage, device_id, args.trials, args.sampler, args.seed,
                               args.resume, progress, confirm=args.confirm, refine=args.refine, seeds=seeds,
                               tags=tags)
        finally:
            bar.close()
            if hasattr(measurer, "close"):
                measurer.close()
        if not bars or result.ran < result.measured:
            say(f"{label}: measured {result.ran} of the study's {result.measured} trials")
        results.append(result)
    return results


def speedup_text(result: TuneResult) -> str:
    """The table's speedup: "1.00 default" when the best trial is the default schedule (its
    two timings differ by noise alone), "-" when nothing was measured."""
    if result.speedup is None:
        return "-"
    return f"{result.speedup:.2f}" + (" default" if result.best_is_default else "")


def result_row(task: Task, result: TuneResult) -> dict[str, Any]:
    return {"task": task.describe()[:60], "ops": task.weight, "default_us": (result.default_seconds or 0.0) * 1e6,
            "best_us": (result.best_seconds or 0.0) * 1e6, "speedup": speedup_text(result),
            "trials": result.measured, "ran": result.ran, "failed": result.failed}


RESULT_COLUMNS = (("task", "task", ""), ("ops", "ops", "d"), ("default_us", "default us", ".1f"),
                  ("best_us", "best us", ".1f"), ("speedup", "speedup", ""), ("trials", "trials", "d"),
                  ("ran", "this run", "d"), ("failed", "failed", "d"))


def check_tune_args(args: argparse.Namespace) -> None:
    """Every `visc tune` option a run would trip over later (after compiling tasks, or after
    hours of tuning: the plot), checked first."""
    from visc.tools.checks import above, at_least, writable_output
    from visc.tuner.records import check_records

    at_least("--trials", args.trials, 1, "measured trials per task")
    at_least("--warmup", args.warmup, 0)
    at_least("--repeat", args.repeat, 1, "timed runs per trial")
    at_least("--min-repeat-ms", args.min_repeat_ms, 0)
    for option in ("confirm", "refine", "transfer", "seed"):
        at_least(f"--{option}", getattr(args, option), 0)
    above("--timeout", args.timeout, 0, "seconds")
    if not args.all_ops:
        kinds = [k.strip() for k in args.ops.split(",") if k.strip()]
        known = sorted(_op_kinds())
        unknown = [k for k in kinds if k not in known]
        if unknown or not kinds:
            raise UsageError(f"--ops {args.ops}: {', '.join(repr(k) for k in unknown) or 'no op kind'} "
                             f"{'is' if len(unknown) == 1 else 'are'} not an op kind visc tunes "
                             f"(known: {', '.join(known)}; or --all-ops)")
    if args.plot:
        writable_output(args.plot, "--plot")
    check_records(args.records, write=True)
    for extra in args.transfer_from:
        if extra != "shipped":
            check_records(extra)


def _op_kinds() -> set[str]:
    """The vision op kinds a schedule applies to (what `--ops` may name)."""
    from visc.passes.lowering.vision_to_loops import LOWERINGS

    return {op_type.name.removeprefix("vision.") for op_type in LOWERINGS}


def cmd_tune(args: argparse.Namespace) -> int:
    from visc.tools.checks import check_device
    from visc.tools.visc_cli import model_input_shapes, print_table
    from visc.tuner.measure import device_identity
    from visc.tuner.search import open_storage
    from visc.tuner.workload import model_tasks

    if args.ray is not None:
        from visc.runtime.ray_engine import ray_module

        ray_module("visc tune --ray")  # no Ray: say so before reading the model
    if args.plot:
        from visc.tuner.plot import _pyplot

        _pyplot()  # no matplotlib: say so before tuning, not after
    check_tune_args(args)
    if args.ray is None:
        check_device(args.target, args.device)  # with --ray, the device is the workers'
    shapes = model_input_shapes(args.input_shape, args.model)
    kinds = None if args.all_ops else tuple(f"vision.{k.strip()}" for k in args.ops.split(",") if k.strip())
    tasks = model_tasks(args.model, shapes, kinds)
    if args.ray is not None:
        from visc.tuner.cluster import tune_on_ray

        return tune_on_ray(args, tasks)
    device_id = device_identity(args.target, args.device)
    with records_errors(args.records):
        storage = open_storage(args.records)
        print(f"{len(tasks)} tasks on {device_id}; records: {args.records}")
        results = tune_tasks(args, tasks, device_id, storage)
    print_table([result_row(t, r) for t, r in zip(tasks, results, strict=True)], RESULT_COLUMNS)
    if args.plot:
        from visc.tuner.plot import plot_records

        n = plot_records(args.records, args.plot, device_id, [t.key for t in tasks])
        print(f"plot of {n} tasks (every sampler in the records): {args.plot}")
    return 0


@contextmanager
def records_errors(records: str) -> Iterator[None]:
    """A database error while the records are read or written (made read-only mid-run, a full
    disk, a locked file), as one sentence naming them instead of Optuna's chained tracebacks."""
    from visc.tuner.records import storage_failure

    try:
        yield
    except _storage_errors() as e:
        raise storage_failure(records, e) from None


def _storage_errors() -> tuple[type[BaseException], ...]:
    """The exception types of the records database (none without Optuna: nothing of it runs)."""
    try:
        from optuna.exceptions import StorageInternalError
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        return ()
    return (SQLAlchemyError, StorageInternalError)


def _no_records(records: str, device_id: str | None) -> str:
    """Why `visc records best` shows nothing: an empty database, or ``--device-id`` naming a
    device the records do not have (they are listed)."""
    from visc.tuner.records import best_records

    others = sorted({r.device for r in best_records(records)}) if device_id else []
    if others:
        return f"no records for --device-id {device_id} in {records}; it holds records for: {'; '.join(others)}"
    return f"no records in {records}"


def cmd_records(args: argparse.Namespace) -> int:
    from visc.tools.checks import at_least, writable_output
    from visc.tools.visc_cli import print_table
    from visc.tuner.records import (
        best_records,
        check_records,
        export_records,
        import_records,
        record_rows,
    )

    if args.action != "best" and not args.file:
        what = "the ONNX model" if args.action == "validate" else "the .json file"
        raise UsageError(f"visc records {args.action}: give {what}")
    if args.action == "validate":
        at_least("--repeat", args.repeat, 1, "profiled runs each way")
        if args.out:
            writable_output(args.out, "--out")
        if args.records != "shipped":  # a database gets the verdicts written into it
            check_records(args.records, write=not args.records.endswith(".json"))
        with records_errors(args.records):
            return _validate(args)
    if args.action == "export":
        check_records(args.records)
        writable_output(args.file, "visc records export")
    with records_errors(args.records):
        if args.action == "best":
            rows = record_rows(best_records(args.records, args.device_id))
            if not rows:
                print(_no_records(args.records, args.device_id))
                return 0
            print_table(rows, (("device", "device", ""), ("workload", "workload", ""), ("best_us", "best us", ".1f"),
                               ("default_us", "default us", ".1f"), ("speedup", "speedup", ".2f"),
                               ("trials", "trials", "d"), ("schedule", "schedule", "")))
        elif args.action == "export":
            n = export_records(args.records, args.file, args.device_id)
            print(f"exported {n} records to {args.file}")
        else:
            n = import_records(args.records, args.file)
            print(f"imported {n} records into {args.records}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    """`visc records validate model.onnx`: time the records inside the model (visc.tuner.validate)."""
    import os

    from tqdm import tqdm

    from visc.tools.checks import check_device
    from visc.tools.visc_cli import model_input_shapes, print_table
    from visc.tuner.measure import device_identity
    from visc.tuner.records import _is_json, best_records, shipped_records, write_export
    from visc.tuner.validate import mark_verdicts, validate_records

    shipped = args.records == "shipped"
    source = None if shipped else args.records
    check_device(args.target, args.device)
    shapes = model_input_shapes(args.input_shape, args.file)
    with tqdm(total=args.repeat, desc="profiling with and without the records", unit="run") as bar:
        validation = validate_records(args.file, source, args.target, args.device, args.repeat, shapes,
                                      progress=lambda n: bar.update(n - bar.n))
    verdicts = validation.verdicts
    print_table([{"workload": v.workload[:60], "ops": v.nodes, "record_us": v.record_us,
                  "default_us": v.default_us, "speedup": v.speedup, "kept": "yes" if v.kept else "no"}
                 for v in verdicts],
                (("workload", "workload", ""), ("ops", "ops", "d"), ("record_us", "in model us", ".1f"),
                 ("default_us", "heuristic us", ".1f"), ("speedup", "speedup", ".2f"), ("kept", "kept", "")))
    kept = sum(v.kept for v in verdicts)
    print(f"{kept} of {len(verdicts)} records beat the heuristic inside {os.path.basename(args.file)}")
    print(f"whole model, wall time (median of {args.repeat}): {validation.model_ms:.2f} ms with the records, "
          f"{validation.default_model_ms:.2f} ms with the heuristic only ({validation.speedup:.2f}x)")
    ident = device_identity(args.target, args.device)
    if source is not None and not _is_json(source):
        n = mark_verdicts(source, ident, verdicts, args.file)
        print(f"verdicts written to {n} studies in {source}: compiles skip the {len(verdicts) - kept} rejected")
    if args.out:
        losers = {v.key for v in verdicts if not v.kept}
        chosen = shipped_records(ident) if shipped else best_records(source, ident)
        n = write_export([r for r in chosen if r.key not in losers], args.out)
        print(f"exported {n} records (the rejected left out) to {args.out}")
    return 0


def add_parsers(sub: Any, shape_help: str) -> None:
    s = sub.add_parser("tune", help="search schedules for a model's kernels on the device (Optuna)")
    s.add_argument("model")
    s.add_argument("--target", default="opencl", choices=["opencl", "cuda", "cpu"])
    s.add_argument("--device", help="OpenCL device: 'P:D' indices or a name substring")
    s.add_argument("--input-shape", action="append", help=shape_help)
    s.add_argument("--trials", type=int, default=32,
                   help="measured trials per task, counted over every run on the study: runs side by side on "
                   "one records database (--resume) or a Ray cluster (--ray) stop together at this total, and a "
                   "run that finds it reached does nothing")
    s.add_argument("--records", default=DEFAULT_RECORDS, help="Optuna storage: a SQLite file or an SQL URL "
                   "(postgresql://...); with --ray, one every node reaches (an SQL server or a shared filesystem)")
    s.add_argument("--resume", action="store_true",
                   help="continue the studies already in the records, and join runs tuning them right now: "
                   "start every run that shares the records with --resume (the first one creates the studies); "
                   "without it a study that exists, even one created a moment ago by a run beside this one, is "
                   "an error")
    s.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                   help="measure on the nodes of the Ray cluster at ADDRESS (default: auto, the local cluster) "
                   "that have the target's device: one worker per node, all sharing the records and --trials; "
                   'needs pip install "visc[ray]" and visc on every node (give the address as --ray=ADDRESS '
                   "or after the model)")
    s.add_argument("--sampler", default="tpe", choices=["tpe", "random"])
    s.add_argument("--ops", default="conv2d,matmul,pool2d", help="op kinds to tune (comma-separated)")
    s.add_argument("--all-ops", action="store_true", help="tune every kernel-producing op")
    s.add_argument("--warmup", type=int, default=1)
    s.add_argument("--repeat", type=int, default=5, help="timed runs per trial (median)")
    s.add_argument("--min-repeat-ms", type=float, default=0.0,
                   help="time more runs (up to 200) until the kernels add up to this many ms: steadier times for "
                   "kernels of a few microseconds")
    s.add_argument("--confirm", type=int, default=2, metavar="N",
                   help="build and time a trial within 10%% of the best so far N more times and keep the median, "
                   "so the record is not a lucky draw (0: off)")
    s.add_argument("--refine", type=int, default=2, metavar="N",
                   help="after TPE's random startup, every Nth trial is an unmeasured neighbor of the best so far "
                   "(one key one step away), so the search settles on the best region sooner (0: TPE only)")
    s.add_argument("--transfer", type=int, default=4, metavar="N",
                   help="TPE's startup first measures up to N best schedules of the most similar workloads "
                        "already tuned on the device (these records, --transfer-from, the shipped ones); 0: off")
    s.add_argument("--transfer-from", action="append", default=[], metavar="RECORDS",
                   help="more records (a database or an export) to transfer from (repeatable)")
    s.add_argument("--timeout", type=float, default=20.0, help="seconds of timed runs before a trial fails")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-isolation", action="store_true", help="measure in this process (no worker)")
    s.add_argument("--plot", metavar="PNG", help="write best time versus trial per task (TPE and random side by "
                   "side when both are in the records); needs matplotlib")
    s.set_defaults(fn=cmd_tune)

    s = sub.add_parser("records", help="inspect, share and validate tuning records")
    s.add_argument("action", choices=["best", "export", "import", "validate"])
    s.add_argument("file", nargs="?", help="the .json file to export to or import from; validate: the ONNX model")
    s.add_argument("--records", default=DEFAULT_RECORDS,
                   help="Optuna storage: a SQLite file or an SQL URL (validate: also an export, or 'shipped')")
    s.add_argument("--device-id", help="only this device's records (as `visc records best` lists them)")
    s.add_argument("--target", default="opencl", choices=["opencl", "cuda", "cpu"], help="validate: the backend")
    s.add_argument("--device", help="validate: OpenCL device ('P:D' indices or a name substring)")
    s.add_argument("--input-shape", action="append", help=shape_help)
    s.add_argument("--repeat", type=int, default=20, help="validate: profiled runs with and without the records")
    s.add_argument("--out", help="validate: write the records that beat the heuristic as an export here")
    s.set_defaults(fn=cmd_records)


__all__ = ["add_parsers", "cmd_tune", "cmd_records", "tune_tasks", "result_row", "RESULT_COLUMNS"]
