"""Split a model whose shapes depend on its data into a static part and a host part.

visc compiles static shapes only: every buffer is planned before the first run. A detector's
post-processing is not static: NonZero keeps the scores above a threshold, a TopK takes
``min(k, count)`` of them, NonMaxSuppression feeds a Gather, an If tests whether any box is
left. Such a model is cut at the first node whose output shape depends on values
(`DATA_DEPENDENT`, a TopK with a computed k, an NMS whose result another node reads, an If
whose condition is computed) and everything downstream of one. The rest, the backbone and
heads where the time goes, is an ordinary static model for the device; the downstream part
runs on the host with shapes known at run time (`visc.runtime.host_graph`), as the last
stage of a pipeline (`visc.compile` and `visc.pipeline` wire the two).

Constants are propagated first (shape arithmetic on static tensors, `Shape` of a tensor whose
shape is static), so an If whose condition is known is replaced by its taken branch, a TopK
whose k is known stays static, and a constant the host part reads travels as an initializer
of the host graph, not as a tensor between stages. Loop and Scan stay unsupported: one error
naming the node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import NodeProto, helper, numpy_helper

from visc.errors import UnsupportedModelError
from visc.frontend.folding import evaluate_node

DATA_DEPENDENT = frozenset({"NonZero", "Compress", "Unique"})
UNSUPPORTED_CONTROL = frozenset({"Loop", "Scan"})
# ops whose presence makes the analysis worth running (others never start a dynamic part)
TRIGGERS = DATA_DEPENDENT | UNSUPPORTED_CONTROL | {"If", "TopK", "NonMaxSuppression"}
NONDETERMINISTIC = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                              "Multinomial", "Bernoulli"})


@dataclass
class DynamicSplit:
    """``static``: the model up to the data-dependent part (Ifs with known conditions folded),
    whose outputs are the model's outputs it computes plus the tensors the host part reads
    (graph inputs the host part reads go to it directly); ``host``: the data-dependent part
    (None when there is none), whose inputs are those tensors and whose outputs are the rest
    of the model's outputs; ``host_nodes``: its node names."""

    static: onnx.ModelProto
    host: onnx.ModelProto | None
    host_nodes: list[str]
    outputs: list[str]


def _name(node: NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}#{index}"


def needs_split(proto: onnx.ModelProto) -> bool:
    """Whether the model has an op that may start a data-dependent part (cheap pre-check)."""
    return any(node.op_type in TRIGGERS for node in proto.graph.node)


def _subgraphs(node: NodeProto) -> list[onnx.GraphProto]:
    graphs = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            graphs.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            graphs.extend(a.graphs)
    return graphs


def _outer_refs(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from the enclosing scopes."""
    local = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    refs: set[str] = set()
    for node in graph.node:
        for x in node.input:
            if x and x not in local:
                refs.add(x)
        for g in _subgraphs(node):
            refs |= {r for r in _outer_refs(g) if r not in local}
        local.update(o for o in node.output if o)
    return refs


def _reads(node: NodeProto) -> list[str]:
    """Every value ``node`` reads: its inputs and what its subgraphs take from outside."""
    names = [x for x in node.input if x]
    for g in _subgraphs(node):
        names.extend(sorted(_outer_refs(g) - set(names)))
    return names


def _inline_branch(node: NodeProto, taken: bool) -> list[NodeProto]:
    """The nodes of the If's taken branch, its outputs renamed to the If's outputs."""
    key = "then_branch" if taken else "else_branch"
    branch = next(a.g for a in node.attribute if a.name == key)
    nodes = [n for n in branch.node]
    consts = [helper.make_node("Constant", [], [init.name], value=init, name=f"{node.name}/{init.name}")
              for init in branch.initializer]
    ties = [helper.make_node("Identity", [out.name], [dst], name=f"{node.name}/{key}:{k}")
            for k, (out, dst) in enumerate(zip(branch.output, node.output, strict=True)) if dst]
    return [*consts, *nodes, *ties]


def _value_infos(proto: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """Every typed value of ``proto`` after ONNX shape inference (with data propagation)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is a help here, not a requirement
        inferred = proto
    return {vi.name: vi for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]}


def _static_shapes(infos: Mapping[str, onnx.ValueInfoProto]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, for the values whose inferred shape is fully static."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, vi in infos.items():
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[name] = tuple(int(d.dim_value) for d in t.shape.dim)
    return shapes


class _Folder:
    """Constant values of the static part, evaluated node by node as the walk reaches them."""

    def __init__(self, proto: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]):
        """``shapes``: the static shapes known so far (`_fold_all` renews them each round)."""
        self.values: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
        self.shapes = shapes
        self.opsets = list(proto.opset_import)

    def known(self, name: str) -> bool:
        return name in self.values

    def fold(self, node: NodeProto) -> None:
        """Record ``node``'s outputs if they are known now (constants, or shapes of tensors
        whose shape is static); leave them unknown otherwise."""
        if all(self.known(o) for o in node.output if o):  # folded in an earlier round
            return
        if node.op_type in NONDETERMINISTIC or node.domain not in ("", "ai.onnx") or _subgraphs(node):
            return
        if node.op_type in ("Shape", "Size") and node.input[0] in self.shapes:
            shape = self.shapes[node.input[0]]
            if node.op_type == "Size":
                self.values[node.output[0]] = np.array(int(np.prod(shape)), np.int64)
                return
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            self.values[node.output[0]] = np.array(shape[slice(attrs.get("start", 0), attrs.get("end"))], np.int64)
            return
        if not all(self.known(x) for x in node.input if x):
            return
        try:
            results = evaluate_node(node, {x: self.values[x] for x in node.input if x}, self.opsets)
        except Exception:  # noqa: BLE001 - an unevaluable node simply stays unknown here
            return
        for name, value in zip([o for o in node.output if o], results, strict=True):
            self.values[name] = value


