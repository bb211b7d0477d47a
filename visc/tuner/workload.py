"""Workload keys and task extraction (design.md, "Decisions" 3).

A workload is everything that decides the kernels one op lowers to: its kind, the shapes and
element types of its operands and outputs, its semantic attributes, its fused epilogue body,
and `SPACE_VERSION`. Names (``onnx_node``), schedules and placement tags are left out, so the
same convolution in two models has one key and is tuned once. The key works on tensor and on
bufferized (memref) ops alike: `apply_records` looks ops up after bufferization.

A `Task` carries its workload as a self-contained one-op module (text, every operand a
function argument), so a measurement worker, a record database or another machine can rebuild
it without the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    FunctionType,
    ModuleOp,
    ShapedType,
    StringAttr,
    TensorType,
)
from xdsl.ir import Block, Region, SSAValue

from visc.backends.plan_extract import numpy_dtype
from visc.dialects.vision import ReshapeOp, VisionOp, element_type_of, shape_of

# Bump when the meaning of schedule keys or the lowering of tuned ops changes: old records
# then no longer match any key (they stay in the database, ignored).
SPACE_VERSION = 1

# Attributes that name or place an op, or are the tuning result itself: not part of the key.
_NOT_SEMANTIC = frozenset({"onnx_node", "onnx_op", "schedule", "placement"})

# Op kinds tuned by default: the ones whose schedules have more than a work-group size.
TUNABLE = ("vision.conv2d", "vision.matmul", "vision.pool2d")


def _type_text(value: SSAValue) -> str:
    typ = value.type
    assert isinstance(typ, ShapedType)
    return "x".join(str(d) for d in shape_of(value)) + ":" + str(element_type_of(value))


def _body_text(op: VisionOp) -> str:
    """The epilogue body with value names replaced by positions, so printing order, not
    the model's SSA names, decides the text."""
    if not op.body.blocks:
        return ""
    block = op.body.block
    ids: dict[SSAValue, str] = {a: f"a{i}:{a.type}" for i, a in enumerate(block.args)}
    parts = []
    for n, inner in enumerate(block.ops):
        operands = ",".join(ids.get(o, "outer") for o in inner.operands)
        attrs = ",".join(f"{k}={v}" for k, v in sorted(inner.attributes.items()))
        props = ",".join(f"{k}={v}" for k, v in sorted(inner.properties.items()))
        for r, res in enumerate(inner.results):
            ids[res] = f"v{n}.{r}:{res.type}"
        parts.append(f"{inner.name}({operands}){{{attrs}|{props}}}")
    return ";".join(parts)


