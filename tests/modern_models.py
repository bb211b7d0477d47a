"""Small models in the style of recent vision networks, built with onnx.helper with seeded
random weights (the installed packages ship none):

* `convnext` -- a ConvNeXt stem and blocks as torch exports them: depthwise 7x7 conv, permute
  to NHWC, LayerNormalization over the last axis, Linear (MatMul + Add), GELU, Linear, layer
  scale, permute back, residual add; the stem's and the downsampling layer's channels-first
  LayerNorm is Transpose -> LayerNormalization -> Transpose. GELU is the Erf form
  (x * 0.5 * (1 + erf(x / sqrt(2))), in the orders exporters emit) or the opset-20 Gelu op.
* `mobilevit` -- a MobileViT-style hybrid block: conv + InstanceNormalization + SiLU, a 1x1
  projection, unfolding into 2x2 patches, a transformer layer (LayerNorm, attention through
  Einsum "bhid,bhjd->bhij" and "bhij,bhjd->bhid", softmax, MLP), folding back,
  GroupNormalization, fusion with the block's input by concat and conv.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from graph_builder import GraphBuilder
from onnx import TensorProto, helper


@dataclass
class _Graph(GraphBuilder):
    """The shared builder with this file's layers."""

    def weight(self, shape: tuple[int, ...], fan_in: int) -> str:
        return self.const((self.rng.standard_normal(shape) / math.sqrt(fan_in)).astype(np.float32), "w")

    def vector(self, n: int, center: float = 0.0, spread: float = 0.1) -> str:
        return self.const((center + self.rng.standard_normal(n) * spread).astype(np.float32), "v")

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, pad: int | None = None) -> str:
        pad = k // 2 if pad is None else pad
        return self.op("Conv", [x, self.weight((cout, cin // groups, k, k), cin // groups * k * k), self.vector(cout)],
                       kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=groups)

    def linear(self, x: str, cin: int, cout: int) -> str:
        return self.op("Add", [self.op("MatMul", [x, self.weight((cin, cout), cin)]), self.vector(cout)])

    def layer_norm(self, x: str, c: int, eps: float = 1e-6) -> str:
        return self.op("LayerNormalization", [x, self.vector(c, 1.0), self.vector(c)], axis=-1, epsilon=eps)

    def channels_first_layer_norm(self, x: str, c: int) -> str:
        t = self.op("Transpose", [x], perm=[0, 2, 3, 1])
        return self.op("Transpose", [self.layer_norm(t, c)], perm=[0, 3, 1, 2])

    def gelu(self, x: str, form: str) -> str:
        if form in ("none", "tanh"):
            return self.op("Gelu", [x], approximate=form)
        if form == "erf":  # torch: x * 0.5 * (1 + erf(x / sqrt(2)))
            inner = self.op("Add", [self.op("Erf", [self.op("Div", [x, self.const(math.sqrt(2.0))])]), self.const(1.0)])
            return self.op("Mul", [self.op("Mul", [x, self.const(0.5)]), inner])
        # "erf_mul": 0.5 * x * (1 + erf(x * (1 / sqrt(2)))), the scaled sum first
        inner = self.op("Add", [self.const(1.0), self.op("Erf", [self.op("Mul", [x, self.const(1 / math.sqrt(2.0))])])])
        return self.op("Mul", [self.const(0.5), self.op("Mul", [x, inner])])

    def reshape(self, x: str, shape: list[int]) -> str:
        return self.op("Reshape", [x, self.const(np.array(shape, np.int64), "shape")])

    def model(self, x: str, shape: list[int], y: str, y_shape: list[int], opset: int) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "g", [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info(y, TensorProto.FLOAT, y_shape)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 10  # what onnxruntime reads
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        onnx.checker.check_model(model)
        return model


def convnext(seed: int = 0, dim: int = 32, size: int = 32, gelu: tuple[str, ...] = ("erf", "erf_mul")) -> onnx.ModelProto:
    """Stem (4x4 conv, stride 4, channels-first LayerNorm), one block per `gelu` form, then a
    downsampling layer (channels-first LayerNorm, 2x2 conv, stride 2): 1x3xSxS -> 1x2Dx(S/8)^2."""
    g = _Graph(np.random.default_rng(seed))
    x = g.channels_first_layer_norm(g.conv("image", 3, dim, 4, stride=4, pad=0), dim)
    for form in gelu:
        t = g.op("Transpose", [g.conv(x, dim, dim, 7, groups=dim)], perm=[0, 2, 3, 1])
        t = g.linear(g.gelu(g.linear(g.layer_norm(t, dim), dim, 4 * dim), form), 4 * dim, dim)
        t = g.op("Mul", [t, g.vector(dim, 0.5)])  # layer scale
        x = g.op("Add", [x, g.op("Transpose", [t], perm=[0, 3, 1, 2])])
    y = g.conv(g.channels_first_layer_norm(x, dim), dim, 2 * dim, 2, stride=2, pad=0)
    opset = 20 if any(f in ("none", "tanh") for f in gelu) else 17
    return g.model("image", [1, 3, size, size], y, [1, 2 * dim, size // 8, size // 8], opset)


def mobilevit(seed: int = 0, cin: int = 16, dim: int = 32, size: int = 16, heads: int = 2) -> onnx.ModelProto:
    """1 x cin x S x S -> 1 x cin x S x S."""
    g = _Graph(np.random.default_rng(seed))
    x = "image"
    t = g.op("InstanceNormalization", [g.conv(x, cin, cin, 3), g.vector(cin, 1.0), g.vector(cin)], epsilon=1e-5)
    t = g.op("Mul", [t, g.op("Sigmoid", [t])])
    t = g.conv(t, cin, dim, 1)
    # unfold: (1, D, S, S) -> (4 patch positions, S*S/4 tokens, D)
    half = size // 2
    p = g.reshape(t, [1, dim, half, 2, half, 2])
    p = g.op("Transpose", [p], perm=[0, 3, 5, 2, 4, 1])
    tokens = g.reshape(p, [4, half * half, dim])
    hd = dim // heads
    h = g.layer_norm(tokens, dim, eps=1e-5)

    def split_heads(v: str) -> str:
        return g.op("Transpose", [g.reshape(v, [4, half * half, heads, hd])], perm=[0, 2, 1, 3])

    q, k, v = (split_heads(g.linear(h, dim, dim)) for _ in range(3))
    scores = g.op("Mul", [g.op("Einsum", [q, k], equation="bhid,bhjd->bhij"), g.const(1 / math.sqrt(hd))])
    att = g.op("Einsum", [g.op("Softmax", [scores], axis=-1), v], equation="bhij,bhjd->bhid")
    att = g.reshape(g.op("Transpose", [att], perm=[0, 2, 1, 3]), [4, half * half, dim])
    tokens = g.op("Add", [tokens, g.linear(att, dim, dim)])
    mlp = g.linear(g.gelu(g.linear(g.layer_norm(tokens, dim, eps=1e-5), dim, 2 * dim), "erf"), 2 * dim, dim)
    tokens = g.op("Add", [tokens, mlp])
    # fold back and fuse with the input
    f = g.op("Transpose", [g.reshape(tokens, [1, 2, 2, half, half, dim])], perm=[0, 5, 3, 1, 4, 2])
    f = g.reshape(f, [1, dim, size, size])
    f = g.op("GroupNormalization", [f, g.vector(dim, 1.0), g.vector(dim)], num_groups=4, epsilon=1e-5)
    f = g.conv(f, dim, cin, 1)
    y = g.conv(g.op("Concat", [x, f], axis=1), 2 * cin, cin, 3)
    return g.model("image", [1, cin, size, size], y, [1, cin, size, size], 21)


__all__ = ["convnext", "mobilevit"]
