"""`visc tune --ray`: the tuning loop on every node of a Ray cluster that has the target's device.

The driver (the host running `visc tune`) extracts the model's tasks, connects to the cluster
(``ray.init(address=...)``, "auto": the cluster this host belongs to) and probes every alive
node that offers a CPU with a small task pinned to it (`NodeAffinitySchedulingStrategy`): the
node matches when visc's `device_identity` of the target works there, and its answer is the
device id its records are keyed by (nodes with different devices tune different studies,
as separate runs would). Then one worker task per matching node runs `tune_tasks`, the same
loop as `visc tune --resume`, against the same records: the workers of one device cooperate
through its studies (Optuna RDB storage) and stop together at ``--trials`` measured trials
per task (the study's budget, `visc.tuner.search`). Every trial a worker asks carries the
node's id in its ``ray_node`` attribute.

The records must be one database every node and the driver reach (the driver checks the
studies and shows their progress): an SQL URL (``postgresql://...``) or a SQLite file on a
filesystem they share (its path is made absolute here; SQLite over a network filesystem is
only as safe as its locking, a database server is the better choice). A cpu-target
worker reserves all of its node's CPUs (timed kernels use every core), an opencl or cuda one
one CPU and, where Ray counts GPUs on the node, one GPU (Ray then narrows
``CUDA_VISIBLE_DEVICES`` to it and ``--device`` indexes what the worker sees). Without
``--resume`` the driver checks that no study exists yet, as `visc tune` does; the workers
then create or join the studies.

Ray stays optional: it is imported here, lazily, and only `visc tune --ray` imports this.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections import Counter
from typing import Any

from visc.errors import ViscError
from visc.runtime.ray_engine import connect
from visc.tuner.workload import Task

PROBE_TIMEOUT = 300.0  # seconds for every node to answer the device probe (worker start, imports)
PROGRESS_INTERVAL = 5.0  # seconds between the driver's looks at the studies
def _shared(path: str) -> str:
    """A records path or URL as every node must open it (a path: absolute)."""
    return path if "://" in path else os.path.abspath(path)


# -- on the nodes ------------------------------------------------------------------------------


def probe_node(target: str, device: str | None) -> tuple[str | None, str]:
    """(device id, "") when this node has the target's device, else (None, why not)."""
    try:
        import visc  # noqa: F401 - sets up the OpenCL ICD (PoCL) as on the driver
        from visc.tuner.measure import device_identity

        return device_identity(target, device), ""
    except Exception as e:  # noqa: BLE001 - any failure means: not this node
        return None, f"{type(e).__name__}: {e}".splitlines()[0][:200]


def tune_on_node(options: dict[str, Any], tasks: list[Task], device_id: str) -> list[Any]:
    """One node's worker: `tune_tasks` against the shared records; the node's id tags its trials."""
    import ray

    from visc.tuner.cli import tune_tasks
    from visc.tuner.measure import device_identity
    from visc.tuner.search import open_storage

    args = argparse.Namespace(**options)
    here = device_identity(args.target, args.device)
    if here != device_id:
        raise ViscError(f"this node's device is {here}, not {device_id} as probed")
    node = ray.get_runtime_context().get_node_id()
    return tune_tasks(args, tasks, device_id, open_storage(args.records), bars=False, tags={"ray_node": node},
                      say=lambda line: None)  # the driver shows the studies' progress


# -- the driver --------------------------------------------------------------------------------


def _label(node: dict[str, Any]) -> str:
    return f"{node.get('NodeManagerAddress', '?')} {node['NodeID'][:8]}"


def _placed(remote: Any, node: dict[str, Any], target: str, measures: bool = True) -> Any:
    """The Ray remote function `remote` pinned to `node`, reserving what a measurement there
    needs (`measures` False, the probe: one CPU)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    resources = node.get("Resources", {})
    cpus = max(1, int(resources.get("CPU", 1))) if target == "cpu" and measures else 1
    gpus = 1 if target != "cpu" and resources.get("GPU", 0) >= 1 else 0
    return remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
                          num_cpus=cpus, num_gpus=gpus, max_retries=0)


def _cause(error: Exception) -> str:
    """A worker's error as one paragraph (a ViscError's text, not Ray's traceback)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, ViscError):
        return str(cause)
    return f"{type(cause or error).__name__}: {cause or error}".splitlines()[0]


