"""ONNX graphs kept in the repository without their weights, refilled from a seed when loaded.

torchvision's detectors and ConvNeXt are tens of megabytes of weights around graphs of a few
hundred kilobytes, and CI installs no PyTorch to export them. `strip_weights` drops the float
initializers that only feed parameter inputs (conv and matmul weights, biases, normalization
scales and statistics) and records each one's shape, type and value statistics in the model's
metadata; `refill_weights` puts seeded tensors with those statistics back. Every other
constant (anchors, shapes, thresholds) is kept exactly, so the refilled graph computes what
the exported one does, with other weights. `benchmarks/export_models.py` makes the files.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
from onnx import numpy_helper

STRIPPED_KEY = "visc.stripped_weights"
# ops whose float initializers are learned parameters (every input but the data)
PARAM_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization",
                       "InstanceNormalization", "GroupNormalization", "PRelu"})
# ops whose initializer is a parameter when their other operand comes from a PARAM_OPS node
# (a Linear's bias after MatMul, ConvNeXt's layer scale)
AFFINE_OPS = frozenset({"Add", "Mul"})


def _is_parameter(name: str, consumers: list[onnx.NodeProto], producer: dict[str, str]) -> bool:
    if not consumers:
        return False
    for node in consumers:
        if node.op_type in PARAM_OPS and node.input and node.input[0] != name:
            continue
        if node.op_type in AFFINE_OPS:
            others = [i for i in node.input if i != name]
            if others and all(producer.get(i) in PARAM_OPS for i in others):
                continue
        return False
    return True


def strip_weights(model: onnx.ModelProto, min_elements: int = 16) -> onnx.ModelProto:
    """A copy of ``model`` without its parameter initializers of at least ``min_elements``
    float elements; their shapes, types and statistics go to metadata `STRIPPED_KEY`."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    producer: dict[str, str] = {}
    for node in out.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
        for o in node.output:
            producer[o] = node.op_type
    records, kept = [], []
    for init in out.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "f" and arr.size >= min_elements and _is_parameter(init.name, consumers.get(init.name, []),
                                                                                producer):
            a64 = arr.astype(np.float64)
            records.append({"name": init.name, "shape": list(arr.shape), "dtype": arr.dtype.name,
                            "mean": float(a64.mean()), "std": float(a64.std()),
                            "min": float(a64.min()), "max": float(a64.max())})
        else:
            kept.append(init)
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    names = {r["name"] for r in records}
    graph_inputs = [i for i in out.graph.input if i.name not in names]
    del out.graph.input[:]
    out.graph.input.extend(graph_inputs)
    meta = [p for p in out.metadata_props if p.key != STRIPPED_KEY]
    del out.metadata_props[:]
    out.metadata_props.extend(meta)
    out.metadata_props.add(key=STRIPPED_KEY, value=json.dumps(records))
    return out


def is_stripped(model: onnx.ModelProto) -> bool:
    return any(p.key == STRIPPED_KEY for p in model.metadata_props)


def _rng(seed: int, name: str) -> np.random.Generator:
    """One stream per tensor, so a tensor's values do not depend on the others' order."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# ops after which a weight gets He's gain 2 rather than LeCun's 1 (scheme "fan_in")
RECTIFIERS = frozenset({"Relu", "LeakyRelu", "HardSwish", "Clip"})
SCHEMES = ("recorded", "he", "fan_in")


def _readers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for i in node.input:
            readers.setdefault(i, []).append(node)
    return readers


def _fan_in_and_gain(name: str, shape: list[int], readers: dict[str, list[onnx.NodeProto]]) -> tuple[int, float] | None:
    """Scheme "fan_in": the fan-in of weight ``name`` (a Conv/ConvTranspose kernel, or the
    weight operand of a Gemm or MatMul) and its gain, 2 when a rectifier reads the layer's
    output (directly or after a bias Add) and 1 otherwise; None for any other tensor."""
    node = next(iter(readers.get(name, [])), None)
    if node is None or len(node.input) < 2 or node.input[1] != name:
        return None
    if node.op_type in ("Conv", "ConvTranspose") and len(shape) >= 3:
        fan_in = int(np.prod(shape[1:]))
    elif node.op_type == "Gemm" and len(shape) == 2:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        fan_in = shape[1] if trans_b else shape[0]
    elif node.op_type == "MatMul" and len(shape) >= 2:
        fan_in = shape[-2]
    else:
        return None
    after = list(readers.get(node.output[0], []))
    after += [r for a in after if a.op_type == "Add" for r in readers.get(a.output[0], [])]
    return max(fan_in, 1), 2.0 if any(a.op_type in RECTIFIERS for a in after) else 1.0


def refill_weights(model: onnx.ModelProto, seed: int = 0, scheme: str = "recorded") -> onnx.ModelProto:
    """A copy of a stripped ``model`` with seeded tensors in place of the stripped ones: normal
    with each tensor's recorded mean and standard deviation, clipped to its recorded range (so
    variances stay positive).

    ``scheme="he"``: convolution weights (4-D) are normal with variance 2 / fan-in instead,
    which keeps activations at scale through a deep network whose normalization was folded
    into its convolutions (an exported SSDlite's recorded statistics let them vanish, and
    every score ties).

    ``scheme="fan_in"``: every convolution kernel and Gemm/MatMul weight is normal with
    variance gain / fan-in, gain 2 when a rectifier reads the layer (He) and 1 otherwise
    (LeCun), heads included; biases and other tensors as recorded. Activations then stay
    near unit scale up to the heads, so classification logits spread over a few units (a
    softmax's scores differ visibly) and box deltas stay moderate. On Faster R-CNN's
    MobileNet, "recorded" lets activations vanish (torchvision sizes depthwise kernels by
    fan-out: every score ties) and "he" lets the residual sums grow into the hundreds (every
    objectness saturates, every proposal degenerates)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown refill scheme '{scheme}' ({', '.join(SCHEMES)})")
    records = next((json.loads(p.value) for p in model.metadata_props if p.key == STRIPPED_KEY), None)
    if records is None:
        raise ValueError("the model has no stripped weights to refill")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    readers = _readers(out) if scheme == "fan_in" else {}
    for r in records:
        rng = _rng(seed, r["name"])
        scaled = _fan_in_and_gain(r["name"], r["shape"], readers) if scheme == "fan_in" else None
        if scheme == "he" and len(r["shape"]) == 4:
            values = rng.normal(0.0, np.sqrt(2.0 / max(int(np.prod(r["shape"][1:])), 1)), r["shape"])
        elif scaled is not None:
            fan_in, gain = scaled
            values = rng.normal(0.0, np.sqrt(gain / fan_in), r["shape"])
        else:
            values = np.clip(rng.normal(r["mean"], r["std"], r["shape"]), r["min"], r["max"])
        values = values.astype(r["dtype"])
        out.graph.initializer.append(numpy_helper.from_array(values, r["name"]))
    meta = [p for p in out.metadata_props if p.key != STRIPPED_KEY]
    del out.metadata_props[:]
    out.metadata_props.extend(meta)
    return out


__all__ = ["strip_weights", "refill_weights", "is_stripped", "STRIPPED_KEY", "SCHEMES"]
