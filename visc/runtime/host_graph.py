"""The host part of a model with data-dependent shapes, run node by node with numpy.

A detector's post-processing (NonZero, If, TopK with a computed k, NonMaxSuppression feeding
Gather...) has shapes known only at run time, so visc compiles the static part and hands the
rest to `HostGraph` as an ONNX model whose inputs are the tensors the static part produced.
`HostGraph` runs it with `onnx.reference.ReferenceEvaluator`, which covers every ONNX op and
If subgraphs, with the ops that are slow there (Python loops over boxes or indices) replaced
by the vectorized kernels of `visc.runtime.host_ops`. onnx is imported when a `HostGraph` is
built, never by importing `visc.runtime`, so a deployed model without a host part needs no
onnx.

Errors: a Loop or Scan node is an `UnsupportedModelError` when the graph is built; a node that
fails at run time (an index out of range, a k larger than its axis) is a `RuntimeCheckError`
naming the node, its op type and the reason; inputs of the wrong count, dtype or static shape
are `InputShapeError`/`InputTypeError`.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from visc.errors import (
    InputShapeError,
    InputTypeError,
    ModelLoadError,
    RuntimeCheckError,
    UnsupportedModelError,
    UsageError,
)
from visc.runtime import host_ops

UNSUPPORTED_OPS = ("Loop", "Scan")  # a body run once per iteration from Python: not offered
# the opset range for which each fast kernel has the standard op's signature and semantics
FAST_OPSETS = {"NonMaxSuppression": 10, "GatherND": 11, "TopK": 10, "Gather": 1, "ScatterElements": 11,
               "RoiAlign": 10, "Expand": 8, "NonZero": 9, "Gemm": 11, "MatMul": 9}
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
BLAS_OPS = frozenset({"Gemm", "MatMul", "RoiAlign"})  # fast kernels whose products visc splits itself


@dataclass(frozen=True)
class HostTensorSpec:
    """A graph input or output of a host part, as ONNX declares it: ``shape`` has -1 for each
    dim that is not a fixed number (a named or missing dim), or is None when even the rank is
    unknown; ``dtype`` is a numpy dtype name. The shapes a run gives are the arrays' own."""

    name: str
    shape: tuple[int, ...] | None
    dtype: str

    @property
    def static(self) -> bool:
        """Whether every dim is known before the run."""
        return self.shape is not None and all(d >= 0 for d in self.shape)

    def check(self, value: object) -> np.ndarray:
        """``value`` as an array of this spec's dtype and declared dims, or an input error."""
        arr = np.asarray(value)
        if arr.dtype != np.dtype(self.dtype):
            raise InputTypeError(f"input '{self.name}' has dtype {arr.dtype}, the host part takes {self.dtype}")
        if self.shape is not None and (arr.ndim != len(self.shape)
                                       or any(d >= 0 and d != a for d, a in zip(self.shape, arr.shape, strict=True))):
            want = ["?" if d < 0 else d for d in self.shape]
            raise InputShapeError(f"input '{self.name}' has shape {list(arr.shape)}, the host part takes {want}")
        return arr


@dataclass
class NodeTime:
    """One node's share of a profiled run; ``inside`` names the node (If) whose branch ran it,
    "" at the top level (an If's own time includes its branch's nodes)."""

    node: str
    op_type: str
    seconds: float
    inside: str = ""


_profiling = threading.local()  # .times: the NodeTime list of the profile running on this thread


