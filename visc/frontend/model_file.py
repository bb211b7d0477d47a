"""Reading an ONNX model (a path, its bytes or a ModelProto) into a proto, without the
importer: the compile cache (`visc.model_cache`) reads and fingerprints a model before it
knows whether the compiler, and xDSL with it, is needed at all."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from typing import Any

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto

from visc.errors import ModelLoadError


def load_model(model: ModelProto | str | os.PathLike | bytes) -> tuple[ModelProto, str]:
    """The model proto and a label for messages; ModelLoadError when it cannot be read."""
    proto, label, _ = read_model(model, digest=False)
    return proto, label


def read_model(model: ModelProto | str | os.PathLike | bytes,
               digest: bool = True) -> tuple[ModelProto, str, str]:
    """`load_model`, and (``digest``) the sha256 of the model's content: of the file's bytes,
    which is cheaper than serializing the proto again, unless tensors live in external data
    files (then of the proto, with their data loaded)."""
    if isinstance(model, ModelProto):
        return model, model.graph.name or "model", _proto_digest(model) if digest else ""
    if isinstance(model, bytes | bytearray):
        label, data = "<bytes>", bytes(model)
    else:
        label = os.fspath(model)
        try:
            with open(label, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ModelLoadError(f"cannot read ONNX model '{label}': {e.strerror or e}") from None
    proto = ModelProto()
    try:
        proto.ParseFromString(data)
    except DecodeError:
        raise ModelLoadError(
            f"cannot read ONNX model '{label}': the file is truncated or corrupt (not a valid protobuf)"
        ) from None
    external = False
    if not isinstance(model, bytes | bytearray):
        external = any(t.data_location == TensorProto.EXTERNAL for t in _tensors(proto.graph))
        try:
            onnx.load_external_data_for_model(proto, os.path.dirname(os.path.abspath(label)))
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"cannot read ONNX model '{label}': external data: {e}") from None
    if not digest:
        return proto, label, ""
    return proto, label, _proto_digest(proto) if external else hashlib.sha256(data).hexdigest()


def _proto_digest(proto: ModelProto) -> str:
    """The sha256 of the proto's content, three times as fast as of its serialization: the
    tensors' bytes are hashed where they lie, not copied into one message first."""
    h = hashlib.sha256()
    _hash_message(h, proto)
    return h.hexdigest()


_WALKED = (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto)  # where the weights are


def _hash_message(h: Any, message: Any) -> None:
    """Field by field (number, count, values): a weight's ``raw_data`` directly, a small
    message (a shape, an opset) as its deterministic serialization."""
    for fd, value in message.ListFields():
        repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED  # protobuf < 6
        items = value if repeated else (value,)
        h.update(struct.pack("<IQ", fd.number, len(items)))
        if fd.message_type is None:
            if isinstance(value, bytes):
                h.update(struct.pack("<Q", len(value)))
                h.update(value)
            elif len(items) > 256:  # float_data and kin: one tensor serialized beats a repr per value
                h.update(message.SerializeToString(deterministic=True))
                return
            else:
                h.update(repr(list(items)).encode())
            continue
        for item in items:
            if isinstance(item, _WALKED):
                _hash_message(h, item)
            else:
                data = item.SerializeToString(deterministic=True)
                h.update(struct.pack("<Q", len(data)))
                h.update(data)


def _tensors(graph: GraphProto) -> Iterator[TensorProto]:
    """Every tensor of ``graph`` that can hold external data: initializers and attribute
    tensors, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


__all__ = ["load_model", "read_model"]
