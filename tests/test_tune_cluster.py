"""Tuning with several runs on one study: the study's global trial budget (claims of live runs,
reaped claims of dead ones), `visc tune --resume` processes started together on one fresh
records file, and `visc tune --ray` on a local two-node Ray cluster. CPU target: no device."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("optuna")

from visc.tuner.measure import Measurement, Measurer, device_identity  # noqa: E402
from visc.tuner.search import (  # noqa: E402
    budget_state,
    claim_measurement,
    is_measured,
    open_storage,
    study_name,
    tune_task,
)
from visc.tuner.space import SearchSpace, signature  # noqa: E402
from visc.tuner.workload import model_tasks  # noqa: E402

pytestmark = pytest.mark.xdist_group("ray")  # one test cluster per session: these tests share a worker

TARGET = "cpu"
# fast trials: one timed run, no confirmation or transfer, measured in the tuning process
QUICK = ["--target", TARGET, "--repeat", "1", "--warmup", "0", "--confirm", "0", "--transfer", "0",
         "--no-isolation"]


def one_conv_model() -> onnx.ModelProto:
    """One conv2d task (8 -> 16 channels, 16x16): a single study."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")
    graph = helper.make_graph([node], "one_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("cluster") / "one_conv.onnx")
    onnx.save(one_conv_model(), path)
    return path


@pytest.fixture(scope="module")
def task(model_path: str):
    (only,) = model_tasks(model_path, kinds=("vision.conv2d",))
    return only


@pytest.fixture(scope="module")
def device() -> str:
    return device_identity(TARGET)


class QuickMeasurer:
    """The task's real space and default; made-up times (from the schedule), no builds: the
    budget logic alone. Counts its measurements."""

    def __init__(self, measurer: Measurer):
        self.default_schedule = measurer.default_schedule
        self._space = measurer.space()
        self.calls = 0

    def space(self) -> SearchSpace:
        return self._space

    def measure(self, schedule: dict[str, int] | None, again: int = 0) -> Measurement:
        self.calls += 1
        t = 1e-6 * (1 + zlib.crc32(signature(schedule or self.default_schedule).encode()) % 1000)
        return Measurement(t, None, [t])


@pytest.fixture(scope="module")
def real_measurer(task) -> Measurer:
    return Measurer(task.module_text, TARGET, repeat=1, warmup=0)


def _study(db: str, device: str, key: str, sampler: str = "random"):
    import optuna

    return optuna.load_study(study_name=study_name(device, key, sampler), storage=open_storage(db))


def _other_run(study, alive: bool) -> object:
    """A RUNNING trial that another run (this process: alive; a dead pid: not) claimed."""
    import optuna

    from visc.tuner.search import _start_time

    pid = os.getpid()
    if not alive:
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        pid = proc.pid
    trial = study.ask({"x": optuna.distributions.IntDistribution(0, 1)})
    # a dead run's start time matches no process, should its pid be reused
    trial.set_user_attr("owner", {"host": socket.gethostname(), "pid": pid, "start": _start_time(pid) if alive else "1"})
    trial.set_user_attr("claim", True)
    return trial


# ------------------------------------------------------------------------------ claims, deterministic


def test_claims_share_the_budget(tmp_path, task, device, real_measurer) -> None:
    """A claim fits when the measured trials and the live claims of other runs leave a slot;
    claims of dead runs do not count; a study with its budget measured refuses every claim."""
    import optuna
    from optuna.trial import TrialState

    db = str(tmp_path / "c.db")
    tune_task(task, QuickMeasurer(real_measurer), db, device, trials=2, sampler="random", seed=0)
    study = _study(db, device, task.key)
    assert budget_state(study) == (2, 0)
    theirs = _other_run(study, alive=True)
    dists = {"x": optuna.distributions.IntDistribution(0, 1)}
    mine = study.ask(dists)
    assert budget_state(study, exclude=mine._trial_id) == (2, 1)
    assert claim_measurement(study, mine, 3) is None  # 2 measured + their claim: no slot for mine
    assert study.trials[mine.number].user_attrs["claim"] is False  # withdrawn
    assert claim_measurement(study, mine, 4) is True
    # two claims on the last slot: the run that counts second sees the first and backs off
    assert claim_measurement(study, theirs, 3) is None
    assert claim_measurement(study, mine, 3) is True
    dead = _other_run(study, alive=False)
    assert budget_state(study, exclude=mine._trial_id) == (2, 0)  # a dead run's claim does not count
    study.tell(theirs, state=TrialState.FAIL)  # measured (failed): the budget is spent
    assert claim_measurement(study, mine, 3) is False
    study.tell(mine, state=TrialState.PRUNED)
    study.tell(dead, state=TrialState.PRUNED)


def test_a_run_after_the_budget_does_nothing(tmp_path, task, device, real_measurer, model_path, capsys) -> None:
    """tune_task and `visc tune --resume` on a study that holds --trials measured trials
    measure nothing (the CLI builds no measurer) and say so."""
    from visc.tools.visc_cli import main

    db = str(tmp_path / "d.db")
    assert main(["tune", model_path, "--ops", "conv2d", "--trials", "3", "--records", db, *QUICK]) == 0
    quick = QuickMeasurer(real_measurer)
    again = tune_task(task, quick, db, device, trials=3, sampler="tpe", resume=True)
    assert quick.calls == 0 and again.ran == 0 and again.measured == 3
    capsys.readouterr()
    assert main(["tune", model_path, "--ops", "conv2d", "--trials", "3", "--records", db, "--resume", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "holds 3 measured trials (--trials 3): nothing to do" in out


@pytest.mark.parametrize("alive", [True, False])
def test_a_run_waits_for_the_claims_of_live_runs(tmp_path, task, device, real_measurer, alive: bool) -> None:
    """A run that finds the rest of the budget claimed waits: once the other run's trial is
    measured it stops without measuring; a claim of a dead run is reaped and measured here."""
    from optuna.trial import TrialState

    db = str(tmp_path / "w.db")
    tune_task(task, QuickMeasurer(real_measurer), db, device, trials=2, sampler="random", seed=0)
    study = _study(db, device, task.key)
    theirs = _other_run(study, alive)
    quick = QuickMeasurer(real_measurer)
    done: list = []
    run = threading.Thread(target=lambda: done.append(
        tune_task(task, quick, db, device, trials=3, sampler="random", seed=1, resume=True)))
    run.start()
    if alive:
        run.join(2.0)
        assert run.is_alive() and quick.calls == 0  # waiting: the last slot is theirs
        study.tell(theirs, 1e-3)
    run.join(120)
    assert not run.is_alive()
    (result,) = done
    assert result.measured == 3 and result.ran == (0 if alive else 1) and quick.calls == result.ran
    if not alive:
        reaped = study.trials[theirs.number]
        assert reaped.state == TrialState.FAIL and "interrupted" in reaped.user_attrs


# ------------------------------------------------------------------------------ processes together


def test_two_tune_processes_share_the_budget(tmp_path, model_path, task, device) -> None:
    """Two `visc tune --resume` processes started together on a fresh records file: one creates
    the study, the other joins it, and together they measure exactly --trials trials."""
    db = str(tmp_path / "two.db")
    cmd = [sys.executable, "-m", "visc.tools.visc_cli", "tune", model_path, "--ops", "conv2d", "--trials", "10",
           "--records", db, "--resume", *QUICK]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, f"{out[-2000:]}\n{err[-3000:]}"
    study = _study(db, device, task.key, "tpe")
    measured = [t for t in study.get_trials() if is_measured(t)]
    assert len(measured) == 10
    assert sum(1 for t in measured if t.user_attrs.get("default")) == 1  # the default queued once
    by_pid = {p.pid: sum(1 for t in measured if t.user_attrs["owner"]["pid"] == p.pid) for p in procs}
    assert sum(by_pid.values()) == 10, by_pid
    for p, (out, _) in zip(procs, outs, strict=True):
        # both measured, unless one found the budget spent (it started late on a busy machine)
        assert by_pid[p.pid] > 0 or "nothing to do" in out or "measured 0 of the study's 10" in out, (by_pid, out)


# ------------------------------------------------------------------------------ Ray


def test_tune_on_ray_measures_on_every_node(ray_cluster: str, tmp_path, model_path, task, device) -> None:
    """`visc tune --ray ADDRESS` runs one worker per node (both have the cpu target): they share
    the study's budget, and each trial names the node that measured it."""
    db = str(tmp_path / "ray.db")
    cmd = [sys.executable, "-m", "visc.tools.visc_cli", "tune", model_path, "--ops", "conv2d", "--trials", "6",
           "--records", db, f"--ray={ray_cluster}", *QUICK]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    study = _study(db, device, task.key, "tpe")
    measured = [t for t in study.get_trials() if is_measured(t)]
    assert len(measured) == 6
    nodes = {t.user_attrs["ray_node"] for t in measured}
    assert len(nodes) == 2, (nodes, done.stdout[-3000:])
    assert "2 nodes" in done.stdout
    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "nothing to do" in again.stdout, f"{again.stdout[-3000:]}\n{again.stderr[-3000:]}"
    assert sum(1 for t in _study(db, device, task.key, "tpe").get_trials() if is_measured(t)) == 6


def test_ray_address_without_a_cluster_is_an_error(model_path, capsys) -> None:
    pytest.importorskip("ray")
    from visc.tools.ray_cluster import free_port
    from visc.tools.visc_cli import main

    assert main(["tune", model_path, f"--ray=127.0.0.1:{free_port()}", "--records", "unused.db"]) == 1
    assert "no Ray cluster at 127.0.0.1:" in capsys.readouterr().err


def test_ray_missing_says_how_to_install(monkeypatch, model_path, capsys) -> None:
    from visc.tools.visc_cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["tune", model_path, "--ray", "--records", "unused.db"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == 'visc: error: visc tune --ray needs Ray: pip install "visc[ray]"'
