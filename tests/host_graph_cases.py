"""The host (data-dependent) part of the four torchvision detectors in tests/models, as the
split of issue 19 gives it to `visc.runtime.host_graph.HostGraph`: every node from the first
NonZero/If/NonMaxSuppression/Loop on and every node that depends on one, as an ONNX model
whose inputs are the tensors the static part produced.

The boundary tensors' values come from onnxruntime on the whole model (each one added as an
extra output); the model's own outputs of that run are what the host part must reproduce.
Constant nodes the host part reads become its initializers, as they would be folded into it.
Used by tests/test_host_graph.py and benchmarks/host_graph.py.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from visc.runtime.bench import ort_session
from visc.tools.stripped_models import refill_weights

MODELS_DIR = Path(__file__).parent / "models"
# name -> (refill scheme, weight seed, input seed): chosen so no two kept scores tie
# (tests/test_detectors.py says how)
REFILL = {
    "ssdlite320_mobilenet_v3_large": ("he", 1, 0),
    "retinanet_resnet50_fpn": ("recorded", 0, 1),
    "fcos_resnet50_fpn": ("recorded", 0, 1),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ("fan_in", 3, 3),
}
DETECTORS = tuple(REFILL)
DYNAMIC_OPS = frozenset({"NonZero", "If", "NonMaxSuppression", "Loop"})
IMAGE_SHAPE = (3, 320, 320)


@dataclass
class HostPart:
    """A detector's host part: ``model`` (inputs: the boundary tensors), ``feeds`` (their
    values, in input order) and ``expected`` (the whole model's outputs from onnxruntime)."""

    name: str
    model: onnx.ModelProto
    feeds: dict[str, np.ndarray]
    expected: list[np.ndarray]

    @property
    def inputs(self) -> list[np.ndarray]:
        return list(self.feeds.values())


def _subgraph_reads(node: onnx.NodeProto) -> Iterable[str]:
    """Names a node's subgraphs (If/Loop bodies) read from the enclosing scope, and more: every
    input of a subgraph node (callers filter by what exists outside)."""
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for graph in graphs:
            for inner in graph.node:
                yield from inner.input
                yield from _subgraph_reads(inner)


def _reads(node: onnx.NodeProto) -> list[str]:
    return [x for x in (*node.input, *_subgraph_reads(node)) if x]


def dynamic_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes of a data-dependent op type and every node downstream of one, in graph order."""
    tainted: set[str] = set()
    nodes = []
    for node in graph.node:
        if node.op_type in DYNAMIC_OPS or any(x in tainted for x in _reads(node)):
            tainted.update(node.output)
            nodes.append(node)
    return nodes


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    attr = node.attribute[0]
    value = helper.get_attribute_value(attr)
    if attr.name == "value":
        return numpy_helper.to_array(value)
    dtypes = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}
    return np.array(value, dtype=dtypes[attr.name])


def split_host_part(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """(the host part without input types, its boundary input names): the whole model with the
    boundary tensors as extra outputs is built by `host_part`."""
    graph = model.graph
    dyn = dynamic_nodes(graph)
    dyn_ids = {id(n) for n in dyn}
    produced = {o for n in dyn for o in n.output}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and id(n) not in dyn_ids}
    inits = {i.name: i for i in graph.initializer}
    boundary: list[str] = []
    used_inits: dict[str, onnx.TensorProto] = {}
    for node in dyn:
        for x in _reads(node):
            if x in produced or x in used_inits or x in boundary:
                continue
            if x in inits:
                used_inits[x] = inits[x]
            elif x in constants:
                used_inits[x] = numpy_helper.from_array(_constant_value(constants[x]), x)
            elif any(x in n.output for n in graph.node) or any(x == i.name for i in graph.input):
                boundary.append(x)
    sub = helper.make_graph(dyn, "host_part", [], list(graph.output), list(used_inits.values()))
    sub_model = helper.make_model(sub, opset_imports=model.opset_import)
    sub_model.ir_version = model.ir_version
    return sub_model, boundary


def image(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random(IMAGE_SHAPE, dtype=np.float32)


def detector(name: str) -> tuple[onnx.ModelProto, np.ndarray]:
    """Detector ``name`` with its weights refilled and its input image (`REFILL`)."""
    scheme, seed, input_seed = REFILL[name]
    return refill_weights(onnx.load(str(MODELS_DIR / f"{name}.onnx")), seed=seed, scheme=scheme), image(input_seed)


@functools.cache
def host_part(name: str) -> HostPart:
    """The host part of detector ``name`` and its boundary values for its seeded image."""
    model, picture = detector(name)
    sub, boundary = split_host_part(model)
    whole = onnx.ModelProto()
    whole.CopyFrom(model)
    outputs = [o.name for o in whole.graph.output]
    whole.graph.output.extend(helper.make_empty_tensor_value_info(b) for b in boundary if b not in outputs)
    session = ort_session(whole.SerializeToString(), threads=2)
    values = dict(zip([o.name for o in whole.graph.output],
                      session.run(None, {model.graph.input[0].name: picture}), strict=True))
    sub.graph.input.extend(helper.make_tensor_value_info(b, helper.np_dtype_to_tensor_dtype(values[b].dtype),
                                                         values[b].shape) for b in boundary)
    onnx.checker.check_model(sub)
    return HostPart(name, sub, {b: values[b] for b in boundary}, [values[o] for o in outputs])


def outputs_match(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    """A detector's (boxes, scores, labels): same shapes, float outputs allclose 1e-5 (relative
    and absolute), the others equal."""
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            return False
        same = np.allclose(g, w, rtol=1e-5, atol=1e-5) if w.dtype.kind == "f" else np.array_equal(g, w)
        if not same:
            return False
    return True
