"""The runtime plan: everything an executor needs, as plain data.

A plan is JSON-serializable so a compiled model can be saved and run without the compiler:
the arena size, the graph inputs/outputs, the weights used, one entry per buffer value of
the host function, and the ordered kernel launches whose arguments are indices into
`buffers`. The compiler reads it from the stage-5 host function
(`visc.backends.plan_extract.extract_plan`); this module imports numpy only, so a deployed
model needs no xDSL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from visc.errors import CompileError, InputShapeError

PLAN_VERSION = 2  # 2: launches record their device and the arguments they write
READABLE_VERSIONS = (1, 2)

BufferKind = Literal["arena", "weight", "input", "output", "view", "count"]
CPU_DEVICE = "cpu"  # `Launch.device` of a host function of the CPU backend


@dataclass
class TensorSpec:
    """A graph input or output as the caller sees it. An output whose number of rows depends
    on the data (NonMaxSuppression) has ``shape`` as its upper bound and ``count``: the buffer
    (an int64 [1] of kind "count") holding how many rows of dim 0 are valid."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    count: int | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass
class BufferSpec:
    """One memref of the host function. ``kind`` says where its bytes live:
    arena (``offset`` into the arena; with ``base``, a slab of that arena buffer that must
    share its bytes: a `vision.subbuffer`), weight (``name``), input/output (``index``),
    view (the same bytes as buffer ``base``, seen with this shape and dtype), or count
    (a device buffer of its own holding an output's row count; ``index``: that output)."""

    kind: BufferKind
    shape: tuple[int, ...]
    dtype: str
    offset: int | None = None
    name: str | None = None
    index: int | None = None
    base: int | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass
class Launch:
    """One kernel launch: NDRange = grid * block work-items, args index `Plan.buffers`.

    ``device``: ``"cpu"`` (`CPU_DEVICE`) for a host function of the CPU backend (every launch
    of a plan for target "cpu", and the CPU-placed launches of a mixed plan), ``""`` for a
    kernel of the plan's GPU target. ``writes``: the positions in ``args`` the kernel may
    write (None: unknown, so all of them); a mixed plan copies only what a launch writes."""

    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    args: list[int]
    node: str = ""
    device: str = ""
    writes: list[int] | None = None

    @property
    def written(self) -> list[int]:
        """The positions in ``args`` this launch may write (all of them when unknown)."""
        return list(range(len(self.args))) if self.writes is None else self.writes


@dataclass
class Plan:
    arena_size: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    weights: list[str]
    buffers: list[BufferSpec]
    launches: list[Launch]
    version: int = PLAN_VERSION
    weight_specs: dict[str, TensorSpec] = field(default_factory=dict)

    def root(self, buffer: int) -> int:
        """The buffer whose storage a (possibly chained) view uses."""
        while self.buffers[buffer].kind == "view":
            base = self.buffers[buffer].base
            assert base is not None
            buffer = base
        return buffer

    def check_inputs(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The inputs as C-contiguous arrays, after checking count, shapes and dtypes against the
        plan: every executor validates the same way before touching a device."""
        if len(inputs) != len(self.inputs):
            raise InputShapeError(f"expected {len(self.inputs)} inputs {[s.name for s in self.inputs]}, got {len(inputs)}")
        return [self.check_input(j, arr) for j, arr in enumerate(inputs)]

    def check_input(self, j: int, arr: np.ndarray) -> np.ndarray:
        """Input ``j`` as a C-contiguous array, after checking its shape and dtype."""
        spec = self.inputs[j]
        arr = np.asarray(arr)
        if tuple(arr.shape) != tuple(spec.shape):
            raise InputShapeError(f"input '{spec.name}' has shape {list(arr.shape)}, expected {list(spec.shape)}")
        if arr.dtype != np.dtype(spec.dtype):
            raise InputShapeError(f"input '{spec.name}' has dtype {arr.dtype}, expected {spec.dtype}")
        return np.ascontiguousarray(arr)

    def trimmed(self, outputs: list[np.ndarray], count_of: Callable[[int], int]) -> list[np.ndarray]:
        """`outputs` with every counted output cut to its row count; `count_of(buffer)` reads
        a count buffer's value from the device."""
        return [out[: max(0, min(int(count_of(spec.count)), out.shape[0]))] if spec.count is not None else out
                for spec, out in zip(self.outputs, outputs, strict=True)]

    def io_bytes(self, floor: int = 0) -> int:
        """Bytes of the input, output and count buffers, each at least ``floor`` (a device
        allocates a byte for an empty one)."""
        return sum(max(b.nbytes, floor) for b in self.buffers if b.kind in ("input", "output", "count"))

    def on_cpu(self) -> bool:
        """Whether some launch is a host function of the CPU backend (with a GPU target: a
        mixed plan)."""
        return any(launch.device == CPU_DEVICE for launch in self.launches)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> Plan:
        data: dict[str, Any] = json.loads(text)
        version = data.get("version", PLAN_VERSION)
        if version not in READABLE_VERSIONS:
            raise CompileError(f"plan format {version} is not supported (this visc reads {READABLE_VERSIONS})")

        def tensor(d: dict[str, Any]) -> TensorSpec:
            return TensorSpec(d["name"], tuple(d["shape"]), d["dtype"], d.get("count"))

        return Plan(
            arena_size=int(data["arena_size"]),
            inputs=[tensor(d) for d in data["inputs"]],
            outputs=[tensor(d) for d in data["outputs"]],
            weights=list(data["weights"]),
            buffers=[BufferSpec(**{**d, "shape": tuple(d["shape"])}) for d in data["buffers"]],
            launches=[Launch(d["kernel"], tuple(d["grid"]), tuple(d["block"]), list(d["args"]), d.get("node", ""),
                             d.get("device", ""), None if d.get("writes") is None else list(d["writes"]))
                      for d in data["launches"]],
            version=version,
            weight_specs={k: tensor(v) for k, v in data.get("weight_specs", {}).items()},
        )




def normalize_inputs(specs: Sequence[TensorSpec],
                     inputs: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """A caller's inputs (one array, a list, or a dict by input name) as C-contiguous arrays in
    the specs' order and dtypes; names, count and shapes checked, so a model and a pipeline
    say the same thing about the same mistake."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        missing = [t.name for t in specs if t.name not in inputs]
        extra = [k for k in inputs if k not in {t.name for t in specs}]
        if missing or extra:
            raise InputShapeError(
                f"inputs do not match the model: missing {missing}, unexpected {extra}; "
                f"the model takes {[t.name for t in specs]}"
            )
        inputs = [inputs[t.name] for t in specs]
    arrays = list(inputs)
    if len(arrays) != len(specs):
        raise InputShapeError(f"the model takes {len(specs)} inputs {[t.name for t in specs]}, got {len(arrays)}")
    result = []
    for spec, arr in zip(specs, arrays, strict=True):
        arr = np.asarray(arr)
        if tuple(arr.shape) != tuple(spec.shape):
            raise InputShapeError(
                f"input '{spec.name}' has shape {list(arr.shape)} but the model was compiled for "
                f"{list(spec.shape)}; recompile with --input-shape {spec.name}="
                f"{','.join(str(d) for d in arr.shape)} if the model allows it"
            )
        result.append(np.require(arr, dtype=np.dtype(spec.dtype), requirements="C"))
    return result


__all__ = ["Plan", "TensorSpec", "BufferSpec", "Launch", "PLAN_VERSION", "CPU_DEVICE", "normalize_inputs"]
