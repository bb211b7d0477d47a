"""The model-zoo CNNs shipped inside the onnx package (`onnx/backend/test/data/light`), and
CNNs built here that the package lacks (`BUILT_MODELS`: MobileNetV2).

Those files carry placeholder weights (every tensor is one constant, via ConstantOfShape),
which makes every class equally likely. `with_random_weights` replaces them with seeded
random tensors of the same shapes, scaled like a trained network's (fan-in variance,
positive normalization statistics), so outputs vary and comparisons mean something. The
built models get weights from the same distribution.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
LIGHT_MODELS = ("resnet50", "squeezenet", "shufflenet", "densenet121", "inception_v1", "inception_v2",
                "bvlc_alexnet", "zfnet512", "vgg19")
BUILT_MODELS = ("mobilenet_v2",)  # built by `build_model`, not in the onnx package


def light_model_path(name: str) -> str:
    path = os.path.join(LIGHT_DIR, f"light_{name}.onnx")
    if not os.path.exists(path):
        known = ", ".join(LIGHT_MODELS)
        built = f"; {name} is built by load_model" if name in BUILT_MODELS else ""
        raise FileNotFoundError(f"no model-zoo model '{name}' in the onnx package (known: {known}{built})")
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


# -- built models -------------------------------------------------------------------------

# torchvision's MobileNetV2 (width 1.0): (expansion t, output channels c, repeats n, stride s)
_MOBILENET_V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                        (6, 160, 3, 2), (6, 320, 1, 1))


class _GraphBuilder:
    """Nodes and seeded initializers of one float32 graph (the `_random_tensor` scaling)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        self.inits.append(numpy_helper.from_array(_random_tensor(self.rng, shape, np.dtype(np.float32)), name))
        return name

    def const(self, name: str, value: float) -> str:
        self.inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, output: str | None = None, **attrs: object) -> str:
        out = output or self._name(name)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv_bn(self, x: str, cin: int, cout: int, k: int, stride: int, groups: int, relu6: bool) -> str:
        """Conv (no bias) + BatchNormalization (+ ReLU6 as Clip(0, 6)), as torchvision's
        Conv2dNormActivation exports before BN folding."""
        base = self._name("conv")
        w = self.weight(f"{base}.w", (cout, cin // groups, k, k))
        y = self.node("Conv", [x, w], base, kernel_shape=[k, k], strides=[stride, stride],
                      pads=[k // 2] * 4, group=groups)
        bn = [self.weight(f"{base}.bn.{p}", (cout,)) for p in ("scale", "bias", "mean", "var")]
        y = self.node("BatchNormalization", [y, *bn], f"{base}_bn", epsilon=1e-5)
        return self.node("Clip", [y, "relu6.min", "relu6.max"], f"{base}_relu6") if relu6 else y


def build_mobilenet_v2(seed: int = 0, num_classes: int = 1000) -> onnx.ModelProto:
    """torchvision's MobileNetV2 for 1x3x224x224 inputs (opset 13) with seeded random weights:
    a 3x3/2 stem, 17 inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 linear project;
    an Add where stride is 1 and channels match), a 1x1 to 1280 channels, global average
    pool, Flatten and a Gemm classifier; ReLU6 is Clip(0, 6)."""
    g = _GraphBuilder(seed)
    g.const("relu6.min", 0.0)
    g.const("relu6.max", 6.0)
    x = g.conv_bn("input", 3, 32, 3, 2, 1, relu6=True)
    cin = 32
    for t, c, n, s in _MOBILENET_V2_BLOCKS:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x if t == 1 else g.conv_bn(x, cin, hidden, 1, 1, 1, relu6=True)
            y = g.conv_bn(y, hidden, hidden, 3, stride, hidden, relu6=True)
            y = g.conv_bn(y, hidden, c, 1, 1, 1, relu6=False)
            x = g.node("Add", [x, y], "residual") if stride == 1 and cin == c else y
            cin = c
    x = g.conv_bn(x, cin, 1280, 1, 1, 1, relu6=True)
    x = g.node("GlobalAveragePool", [x], "pool")
    x = g.node("Flatten", [x], "flatten", axis=1)
    w = g.weight("classifier.w", (num_classes, 1280))
    b = g.weight("classifier.b", (num_classes,))
    g.node("Gemm", [x, w, b], "classifier", output="output", transB=1)
    graph = helper.make_graph(
        g.nodes, "mobilenet_v2",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, num_classes])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8,
                              producer_name="visc.tools.model_zoo")
    onnx.checker.check_model(model)
    return model


_BUILDERS = {"mobilenet_v2": build_mobilenet_v2}


def load_model(name: str, seed: int | None = 0) -> onnx.ModelProto:
    """A light model (`LIGHT_MODELS`) or a built one (`BUILT_MODELS`, which always has
    random weights: `seed` None means seed 0), with random weights unless `seed` is None."""
    if name in _BUILDERS:
        return _BUILDERS[name](0 if seed is None else seed)
    return load_light_model(name, seed)
