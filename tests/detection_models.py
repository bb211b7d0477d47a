"""Two small object detectors built with onnx.helper (the installed packages ship none), with
seeded random weights: a YOLO-style and an SSD-style model whose whole post-processing --
box decoding, score filtering, TopK, NonMaxSuppression -- is inside the graph.

Both take a 1x3xSxS image and return (boxes [1, N, 4], scores [1, classes, N], selected
[num_selected, 3]), the three inputs and the output of their NonMaxSuppression, so a test can
compare the selected boxes, scores and classes with onnxruntime's. The weights are scaled so
random images give hundreds of candidates above the score threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from graph_builder import GraphBuilder
from onnx import TensorProto, helper

OPSET = 17


@dataclass
class _Graph(GraphBuilder):
    """The shared builder with this file's layers."""

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, gain: float = 1.0) -> str:
        w = self.rng.standard_normal((cout, cin, k, k)) * gain * np.sqrt(2.0 / (cin * k * k))
        b = self.rng.standard_normal(cout) * 0.1
        return self.op("Conv", [x, self.const(w.astype(np.float32), "w"), self.const(b.astype(np.float32), "b")],
                       kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)

    def silu(self, x: str) -> str:
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def slice_last(self, x: str, start: int, end: int) -> str:
        return self.op("Slice", [x, self.const(np.array([start], np.int64)), self.const(np.array([end], np.int64)),
                                 self.const(np.array([-1], np.int64))])

    def reshape(self, x: str, shape: list[int]) -> str:
        return self.op("Reshape", [x, self.const(np.array(shape, np.int64), "shape")])

    def scalar(self, v: float) -> str:
        return self.const(np.array(v, np.float32), "k")

    def model(self, image: str, size: int, outputs: list[str]) -> onnx.ModelProto:
        inputs = [helper.make_tensor_value_info(image, TensorProto.FLOAT, [1, 3, size, size])]
        outs = [helper.make_empty_tensor_value_info(o) for o in outputs]
        graph = helper.make_graph(self.nodes, "detector", inputs, outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 9
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # output types for onnxruntime
        onnx.checker.check_model(model)
        return model


def _nms(g: _Graph, boxes: str, scores: str, per_class: int, iou: float, score: float, center: int) -> None:
    g.nodes.append(helper.make_node(
        "NonMaxSuppression",
        [boxes, scores, g.const(np.array([per_class], np.int64)), g.const(np.array([iou], np.float32)),
         g.const(np.array([score], np.float32))],
        ["selected"], name="nms", center_point_box=center))


# -- YOLO ---------------------------------------------------------------------------------------


def yolo(size: int = 128, classes: int = 4, seed: int = 0) -> onnx.ModelProto:
    """Conv backbone (SiLU), an FPN-style neck (1x1 conv, Resize x2 nearest, Concat), two
    anchor-based heads at strides 8 and 16 decoded YOLOv5-style (sigmoid; xy = (2s - 0.5 +
    grid) * stride; wh = (2s)^2 * anchor; score = objectness * class), NMS on center boxes."""
    g = _Graph(np.random.default_rng(seed))
    a = 3  # anchors per cell
    x = g.silu(g.conv("image", 3, 8, 3, 2))
    x = g.silu(g.conv(x, 8, 16, 3, 2))
    p3 = g.silu(g.conv(x, 16, 32, 3, 2))  # stride 8
    p4 = g.silu(g.conv(p3, 32, 48, 3, 2))  # stride 16
    lateral = g.silu(g.conv(p4, 48, 32, 1))
    up = g.op("Resize", [lateral, "", g.const(np.array([1, 1, 2, 2], np.float32), "scales")], mode="nearest")
    n3 = g.silu(g.conv(g.op("Concat", [up, p3], axis=1), 64, 32, 3))
    anchors = {8: [(10, 13), (16, 30), (33, 23)], 16: [(30, 61), (62, 45), (59, 119)]}
    all_boxes, all_scores = [], []
    for feat, cin, stride in ((n3, 32, 8), (p4, 48, 16)):
        cells = size // stride
        n = a * cells * cells
        head = g.conv(feat, cin, a * (5 + classes), 1, gain=1.5)
        t = g.reshape(g.op("Transpose", [g.reshape(head, [1, a, 5 + classes, cells, cells])], perm=[0, 1, 3, 4, 2]),
                      [1, n, 5 + classes])
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.broadcast_to(np.stack([xs, ys], -1)[None], (a, cells, cells, 2)).reshape(1, n, 2)
        anchor = np.broadcast_to(np.array(anchors[stride], np.float32)[:, None, None, :], (a, cells, cells, 2))
        xy = g.op("Mul", [g.op("Add", [g.op("Sub", [g.op("Mul", [g.op("Sigmoid", [g.slice_last(t, 0, 2)]),
                                                                 g.scalar(2.0)]), g.scalar(0.5)]),
                                       g.const(grid.astype(np.float32), "grid")]), g.scalar(float(stride))])
        s2 = g.op("Mul", [g.op("Sigmoid", [g.slice_last(t, 2, 4)]), g.scalar(2.0)])
        wh = g.op("Mul", [g.op("Mul", [s2, s2]), g.const(anchor.reshape(1, n, 2).astype(np.float32), "anchor")])
        obj = g.op("Sigmoid", [g.slice_last(t, 4, 5)])
        cls = g.op("Mul", [g.op("Sigmoid", [g.slice_last(t, 5, 5 + classes)]), obj])
        all_boxes.append(g.op("Concat", [xy, wh], axis=2))
        all_scores.append(g.op("Transpose", [cls], perm=[0, 2, 1]))
    g.nodes.append(helper.make_node("Concat", all_boxes, ["boxes"], name="boxes", axis=1))
    g.nodes.append(helper.make_node("Concat", all_scores, ["scores"], name="scores", axis=2))
    _nms(g, "boxes", "scores", per_class=40, iou=0.45, score=0.3, center=1)
    return g.model("image", size, ["boxes", "scores", "selected"])


# -- SSD ----------------------------------------------------------------------------------------


def _priors(cells: int, scale: float, ratios: tuple[float, ...]) -> np.ndarray:
    """(cx, cy, w, h) priors in [0, 1] per cell (row-major) and ratio, as SSD lays them out."""
    ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
    out = [[cx, cy, scale * np.sqrt(r), scale / np.sqrt(r)] for cy, cx in zip(ys.ravel(), xs.ravel(), strict=True)
           for r in ratios]
    return np.array(out, np.float32)


def ssd(size: int = 128, classes: int = 5, top_k: int = 200, seed: int = 1) -> onnx.ModelProto:
    """Conv backbone (ReLU), three feature scales (strides 8, 16, 32) each with a location and
    a confidence head; Softmax over classes (class 0 is background); box decoding against
    priors with variances (0.1, 0.2); the top_k boxes by best foreground score (ReduceMax, TopK,
    Gather) go to NMS on corner boxes (y1, x1, y2, x2)."""
    g = _Graph(np.random.default_rng(seed))
    ratios = (1.0, 2.0, 0.5, 3.0)
    a = len(ratios)
    x = g.op("Relu", [g.conv("image", 3, 8, 3, 2)])
    x = g.op("Relu", [g.conv(x, 8, 16, 3, 2)])
    feats = []
    cin = 16
    for cout in (24, 32, 32):
        x = g.op("Relu", [g.conv(x, cin, cout, 3, 2)])
        feats.append((x, cout))
        cin = cout
    locs, confs, priors = [], [], []
    for (feat, ch), scale in zip(feats, (0.2, 0.4, 0.7), strict=True):
        cells = size // (8 * 2 ** len(priors))
        n = cells * cells * a
        loc = g.op("Transpose", [g.conv(feat, ch, a * 4, 3, gain=0.5)], perm=[0, 2, 3, 1])
        conf = g.op("Transpose", [g.conv(feat, ch, a * classes, 3, gain=2.0)], perm=[0, 2, 3, 1])
        locs.append(g.reshape(loc, [1, n, 4]))
        confs.append(g.reshape(conf, [1, n, classes]))
        priors.append(_priors(cells, scale, ratios))
    loc = g.op("Concat", locs, axis=1)
    probs = g.op("Softmax", [g.op("Concat", confs, axis=1)], axis=-1)
    prior = np.concatenate(priors)[None]  # [1, N, 4]
    p_xy, p_wh = g.const(prior[..., :2], "prior_xy"), g.const(prior[..., 2:], "prior_wh")
    center = g.op("Add", [p_xy, g.op("Mul", [g.op("Mul", [g.slice_last(loc, 0, 2), g.scalar(0.1)]), p_wh])])
    half = g.op("Mul", [g.op("Mul", [g.op("Exp", [g.op("Mul", [g.slice_last(loc, 2, 4), g.scalar(0.2)])]), p_wh]),
                        g.scalar(0.5)])
    x1y1, x2y2 = g.op("Sub", [center, half]), g.op("Add", [center, half])
    # corners as (y1, x1, y2, x2)
    corners = g.op("Concat", [g.slice_last(x1y1, 1, 2), g.slice_last(x1y1, 0, 1),
                              g.slice_last(x2y2, 1, 2), g.slice_last(x2y2, 0, 1)], axis=2)
    foreground = g.slice_last(probs, 1, classes)
    best = g.op("ReduceMax", [foreground], axes=[2], keepdims=0)  # [1, N]
    _, order = g.op("TopK", [best, g.const(np.array([top_k], np.int64), "k")], n_out=2, axis=1)  # node "topk_*"
    flat = g.reshape(order, [top_k])
    g.nodes.append(helper.make_node("Gather", [corners, flat], ["boxes"], name="boxes", axis=1))
    picked = g.op("Gather", [foreground, flat], axis=1)  # [1, top_k, classes - 1]
    g.nodes.append(helper.make_node("Transpose", [picked], ["scores"], name="scores", perm=[0, 2, 1]))
    _nms(g, "boxes", "scores", per_class=30, iou=0.5, score=0.25, center=0)
    return g.model("image", size, ["boxes", "scores", "selected"])


MODELS = {"yolo": yolo, "ssd": ssd}


def image(size: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, 3, size, size), dtype=np.float32)


__all__ = ["MODELS", "yolo", "ssd", "image"]