def matching_nodes(ray: Any, target: str, device: str | None) -> list[tuple[dict[str, Any], str]]:
    """(node, device id) of every alive node with a CPU whose probe finds the target's device."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
    probe = ray.remote(probe_node)
    refs = [_placed(probe, n, target, measures=False).remote(target, device) for n in nodes]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=PROBE_TIMEOUT)
    found = []
    for node, ref in zip(nodes, refs, strict=True):
        if ref not in ready:
            ray.cancel(ref, force=True)
            print(f"node {_label(node)}: skipped (no answer in {PROBE_TIMEOUT:g} s: busy?)")
            continue
        try:
            device_id, why = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a node whose worker cannot run is no match
            device_id, why = None, _cause(e)
        print(f"node {_label(node)}: {device_id or f'skipped ({why})'}")
        if device_id is not None:
            found.append((node, device_id))
    return found


def _measured(storage: Any, devices: list[str], tasks: list[Task], sampler: str) -> int:
    """Measured trials in the studies the workers tune (the driver's progress)."""
    from visc.tuner.search import study_summary

    total = 0
    for device_id in devices:
        for task in tasks:
            summary = study_summary(storage, device_id, task.key, sampler)
            total += summary.measured if summary is not None else 0
    return total


def tune_on_ray(args: argparse.Namespace, tasks: list[Task]) -> int:
    """`visc tune --ray`: see the module docstring. Prints each device's table; 1 if a worker failed."""
    from tqdm import tqdm

    from visc.tools.visc_cli import print_table
    from visc.tuner.cli import RESULT_COLUMNS, result_row
    from visc.tuner.search import TuneResult, open_storage, study_summary

    records = _shared(args.records)
    ray = connect(args.ray, what="visc tune --ray")
    try:
        nodes = matching_nodes(ray, args.target, args.device)
        if not nodes:
            raise ViscError(f"no node of the Ray cluster at {args.ray} has a {args.target} device visc can use")
        devices = sorted({d for _, d in nodes})
        storage = open_storage(records)
        spent = True
        for device_id in devices:
            for task in tasks:
                summary = study_summary(storage, device_id, task.key, args.sampler)
                if summary is not None and not args.resume:  # as without --ray: new studies only
                    raise ViscError(f"the records already hold a study of {task.describe()} on {device_id} "
                                    f"({args.sampler}); pass --resume to continue it")
                spent = spent and summary is not None and summary.measured >= args.trials
        if spent:
            print(f"the studies of the {len(tasks)} tasks hold --trials {args.trials} measured trials on "
                  f"{', '.join(devices)}: nothing to do")
            return 0
        print(f"{len(tasks)} tasks on {len(nodes)} nodes ({', '.join(devices)}); records: {records}")
        options = {k: v for k, v in vars(args).items() if k != "fn"}
        options.update(records=records, resume=True, transfer_from=[_shared(r) for r in args.transfer_from])
        worker = ray.remote(tune_on_node)
        work = {_placed(worker, node, args.target).remote(options, tasks, device_id): (node, device_id)
                for node, device_id in nodes}
        results: dict[str, dict[str, list[TuneResult]]] = {d: {} for d in devices}
        failed = []
        pending = list(work)
        total = len(devices) * len(tasks) * args.trials
        try:
            with tqdm(total=total, desc="measured trials (all nodes)", unit="trial", dynamic_ncols=True) as bar:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1, timeout=PROGRESS_INTERVAL)
                    for ref in done:
                        node, device_id = work[ref]
                        try:
                            got = ray.get(ref)
                            for task, result in zip(tasks, got, strict=True):
                                results[device_id].setdefault(task.key, []).append(result)
                            bar.write(f"node {_label(node)}: done, {sum(r.ran for r in got)} trials measured there")
                        except Exception as e:  # noqa: BLE001 - reported with its node; the others go on
                            failed.append(f"node {_label(node)}: {_cause(e)}")
                            bar.write(f"node {_label(node)}: failed")
                    bar.n = min(total, _measured(storage, devices, tasks, args.sampler))
                    bar.refresh()
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)  # their trials in flight are reaped by the next run
            raise
        for device_id in devices:
            rows = []
            for task in tasks:
                mine = results[device_id].get(task.key, [])
                if not mine:
                    continue
                last = max(mine, key=lambda r: r.measured)  # the worker that finished last saw the most
                rows.append(result_row(task, dataclasses.replace(last, ran=sum(r.ran for r in mine))))
            if rows:
                print(f"{device_id}:")
                print_table(rows, RESULT_COLUMNS)
        if args.plot:
            from visc.tuner.plot import plot_records

            device_id = Counter(d for _, d in nodes).most_common(1)[0][0]
            n = plot_records(records, args.plot, device_id, [t.key for t in tasks])
            print(f"plot of {n} tasks on {device_id} (every sampler in the records): {args.plot}")
        for line in failed:
            print(f"visc: error: {line}", file=sys.stderr)
        return 1 if failed else 0
    finally:
        ray.shutdown()


__all__ = ["probe_node", "tune_on_node", "matching_nodes", "tune_on_ray"]
