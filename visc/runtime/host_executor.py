"""The executor of a host stage: the data-dependent part of a model (a detector's
post-processing, `visc.frontend.dynamic_split`), run by `visc.runtime.host_graph.HostGraph`
with numpy on shapes known only at run time.

Its plan has inputs and outputs but no buffers and no launches: nothing is planned ahead, so
it offers `run` (and what a pipeline stage needs: `memory`, `close`), not the per-buffer
upload/download/launch calls of the device executors. The graph travels in the artifact as
the host stage's "kernel source": the ONNX bytes, base64-encoded.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Sequence

import numpy as np

from visc.errors import ViscError
from visc.runtime.device import check_slot, memory_report
from visc.runtime.plan import Plan

HOST_TARGET = "host"


def encode_graph(model_bytes: bytes) -> str:
    return base64.b64encode(model_bytes).decode("ascii")


class HostExecutor:
    """Runs a host stage's graph; ``slots`` frames may run at once (the graph keeps no state
    between runs; each slot serializes its own runs like the device executors)."""

    def __init__(self, plan: Plan, source: str, slots: int = 1):
        from visc.runtime.host_graph import HostGraph

        self.plan = plan
        self.slots = max(1, int(slots))
        blob = base64.b64decode(source.encode("ascii"))
        self.graph = HostGraph(blob)
        self._graph_bytes = len(blob)  # its constants are nearly all of it
        self._locks = [threading.Lock() for _ in range(self.slots)]
        self._closed = False

    @property
    def device_name(self) -> str:
        return "host (numpy)"

    def run(self, inputs: Sequence[np.ndarray], slot: int = 0) -> list[np.ndarray]:
        if self._closed:
            raise ViscError("the host stage's executor is closed")
        arrays = self.plan.check_inputs(inputs)
        with self._locks[check_slot(slot, self.slots)]:
            return list(self.graph.run(arrays))

    def profile_run(self, inputs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """The whole graph as one entry: it has no launches to time one by one."""
        start = time.perf_counter()
        self.run(inputs)
        return [("host graph", time.perf_counter() - start)]

    def memory(self) -> dict[str, int]:
        io = sum(s.nbytes for s in self.plan.inputs)
        return memory_report(self._graph_bytes, 0, io, self.slots)

    def close(self) -> None:
        self._closed = True


__all__ = ["HostExecutor", "HOST_TARGET", "encode_graph"]
