"""The model-zoo CNNs shipped inside the onnx package (`onnx/backend/test/data/light`).

Those files carry placeholder weights (every tensor is one constant, via ConstantOfShape),
which makes every class equally likely. `with_random_weights` replaces them with seeded
random tensors of the same shapes, scaled like a trained network's (fan-in variance,
positive normalization statistics), so outputs vary and comparisons mean something.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
LIGHT_MODELS = ("resnet50", "squeezenet", "shufflenet", "densenet121", "inception_v1", "inception_v2",
                "bvlc_alexnet", "zfnet512", "vgg19")


def light_model_path(name: str) -> str:
    path = os.path.join(LIGHT_DIR, f"light_{name}.onnx")
    if not os.path.exists(path):
        known = ", ".join(LIGHT_MODELS)
        raise FileNotFoundError(f"no model-zoo model '{name}' in the onnx package (known: {known})")
    return path


def _random_tensor(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        values = rng.standard_normal(shape) * np.sqrt(1.0 / max(fan_in, 1))
    else:
        values = rng.uniform(0.5, 1.5, shape)
    return values.astype(dtype)


def with_random_weights(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """A copy of `model` whose ConstantOfShape weights are seeded random initializers."""
    rng = np.random.default_rng(seed)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    # IR version 4 is the first to allow initializers that are not graph inputs.
    out.ir_version = max(out.ir_version, 4)
    consts = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    for node in out.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    keep = []
    for node in out.graph.node:
        if node.op_type == "ConstantOfShape" and node.input and node.input[0] in consts:
            shape = tuple(int(d) for d in consts[node.input[0]])
            dtype = np.float32
            for attr in node.attribute:
                if attr.name == "value":
                    dtype = numpy_helper.to_array(attr.t).dtype
            array = _random_tensor(rng, shape, np.dtype(dtype))
            out.graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        else:
            keep.append(node)
    del out.graph.node[:]
    out.graph.node.extend(keep)
    used = {name for node in keep for name in node.input} | {o.name for o in out.graph.output}
    unused = [i for i in out.graph.initializer if i.name not in used]
    for init in unused:
        out.graph.initializer.remove(init)
    graph_inputs = [i for i in out.graph.input if i.name in {u.name for u in unused}]
    for gi in graph_inputs:
        out.graph.input.remove(gi)
    return out


def load_light_model(name: str, seed: int | None = 0) -> onnx.ModelProto:
    """A light model, with random weights unless `seed` is None."""
    model = onnx.load(light_model_path(name))
    return model if seed is None else with_random_weights(model, seed)
