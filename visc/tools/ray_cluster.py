"""A Ray cluster of two nodes on this machine, for tests and benchmarks of work spread over
Ray nodes (the `ray_cluster` fixture in tests/conftest.py, `benchmarks/pipeline.py --engine ray`).

The head (`ray start --head`, 1 CPU) and a second node (`ray start --address`, 1 CPU and a
custom resource ``edge1`` to place work on it) are two raylets with their own node ids. Each
`ray start` runs with ``--block`` in a session of its own, so the fixture stops exactly the
processes it started: SIGTERM to a blocking `ray start` stops what it launched, and whatever
is left of its process group is killed. `ray stop` would stop every Ray process on the
machine (another test run's cluster, a user's). The head gets a short private ``--temp-dir``
(Ray's socket paths must stay under 108 characters) and free ports, and the cluster a random
token (``RAY_AUTH_MODE=token``), so it neither meets another cluster on this machine nor
accepts other clients; a driver needs that token in its environment before it imports Ray
(Ray reads it once), so the test session sets it at start (`session_token`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT = 180.0  # seconds for each node to start (Ray takes ~10 s on 2 cores, more when busy)
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_env(token: str) -> dict[str, str]:
    """The variables a node or driver of the test cluster needs."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    ray = str(Path(sys.executable).with_name("ray"))
    ray = ray if os.path.exists(ray) else shutil.which("ray") or "ray"
    with open(log, "wb") as out:
        return subprocess.Popen([ray, "start", "--block", "--disable-usage-stats", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait_started(proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "Ray runtime started" in text:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"`ray start` exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"`ray start` did not start in {START_TIMEOUT:g} s:\n{log.read_text(errors='replace')[-3000:]}")


def _wait_nodes(address: str, count: int, env: dict[str, str]) -> None:
    """Until a driver sees `count` alive nodes (the second node registers after its start)."""
    code = ("import sys, time, ray; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
            "deadline = time.monotonic() + float(sys.argv[3])\n"
            "while sum(n['Alive'] for n in ray.nodes()) < int(sys.argv[2]) and time.monotonic() < deadline:\n"
            "    time.sleep(0.5)\n"
            "sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) >= int(sys.argv[2]) else 1)\n")
    done = subprocess.run([sys.executable, "-c", code, address, str(count), str(START_TIMEOUT)], env=env,
                          capture_output=True, text=True, timeout=START_TIMEOUT + 60)
    if done.returncode != 0:
        raise RuntimeError(f"the test cluster at {address} has fewer than {count} nodes:\n{done.stderr[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it launched
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything of its session left behind
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def session_token() -> str:
    """This process's cluster token: put in its environment now, before anything imports Ray,
    so in-process drivers can connect to a cluster `local_ray_cluster` starts later."""
    if os.environ.get("RAY_AUTH_MODE") != "token" or not os.environ.get("RAY_AUTH_TOKEN"):
        os.environ.update(ray_env(secrets.token_hex(32)))
    return os.environ["RAY_AUTH_TOKEN"]


@contextmanager
def local_ray_cluster(token: str | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """(address, environment) of a two-node cluster on this machine, stopped on exit;
    ``token``: its auth token (default: a fresh one)."""
    temp = tempfile.mkdtemp(prefix="visc-ray-")
    env = {**os.environ, **ray_env(token or secrets.token_hex(32))}
    port = free_port()
    address = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_start(["--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                             "--include-dashboard=false", f"--temp-dir={temp}",
                             f"--dashboard-agent-listen-port={free_port()}"], Path(temp) / "head.log", env))
        _wait_started(procs[0], Path(temp) / "head.log")
        procs.append(_start([f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                             '--resources={"edge1": 1}', f"--dashboard-agent-listen-port={free_port()}"],
                            Path(temp) / "node1.log", env))
        _wait_started(procs[1], Path(temp) / "node1.log")
        _wait_nodes(address, 2, env)
        yield address, env
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
