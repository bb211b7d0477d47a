"""Compiling a model with data-dependent shapes: its static part for the device, its
data-dependent part as a host stage after it (`visc.frontend.dynamic_split` cuts them).

The result is a `Pipeline`: one frame streams through the device stages and then the host
stage, and frames overlap like any pipeline's, so the host post-processing of frame i runs
while the device computes frame i + 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import onnx

from visc.errors import InputShapeError

if TYPE_CHECKING:
    from visc.frontend.dynamic_split import DynamicSplit
    from visc.model import CompiledModel
    from visc.runtime.pipeline import Pipeline, StageInfo
    from visc.runtime.plan import TensorSpec


def with_input_shapes(proto: onnx.ModelProto, shapes: Mapping[str, Sequence[int]] | None) -> onnx.ModelProto:
    """A copy of ``proto`` whose graph inputs have the given static shapes."""
    if not shapes:
        return proto
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    names = {i.name for i in out.graph.input}
    unknown = [n for n in shapes if n not in names]
    if unknown:
        raise InputShapeError(f"input_shapes names {unknown}, which the model does not take "
                              f"(its inputs: {sorted(names)})")
    for vi in out.graph.input:
        if vi.name in shapes:
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in shapes[vi.name]:
                dims.add().dim_value = int(d)
    return out


def _spec(vi: onnx.ValueInfoProto) -> TensorSpec:
    """A graph value as a `TensorSpec`; a dimension unknown before the run is -1."""
    from onnx import helper

    from visc.runtime.plan import TensorSpec

    t = vi.type.tensor_type
    dims = tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in t.shape.dim)
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).name if t.elem_type else "float32"
    return TensorSpec(vi.name, dims, dtype)


def _graph_inputs(proto: onnx.ModelProto) -> list[TensorSpec]:
    """The inputs a caller gives (initializers listed as inputs are not)."""
    inits = {t.name for t in proto.graph.initializer}
    return [_spec(i) for i in proto.graph.input if i.name not in inits]


def host_model(host: onnx.ModelProto, nodes: Sequence[str]) -> CompiledModel:
    """The host stage as a compiled model: a plan with its inputs and outputs and no
    launches, and the graph as its source."""
    from visc.model import CompiledModel
    from visc.runtime.host_executor import HOST_TARGET, encode_graph
    from visc.runtime.plan import Plan

    plan = Plan(arena_size=0, inputs=[_spec(i) for i in host.graph.input],
                outputs=[_spec(o) for o in host.graph.output], weights=[], buffers=[], launches=[])
    return CompiledModel(plan, {HOST_TARGET: encode_graph(host.SerializeToString())}, {}, HOST_TARGET,
                         metadata={"host_nodes": len(nodes), "first_node": nodes[0] if nodes else "",
                                   "last_node": nodes[-1] if nodes else ""})


def host_info(index: int, model: CompiledModel) -> StageInfo:
    from visc.runtime.pipeline import StageInfo

    meta = model.metadata
    return StageInfo(index=index, target=model.target, nodes=int(meta.get("host_nodes", 0)),
                     first_node=str(meta.get("first_node", "")), last_node=str(meta.get("last_node", "")))


def compile_split(proto: onnx.ModelProto, target: str, compile_static: Callable[[onnx.ModelProto], CompiledModel],
                  ) -> CompiledModel | Pipeline:
    """``proto`` (input shapes static) compiled whole when nothing in it depends on data, else
    as a two-stage pipeline: ``compile_static`` of the static part, then the host stage."""
    from visc.frontend.dynamic_split import split_dynamic
    from visc.runtime.pipeline import Pipeline, StageInfo

    split = split_dynamic(proto)
    if split.host is None:
        return compile_static(split.static)
    host = host_model(split.host, split.host_nodes)
    inputs = _graph_inputs(proto)
    if not split.static.graph.node:  # everything depends on data: the host stage alone
        return Pipeline([host], [host_info(0, host)], inputs, split.outputs, frames_in_flight=2,
                        metadata={"cuts": [], "host_stage": True})
    static = compile_static(split.static)
    launches = static.plan.launches
    infos = [StageInfo(index=0, target=target, device=static.device,
                       nodes=len({la.node for la in launches if la.node}),
                       first_node=launches[0].node if launches else "", last_node=launches[-1].node if launches else ""),
             host_info(1, host)]
    return Pipeline([static, host], infos, inputs, split.outputs, frames_in_flight=2,
                    metadata={"cuts": [infos[0].last_node], "host_stage": True})


def append_host_stage(head: Pipeline, split: DynamicSplit) -> Pipeline:
    """``head`` (the static part's stages) with the host part as its last stage."""
    from visc.runtime.pipeline import Pipeline

    assert split.host is not None
    host = host_model(split.host, split.host_nodes)
    infos = [*head.infos, host_info(len(head.infos), host)]
    metadata = {**head.metadata, "host_stage": True}
    head.close()
    return Pipeline([*head.models, host], infos, _graph_inputs(split.static), split.outputs,
                    frames_in_flight=head.frames_in_flight,
                    metadata=metadata, engine=head.engine_kind, ray_address=head.ray_address)


__all__ = ["compile_split", "append_host_stage", "host_model", "host_info", "with_input_shapes"]