def _fold_all(proto: onnx.ModelProto, rounds: int = 8
              ) -> tuple[list[NodeProto], _Folder, dict[str, onnx.ValueInfoProto]]:
    """The graph's nodes with every If of known condition replaced by its taken branch, and the
    values known before running it. Shape inference and folding feed each other (a Resize's
    computed scales give its output shape, whose Shape gives the next Reshape's target), so
    they alternate until no new value appears."""
    nodes = list(proto.graph.node)
    initializers = {t.name for t in proto.graph.initializer}
    folder = _Folder(proto, {})
    infos: dict[str, onnx.ValueInfoProto] = {}
    for _ in range(rounds):
        before = len(folder.values)
        extra = [numpy_helper.from_array(v, k) for k, v in folder.values.items() if k not in initializers]
        probe = _model(proto, nodes, proto.graph.input, proto.graph.output, [*proto.graph.initializer, *extra])
        infos = _value_infos(probe)
        folder.shapes = _static_shapes(infos)
        i = 0
        while i < len(nodes):
            node = nodes[i]
            if node.op_type == "If" and folder.known(node.input[0]):
                nodes[i:i + 1] = _inline_branch(node, bool(np.asarray(folder.values[node.input[0]]).reshape(-1)[0]))
                continue
            folder.fold(node)
            i += 1
        if len(folder.values) == before:
            break
    return nodes, folder, infos


def split_dynamic(proto: onnx.ModelProto) -> DynamicSplit:
    """Cut ``proto`` (graph input shapes already static) into `DynamicSplit`'s two parts."""
    graph = proto.graph
    nodes, folder, infos = _fold_all(proto)
    consumers: dict[str, int] = {}
    for node in nodes:
        for x in _reads(node):
            consumers[x] = consumers.get(x, 0) + 1
    outputs = [o.name for o in graph.output]
    static_nodes: list[NodeProto] = []
    host_nodes: list[NodeProto] = []
    dynamic: set[str] = set()
    problems: list[str] = []
    for index, node in enumerate(nodes):
        reads = _reads(node)
        if node.op_type in UNSUPPORTED_CONTROL:
            problems.append(f"{node.op_type} node '{_name(node, index)}': loops (a body run a data-dependent "
                            "number of times) are not supported; export the model with the loop unrolled")
            continue
        data_dependent = (
            node.op_type in DATA_DEPENDENT
            or node.op_type == "If"
            or (node.op_type == "TopK" and not folder.known(node.input[1]))
            or (node.op_type == "NonMaxSuppression" and any(consumers.get(o) for o in node.output))
        )
        if data_dependent or dynamic & set(reads):
            dynamic.update(o for o in node.output if o)
            host_nodes.append(node)
        else:
            static_nodes.append(node)
    if problems:
        raise UnsupportedModelError(problems)
    if not host_nodes:
        return DynamicSplit(_model(proto, static_nodes, graph.input, graph.output, graph.initializer), None, [],
                            outputs)
    needed = _host_reads(host_nodes)
    inits = {i.name: i for i in graph.initializer}
    boundary = [x for x in needed if x not in dynamic and not folder.known(x)]
    host_consts = [inits[x] if x in inits else numpy_helper.from_array(folder.values[x], x)
                   for x in needed if x not in dynamic and folder.known(x)]
    graph_inputs = {i.name for i in graph.input}
    static_outputs = [o for o in graph.output if o.name not in dynamic]
    static_outputs += [infos.get(x) or helper.make_empty_tensor_value_info(x) for x in boundary
                       if x not in {o.name for o in static_outputs} and x not in graph_inputs]
    static_reads = {x for n in static_nodes for x in _reads(n)}
    static_part = _model(proto, static_nodes, graph.input, static_outputs,
                         [t for t in graph.initializer if t.name in static_reads])
    host_inputs = [infos.get(x) or helper.make_empty_tensor_value_info(x) for x in boundary]
    host_outputs = [o for o in graph.output if o.name in dynamic]
    host_part = _model(proto, host_nodes, host_inputs, host_outputs, host_consts)
    return DynamicSplit(static_part, host_part, [_name(n, k) for k, n in enumerate(host_nodes)], outputs)


def _host_reads(nodes: Sequence[NodeProto]) -> list[str]:
    """Values the host nodes read that none of them produces, in first-use order."""
    made: set[str] = set()
    needed: dict[str, None] = {}
    for node in nodes:
        for x in _reads(node):
            if x not in made:
                needed.setdefault(x, None)
        made.update(o for o in node.output if o)
    return list(needed)


def _model(proto: onnx.ModelProto, nodes: Iterable[NodeProto], inputs: Iterable[onnx.ValueInfoProto],
           outputs: Iterable[onnx.ValueInfoProto], initializers: Iterable[onnx.TensorProto]) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), proto.graph.name or "model", list(inputs), list(outputs),
                              list(initializers))
    model = helper.make_model(graph, opset_imports=list(proto.opset_import))
    model.ir_version = proto.ir_version
    return model


__all__ = ["DynamicSplit", "split_dynamic", "needs_split", "DATA_DEPENDENT"]
