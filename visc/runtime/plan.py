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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from visc.errors import CompileError, InputShapeError, InputTypeError, RuntimeCheckError

PLAN_VERSION = 2  # 2: launches record their device and the arguments they write
READABLE_VERSIONS = (1, 2)

BufferKind = Literal["arena", "weight", "input", "output", "view", "count", "status"]
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
    view (the same bytes as buffer ``base``, seen with this shape and dtype), count
    (a device buffer of its own holding an output's row count; ``index``: that output), or
    status (a device buffer of its own: a run-time check's ``[flag, value]`` word, zero
    unless a kernel found the check violated; see `Check`)."""

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
class Check:
    """A run-time check of one op (an index input in range): ``buffer`` is its status word,
    which the executor reads after each run (`Plan.check_status`)."""

    buffer: int
    node: str
    op: str
    message: str


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
    checks: list[Check] = field(default_factory=list)

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
            raise InputTypeError(f"input '{spec.name}' has dtype {arr.dtype}, expected {spec.dtype}")
        return np.require(arr, requirements="C")  # (np.ascontiguousarray makes a 0-d array 1-d)

    def trimmed(self, outputs: list[np.ndarray], count_of: Callable[[int], int]) -> list[np.ndarray]:
        """`outputs` with every counted output cut to its row count; `count_of(buffer)` reads
        a count buffer's value from the device."""
        return [out[: max(0, min(int(count_of(spec.count)), out.shape[0]))] if spec.count is not None else out
                for spec, out in zip(self.outputs, outputs, strict=True)]

    def check_status(self, word_of: Callable[[int], Sequence[int]], reset: Callable[[int], None]) -> None:
        """Raise `RuntimeCheckError` naming every op whose check failed in the last run;
        ``word_of(buffer)`` reads a status word from the device, ``reset(buffer)`` zeroes it
        there so the next run starts clean."""
        failed = []
        for check in self.checks:
            flag, value = (int(v) for v in word_of(check.buffer)[:2])
            if flag:
                reset(check.buffer)
                failed.append(f"{check.op} node '{check.node}': {check.message}, got {value}")
        if failed:
            raise RuntimeCheckError("invalid data in this run (its outputs are discarded): "
                                    + "; ".join(failed) + ".")

    def io_bytes(self, floor: int = 0) -> int:
        """Bytes of the input, output and count buffers, each at least ``floor`` (a device
        allocates a byte for an empty one)."""
        return sum(max(b.nbytes, floor) for b in self.buffers if b.kind in ("input", "output", "count", "status"))

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
            checks=[Check(**d) for d in data.get("checks", [])],
        )




Inputs = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]


def normalize_inputs(specs: Sequence[TensorSpec], inputs: Inputs, cast: bool = False) -> list[np.ndarray]:
    """A caller's inputs (one array, a list, or a dict by input name) as C-contiguous arrays in
    the specs' order; names, count, shapes and dtypes checked, so a model and a pipeline say the
    same thing about the same mistake.

    A numpy array (or numpy scalar) of another dtype than the model's is an error, as in
    onnxruntime: a silent float64 -> float32 or float -> int64 conversion hides a caller's bug.
    ``cast=True`` converts it instead (numpy's ``astype``), except where that loses what the
    values mean: complex to real, or fractional, non-finite or out-of-range values to an integer
    or bool input. Python scalars and lists carry no dtype of their own, so they are converted
    to the model's dtype without ``cast``, under the same lossless rules."""
    values = _input_list(specs, inputs)
    return [_input_array(spec, value, cast) for spec, value in zip(specs, values, strict=True)]


def _input_list(specs: Sequence[TensorSpec], inputs: Inputs) -> list[object]:
    """The inputs as one value per spec, in the specs' order."""
    names = [t.name for t in specs]
    if isinstance(inputs, np.ndarray | np.generic | int | float | complex):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        missing = [n for n in names if n not in inputs]
        extra = [k for k in inputs if k not in names]
        if missing or extra:
            raise InputShapeError(f"inputs do not match the model: missing {missing}, unexpected {extra}; "
                                  f"the model takes {names}")
        return [inputs[n] for n in names]
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Iterable):
        raise InputShapeError(f"inputs must be an array, a list of arrays or a dict by input name {names}, "
                              f"not {type(inputs).__name__}")
    values = list(inputs)
    if len(values) != len(specs):
        raise InputShapeError(f"the model takes {len(specs)} input{'s' if len(specs) != 1 else ''} {names}, got "
                              f"{len(values)} (a list or tuple holds one array per input)")
    return values


def _input_array(spec: TensorSpec, value: object, cast: bool) -> np.ndarray:
    """One input checked against its spec, converted where allowed (see `normalize_inputs`)."""
    typed = isinstance(value, np.ndarray | np.generic)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:  # ragged nested lists
        raise InputShapeError(f"input '{spec.name}' is not an array of shape {list(spec.shape)}: {e}") from e
    want = np.dtype(spec.dtype)
    if tuple(arr.shape) != tuple(spec.shape):
        hint = (f"; recompile with input_shapes={{'{spec.name}': {tuple(arr.shape)}}} (--input-shape "
                f"{spec.name}={','.join(str(d) for d in arr.shape)}) if the model allows it"
                if arr.ndim == len(spec.shape) else "")
        raise InputShapeError(f"input '{spec.name}' has shape {list(arr.shape)} but the model was compiled for "
                              f"{list(spec.shape)}{hint}")
    if arr.dtype == want:
        return np.require(arr, requirements="C")  # (np.ascontiguousarray makes a 0-d array 1-d)
    if arr.dtype.kind not in "biufc":
        raise InputTypeError(f"input '{spec.name}' holds {arr.dtype} values, the model takes {want} numbers")
    if typed and not cast:
        raise InputTypeError(f"input '{spec.name}' is a {arr.dtype} array but the model takes {want} (as in "
                             f"onnxruntime, visc does not convert silently): pass x.astype(np.{want.name}), "
                             f"or cast=True to convert")
    return np.require(_lossless_astype(spec.name, arr, want), requirements="C")


def _lossless_astype(name: str, arr: np.ndarray, want: np.dtype) -> np.ndarray:
    """``arr.astype(want)``, refusing the conversions that change what the values mean."""
    if arr.dtype.kind == "c" and want.kind != "c":
        raise InputTypeError(f"input '{name}' is {arr.dtype} but the model takes {want}: converting would "
                             "drop the imaginary part; pass the real part (x.real) yourself if that is meant")
    if want.kind in "biu" and arr.size:
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr) | (arr != np.trunc(arr))
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise InputTypeError(f"input '{name}' takes {want} but the {arr.dtype} value {arr[where].item()} at "
                                     f"{list(where)} is not a whole number; round it yourself if that is meant")
        low, high = (0, 1) if want.kind == "b" else (np.iinfo(want).min, np.iinfo(want).max)
        if arr.min() < low or arr.max() > high:
            span = f"{arr.min().item()}..{arr.max().item()}"
            raise InputTypeError(f"input '{name}' takes {want} but its values span {span}, outside {low}..{high}")
    return arr.astype(want)


__all__ = ["Plan", "TensorSpec", "BufferSpec", "Launch", "Check", "PLAN_VERSION", "CPU_DEVICE", "normalize_inputs"]