class HostGraph:
    """An ONNX model run on the host, node by node, with shapes known only at run time.

    ``HostGraph(model_bytes).run(inputs)`` takes the inputs in graph input order and returns
    the outputs in graph output order. `inputs` and `outputs` describe them as declared
    (`HostTensorSpec`); `fast_ops` lists the op types that run on visc's kernels.
    ``fast_ops=`` narrows those (``()``: onnx's reference implementation of every op, the
    baseline a profile compares with)."""

    def __init__(self, model_bytes: bytes, fast_ops: Collection[str] | None = None):
        import onnx

        try:
            model = onnx.load_model_from_string(model_bytes)
        except Exception as e:  # protobuf raises several types for bad bytes
            raise ModelLoadError(f"the host part is not a valid ONNX model: {e}") from e
        _reject_unsupported(model)
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        unknown = sorted(set(fast_ops or ()) - set(FAST_OPSETS))
        if unknown:
            raise UsageError(f"no fast kernel for {unknown}; visc has one for {sorted(FAST_OPSETS)}")
        self.fast_ops = sorted(op for op, since in FAST_OPSETS.items()
                               if opset >= since and (fast_ops is None or op in fast_ops))
        evaluator_cls = _evaluator_class()
        try:
            self._evaluator = evaluator_cls(model, new_ops=list(_fast_op_classes(opset, tuple(self.fast_ops))))
        except Exception as e:  # the evaluator reports unknown ops as several types
            raise UnsupportedModelError([str(e).splitlines()[0] if str(e) else type(e).__name__],
                                        header="the host part cannot be run") from e
        inits = {i.name for i in model.graph.initializer}
        self.inputs = [_spec(v) for v in model.graph.input if v.name not in inits]
        self.outputs = [_spec(v) for v in _typed_outputs(model)]
        self._inits = dict(self._evaluator.rt_inits_)
        # products split over our threads: OpenBLAS stays single-threaded for the whole run
        self._own_blas = bool(set(self.fast_ops) & BLAS_OPS)
        self._steps = _steps(self._evaluator.rt_nodes_, {o.name for o in self.outputs})

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def run(self, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs for ``inputs`` (a list in graph input order, or a dict by input name),
        as arrays the caller owns (an output that is an input, an initializer or a view of
        something is copied)."""
        feeds = self._feeds(inputs)
        shared = [*feeds.values(), *self._inits.values()]
        outs = []
        for value in self._execute(feeds):
            arr = np.asarray(value)
            mine = arr.base is None and arr.flags.writeable and not any(arr is x for x in shared)
            outs.append(arr if mine else arr.copy())
        return outs

    def profile(self, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[NodeTime]:
        """Wall time of every node in one run, in the order they finished (a branch's nodes
        before their If)."""
        times: list[NodeTime] = []
        feeds = self._feeds(inputs)
        _profiling.times, _profiling.where = times, []
        try:
            self._execute(feeds)
        finally:
            _profiling.times = None
        return times

    def _feeds(self, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The inputs by name, each checked against its spec."""
        names = self.input_names
        if isinstance(inputs, Mapping):
            missing, extra = [n for n in names if n not in inputs], [k for k in inputs if k not in names]
            if missing or extra:
                raise InputShapeError(f"inputs do not match the host part: missing {missing}, unexpected {extra}; "
                                      f"it takes {names}")
            values = [inputs[n] for n in names]
        else:
            values = list(inputs)
            if len(values) != len(names):
                raise InputShapeError(f"the host part takes {len(names)} inputs {names}, got {len(values)}")
        return {s.name: s.check(v) for s, v in zip(self.inputs, values, strict=True)}

    def _execute(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        results: dict[str, Any] = {"": None, **self._inits, **feeds}
        with host_ops.own_blas() if self._own_blas else contextlib.nullcontext():
            _run_steps(self._steps, results)
        return [results[n] for n in self.output_names]


class _Step:
    """One evaluator node as a run executes it: its inputs read from and outputs stored into
    the run's values, the values no later node reads dropped after it. A plain op calls its
    ``_run`` with its attributes directly (what `OpRun.run` does after checks that hold for
    every call, ~3 us per node); If and ops with subgraphs or linked attributes go through
    ``run``. A failure becomes a `RuntimeCheckError` naming the node (one inside an If
    branch names the If node too)."""

    __slots__ = ("node", "inputs", "outputs", "kwargs", "direct", "context", "dead")

    def __init__(self, node: Any, dead: list[str]):
        from onnx.reference.op_run import OpRun

        self.node, self.dead = node, dead
        self.inputs, self.outputs = list(node.input), list(node.output)
        self.context = node.need_context()
        self.direct = (type(node).run is OpRun.run and not self.context and not node.has_subgraph
                       and not node.has_linked_attribute)
        self.kwargs = {a: getattr(node, a) for a in node.attributes_names_} if self.direct else {}

    def run(self, results: dict[str, Any]) -> None:
        args = [results[i] for i in self.inputs]
        node = self.node
        try:
            if self.direct:
                outs = node._run(*args, **self.kwargs)
                if not isinstance(outs, tuple):
                    raise TypeError(f"the implementation of {node.op_type} returned {type(outs).__name__}, not a tuple")
            else:
                outs = node.run(*args, context=results) if self.context else node.run(*args)
        except RuntimeCheckError as e:
            raise _node_error(node, f"failed in its subgraph: {e}") from e
        except Exception as e:  # any failure of an op on this data is reported as the node's
            raise _node_error(node, f"failed on this data: {_reason(e)}") from e
        for name, value in zip(self.outputs, outs, strict=False):
            results[name] = np.asarray(value) if np.isscalar(value) else value
        for name in self.dead:
            del results[name]


def _run_steps(steps: list[_Step], results: dict[str, Any]) -> None:
    """Run ``steps`` on ``results``; timed into the profile running on this thread, if any."""
    times = getattr(_profiling, "times", None)
    if times is None:
        for step in steps:
            step.run(results)
        return
    where = _profiling.where
    inside = "/".join(where)
    for step in steps:
        name = step.node.onnx_node.name
        where.append(name)
        start = time.perf_counter()
        try:
            step.run(results)
        finally:
            where.pop()
        times.append(NodeTime(name, step.node.op_type, time.perf_counter() - start, inside))


def _steps(nodes: list[Any], keep: set[str]) -> list[_Step]:
    """The nodes as steps; a value is dropped after the last node that reads it (an If
    branch's reads count), unless it is in ``keep`` or not made by these nodes."""
    last: dict[str, int] = {}
    for k, node in enumerate(nodes):
        for name in (*node.input, *_implicit_reads(node.onnx_node)):
            last[name] = k
        for name in node.output:
            last.setdefault(name, k)
    produced = {o for node in nodes for o in node.output}
    dead: list[list[str]] = [[] for _ in nodes]
    for name, k in last.items():
        if name and name in produced and name not in keep:
            dead[k].append(name)
    return [_Step(node, d) for node, d in zip(nodes, dead, strict=True)]


def _reason(e: BaseException) -> str:
    """The innermost message of an exception chain (the reference evaluator wraps its ops'
    errors in generic TypeErrors), on one line."""
    while e.__cause__ is not None and (not str(e) or isinstance(e, TypeError)):
        e = e.__cause__
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 400 else text[:400] + "..."


def _node_error(node: Any, what: str) -> RuntimeCheckError:
    name = node.onnx_node.name or (node.output[0] if node.output else "?")
    error = RuntimeCheckError(f"{node.op_type} node '{name}' {what}")
    error.node = name  # type: ignore[attr-defined]
    error.op_type = node.op_type  # type: ignore[attr-defined]
    return error


def _subgraphs(node: Any) -> Iterator[Any]:
    import onnx

    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _reject_unsupported(model: Any) -> None:
    """`UnsupportedModelError` naming every Loop/Scan node and every node of a domain with no
    implementation (not ONNX's, not a function of the model), in subgraphs too."""
    problems = []
    functions = {(f.domain, f.name) for f in model.functions}

    def walk(g: Any, where: str) -> None:
        for node in g.node:
            if node.op_type in UNSUPPORTED_OPS and node.domain in ("", "ai.onnx"):
                problems.append(f"{node.op_type} node '{node.name}'{where} is not supported (a host part runs "
                                "each node once; unroll the loop or keep it out of the host part)")
            elif node.domain not in STANDARD_DOMAINS and (node.domain, node.op_type) not in functions:
                problems.append(f"{node.op_type} node '{node.name}'{where} of domain '{node.domain}' has no "
                                "implementation")
            for sub in _subgraphs(node):
                walk(sub, f" (inside {node.op_type} node '{node.name}')")

    walk(model.graph, "")
    if problems:
        raise UnsupportedModelError(problems, header="the host part cannot be run")


def _implicit_reads(node: Any) -> set[str]:
    """Names a node's subgraphs read from the enclosing graph."""
    reads: set[str] = set()
    for sub in _subgraphs(node):
        local = {i.name for i in sub.input} | {i.name for i in sub.initializer}
        for inner in sub.node:
            reads.update(x for x in inner.input if x and x not in local)
            reads.update(x for x in _implicit_reads(inner) if x not in local)
            local.update(inner.output)
    return reads


def _typed_outputs(model: Any) -> list[Any]:
    """The graph outputs' value infos, from ONNX shape inference where the model declares no
    type or shape for one (inference failing leaves the declared ones)."""
    import onnx

    declared = list(model.graph.output)
    if all(v.type.tensor_type.elem_type and v.type.tensor_type.HasField("shape") for v in declared):
        return declared
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph.output
    except Exception:  # inference is best effort; the run gives the real shapes
        return declared
    return [i if i.type.tensor_type.elem_type else d for d, i in zip(declared, inferred, strict=True)]


def _spec(value_info: Any) -> HostTensorSpec:
    import onnx

    tensor = value_info.type.tensor_type
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    except (KeyError, TypeError, ValueError):
        dtype = ""  # not declared
    shape = (tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
             if tensor.HasField("shape") else None)
    return HostTensorSpec(value_info.name, shape, dtype)


@functools.cache
def _evaluator_class() -> type:
    """The reference evaluator class whose nested graphs (If branches) build with the same
    fast ops (it passes its own class to them)."""
    from onnx.reference import ReferenceEvaluator

    class HostEvaluator(ReferenceEvaluator):
        """ReferenceEvaluator whose `run`, as used for If branches, names a failing node."""

        def run(self, output_names: Any, feed_inputs: dict[str, Any], attributes: Any = None,
                intermediate: bool = False, **_: Any) -> Any:
            key = "_host_steps_all" if intermediate else "_host_steps"
            steps = self.__dict__.get(key)
            if steps is None:
                keep = {o for n in self.rt_nodes_ for o in n.output} if intermediate else set(self.output_names)
                steps = self.__dict__[key] = _steps(self.rt_nodes_, keep)
            results: dict[str, Any] = {"": None, **self.rt_inits_, **feed_inputs}
            _run_steps(steps, results)
            if intermediate:
                return results
            return [results[n] for n in (output_names or self.output_names)]

    return HostEvaluator


@functools.cache
def _fast_op_classes(opset: int, names: tuple[str, ...]) -> tuple[type, ...]:
    """`OpRun` subclasses over `host_ops`' kernels, named after the op types they replace, with
    the schema of ``opset`` (so attribute defaults are that version's: RoiAlign before
    opset 16 has no coordinate_transformation_mode and samples as output_half_pixel)."""
    import onnx
    from onnx.reference.op_run import OpRun

    Array = np.ndarray
    Opt = np.ndarray | None

    class NonMaxSuppression(OpRun):
        def _run(self, boxes: Array, scores: Array, max_output_boxes_per_class: Opt = None, iou_threshold: Opt = None,
                 score_threshold: Opt = None, center_point_box: int | None = None) -> tuple[Array]:
            return (host_ops.non_max_suppression(boxes, scores, max_output_boxes_per_class, iou_threshold,
                                                 score_threshold, int(center_point_box or 0)),)

    class GatherND(OpRun):
        def _run(self, data: Array, indices: Array, batch_dims: int | None = None) -> tuple[Array]:
            return (host_ops.gather_nd(data, indices, int(batch_dims or 0)),)

    class TopK(OpRun):
        def _run(self, data: Array, k: Array, axis: int | None = None, largest: int | None = None,
                 sorted: int | None = None) -> tuple[Array, Array]:  # (sorted=0 may return any order: sorted anyway)
            kk = np.asarray(k).reshape(-1)
            if kk.size != 1:
                raise ValueError(f"k must hold one value, got shape {list(np.shape(k))}")
            return host_ops.top_k(data, int(kk[0]), -1 if axis is None else int(axis),
                                  largest is None or bool(largest))

    class Gather(OpRun):
        def _run(self, data: Array, indices: Array, axis: int | None = None) -> tuple[Array]:
            return (host_ops.gather(data, indices, int(axis or 0)),)

    class ScatterElements(OpRun):
        def _run(self, data: Array, indices: Array, updates: Array, axis: int | None = None,
                 reduction: str | None = None) -> tuple[Array]:
            return (host_ops.scatter_elements(data, indices, updates, int(axis or 0), reduction or "none"),)

    class RoiAlign(OpRun):
        def _run(self, x: Array, rois: Array, batch_indices: Array, coordinate_transformation_mode: str | None = None,
                 mode: str | None = None, output_height: int | None = None, output_width: int | None = None,
                 sampling_ratio: int | None = None, spatial_scale: float | None = None) -> tuple[Array]:
            half_pixel = (coordinate_transformation_mode or "output_half_pixel") == "half_pixel"
            return (host_ops.roi_align(x, rois, batch_indices, mode or "avg", int(output_height or 1),
                                       int(output_width or 1), int(sampling_ratio or 0),
                                       1.0 if spatial_scale is None else float(spatial_scale), half_pixel),)

    class Expand(OpRun):
        def _run(self, data: Array, shape: Array) -> tuple[Array]:
            return (host_ops.expand(data, shape),)

    class NonZero(OpRun):
        def _run(self, x: Array) -> tuple[Array]:
            return (host_ops.nonzero(x),)

    class Gemm(OpRun):
        def _run(self, a: Array, b: Array, c: Opt = None, alpha: float | None = None, beta: float | None = None,
                 transA: int | None = None, transB: int | None = None) -> tuple[Array]:
            return (host_ops.gemm(a, b, c, 1.0 if alpha is None else float(alpha), 1.0 if beta is None else float(beta),
                                  bool(transA), bool(transB)),)

    class MatMul(OpRun):
        def _run(self, a: Array, b: Array) -> tuple[Array]:
            return (host_ops.matmul(a, b),)

    classes = {c.__name__: c for c in (NonMaxSuppression, GatherND, TopK, Gather, ScatterElements, RoiAlign, Expand,
                                       NonZero, Gemm, MatMul)}
    assert set(classes) == set(FAST_OPSETS)
    for name, cls in classes.items():
        cls.op_schema = onnx.defs.get_schema(name, opset)  # type: ignore[attr-defined]
    return tuple(classes[n] for n in names)


__all__ = ["HostGraph", "HostTensorSpec", "NodeTime", "UNSUPPORTED_OPS", "FAST_OPSETS"]