@dataclass(frozen=True)
class Workload:
    """The tuning problem of one op (see the module docstring)."""

    kind: str
    ins: tuple[str, ...]
    fuse: tuple[str, ...]
    outs: tuple[str, ...]
    attrs: tuple[tuple[str, str], ...]
    body: str
    version: int = SPACE_VERSION

    @staticmethod
    def of(op: VisionOp) -> Workload:
        attrs = tuple(sorted((k, str(v)) for k, v in op.attributes.items() if k not in _NOT_SEMANTIC))
        return Workload(op.name, tuple(_type_text(v) for v in op.ins), tuple(_type_text(v) for v in op.fuse),
                        tuple(_type_text(v) for v in op.dests), attrs, _body_text(op))

    @property
    def key(self) -> str:
        """A stable 16-hex-digit hash of every field."""
        text = json.dumps([self.kind, self.ins, self.fuse, self.outs, self.attrs, self.body, self.version])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line for progress bars and record listings."""
        kind = self.kind.split(".")[-1]
        shapes = " ".join(s.split(":")[0] for s in self.ins)
        attrs = dict(self.attrs)
        extra = []
        for name in ("strides", "groups", "kernel", "kind"):
            if name in attrs:
                text = attrs[name].replace("array<i64: ", "").replace(">", "").replace(" : i64", "")
                extra.append(f"{name}={text.strip(chr(34)).replace(', ', 'x')}")
        epi = " +epilogue" if self.body else ""
        return f"{kind} {shapes} -> {' '.join(s.split(':')[0] for s in self.outs)} {' '.join(extra)}{epi}".strip()


def workload_key(op: VisionOp) -> str:
    return Workload.of(op).key


def single_op_module(op: VisionOp) -> ModuleOp:
    """A module whose @main runs only a copy of tensor-level `op`: every operand (weights
    included) becomes a function argument, its results the function's results."""
    if op.outs:
        raise ValueError(f"{op.name}: build tasks from tensor-level ops (before vision-bufferize)")
    operands = [*op.ins, *op.fuse]
    # the same value may feed several operands: one argument per distinct value
    distinct: list[SSAValue] = list(dict.fromkeys(operands))
    block = Block(arg_types=[v.type for v in distinct])
    mapping = dict(zip(distinct, block.args, strict=True))
    clone = op.clone(value_mapper=dict(mapping))
    for key in ("schedule", "placement"):
        clone.attributes.pop(key, None)
    clone.attributes["onnx_node"] = StringAttr("tuned")
    block.add_op(clone)
    block.add_op(func.ReturnOp(*clone.results))
    fn = func.FuncOp("main", FunctionType.from_lists([v.type for v in distinct], [r.type for r in clone.results]),
                     Region(block))

    def strings(items: Iterable[str]) -> ArrayAttr:
        return ArrayAttr([StringAttr(s) for s in items])

    fn.attributes["vision.input_names"] = strings(f"in{i}" for i in range(len(distinct)))
    fn.attributes["vision.output_names"] = strings(f"out{i}" for i in range(len(clone.results)))
    fn.attributes["vision.input_dtypes"] = strings(numpy_dtype(element_type_of(v)) for v in distinct)
    fn.attributes["vision.output_dtypes"] = strings(numpy_dtype(element_type_of(r)) for r in clone.results)
    return ModuleOp([fn])


@dataclass
class Task:
    """One distinct workload of a model: its key, a one-op module to measure it with, and
    where it occurs (ONNX node names; `weight` = how many ops share it)."""

    key: str
    workload: Workload
    module_text: str
    nodes: list[str] = field(default_factory=list)

    @property
    def weight(self) -> int:
        return max(1, len(self.nodes))

    def describe(self) -> str:
        return self.workload.describe()


def _node(op: VisionOp) -> str:
    attr = op.attributes.get("onnx_node")
    return attr.data if isinstance(attr, StringAttr) else op.name


def extract_tasks(module: ModuleOp, kinds: Sequence[str] | None = TUNABLE) -> list[Task]:
    """The distinct workloads of a tensor-level module (after the graph passes), in first
    occurrence order; `kinds` = op names to keep (None: every op with schedule keys)."""
    from visc.passes.lowering.vision_to_loops import schedule_keys

    tasks: dict[str, Task] = {}
    for op in module.walk():
        if not isinstance(op, VisionOp) or isinstance(op, ReshapeOp) or not schedule_keys(op):
            continue
        if kinds is not None and op.name not in kinds:
            continue
        if not op.res or not isinstance(op.res[0].type, TensorType):
            raise ValueError(f"{op.name}: extract tasks before vision-bufferize")
        work = Workload.of(op)
        task = tasks.get(work.key)
        if task is None:
            task = tasks[work.key] = Task(work.key, work, str(single_op_module(op)))
        task.nodes.append(_node(op))
    return list(tasks.values())


def model_tasks(model, input_shapes=None, kinds: Sequence[str] | None = TUNABLE) -> list[Task]:
    """Import an ONNX model (path, bytes or ModelProto), run the graph passes the compiler
    runs, and extract its tasks."""
    from visc.compiler import GRAPH_PIPELINE, run_passes
    from visc.frontend.onnx import import_model

    imported = import_model(model, dict(input_shapes) if input_shapes else None)
    run_passes(imported.module, list(GRAPH_PIPELINE), imported.weights)
    return extract_tasks(imported.module, kinds)


__all__ = ["SPACE_VERSION", "TUNABLE", "Workload", "Task", "workload_key", "single_op_module",
           "extract_tasks", "model_tasks"]
