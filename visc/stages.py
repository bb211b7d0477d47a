"""`visc.pipeline` (built here): compile an ONNX model into stages that run as dataflow actors.

    pipe = visc.pipeline("det.onnx", input_shapes={"images": (1, 3, 320, 320)}, stages=[
        visc.Stage(target="cuda", until="/model.22/Concat_3"),   # up to and including this node
        visc.Stage(target="cpu"),                                 # the rest of the graph
    ], frames_in_flight=4)

The model is imported and the graph passes run once (fusion decided for the whole model);
`vision-partition` then cuts the graph: after user-named nodes or tensors, or, with
``stages=N`` and ``devices``, where measured per-op times balance the stages. Every stage is
then lowered by the unchanged pipeline of its own target, so each op gets the kernel it gets
in an uncut compile for that target, and a cut model computes bit for bit what the uncut
one computes. The result is a `visc.runtime.pipeline.Pipeline` (runtime side only).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from visc.errors import CompileError

if TYPE_CHECKING:
    import onnx
    from xdsl.dialects.builtin import ModuleOp

    from visc.runtime.pipeline import Pipeline
    from visc.runtime.plan import TensorSpec
    from visc.weights import WeightStore


@dataclass
class Stage:
    """One stage of a pipeline. ``until``: the ONNX node (or the name of a tensor it produces)
    that ends the stage, inclusive; None for the last stage. ``device``: which device of
    ``target`` (an OpenCL spec such as "0:1", a CUDA index). ``replicas``: copies of the
    stage's actor, for a slow stage (frames stay in order). ``threads``: CPU threads per
    replica (a cpu stage). ``ray``: Ray actor options for ``engine="ray"``, e.g.
    ``{"resources": {"edge1": 1}}`` to run the stage on the node offering that resource."""

    target: str = "cpu"
    until: str | None = None
    device: str | None = None
    replicas: int = 1
    threads: int | None = None
    ray: Mapping[str, Any] | None = None

    @staticmethod
    def parse(text: str, **options: Any) -> Stage:
        """A stage from "TARGET[:NODE][@RESOURCE]", as `visc pipeline --stage` writes it;
        ``@RESOURCE``: with the Ray engine, run on a node offering that custom resource."""
        spec, _, resource = text.partition("@")
        target, _, until = spec.partition(":")
        if resource:  # a thousandth of the resource: any number of stages fit on that node
            options = {**options, "ray": {"resources": {resource: 0.001}}}
        return Stage(target=target, until=until or None, **options)


StageLike = Stage | str | Mapping[str, Any]


def _stage(spec: StageLike) -> Stage:
    if isinstance(spec, Stage):
        return spec
    if isinstance(spec, str):
        return Stage.parse(spec)
    return Stage(**dict(spec))


def _node_names(proto: onnx.ModelProto) -> tuple[dict[str, str], set[str]]:
    """(tensor name -> the display name of the node producing it, every node display name),
    named as the importer names nodes (`node.name` or `OpType#index` in its sorted order)."""
    from visc.frontend.context import node_display_name
    from visc.frontend.onnx import _Importer

    producer: dict[str, str] = {}
    names: set[str] = set()
    for index, node in _Importer(proto, "model").sorted_nodes():
        name = node_display_name(node, index)
        names.add(name)
        for out in node.output:
            if out:
                producer[out] = name
    return producer, names


def _resolve_cut(name: str, producer: Mapping[str, str], nodes: set[str], surviving: set[str]) -> str:
    """The ONNX node a stage ends at: ``name`` itself or the producer of the tensor ``name``;
    it must be among the ``surviving`` nodes, those with an op after the graph passes (a
    fused op counts for each of its nodes)."""
    if name not in nodes and name not in producer and "+" in name:
        name = name.split("+")[-1]  # a fused op's name, as `Pipeline.describe` shows it
    node = name if name in nodes else producer.get(name)
    if node is None:
        raise CompileError(f"stage boundary '{name}' is neither a node nor a tensor of the model")
    if node in surviving:
        return node
    raise CompileError(f"stage boundary '{name}' (node '{node}') has no op of its own after the graph passes "
                       "(folded into a constant or a neighbour): cut after the node before or after it")


def _profile_costs(module: ModuleOp, weights: WeightStore, target: str, arch: str | None, records: Any,
                   repeat: int, threads: int | None) -> dict[str, float]:
    """Microseconds per ONNX node of the whole model compiled for ``target``, from a profile
    run (per-launch device time, median of ``repeat`` runs on seeded random inputs), on an
    executor configured as the stages will be (``threads`` for the CPU backend)."""
    from visc.compiler import compile_module
    from visc.runtime.bench import random_inputs

    model = compile_module(module.clone(), weights, target, arch=arch, records=records, graph_passes=False)
    executor: Any = model.make_executor(threads=threads if target == "cpu" else None)
    try:
        inputs = random_inputs(model.plan.inputs, seed=0)
        executor.run(inputs)
        runs = [[t for _, t in executor.profile_run(inputs)] for _ in range(max(1, repeat))]
    finally:
        executor.close()
    costs: dict[str, float] = {}
    for launch, seconds in zip(model.plan.launches, np.median(np.array(runs), axis=0), strict=True):
        costs[launch.node] = costs.get(launch.node, 0.0) + float(seconds) * 1e6
    return costs


def _attach_costs(module: ModuleOp, costs: Mapping[str, Mapping[str, float]]) -> None:
    """`vision.costs` = {device: us} on each compute op, read by `vision-partition{stages=N}`."""
    from xdsl.dialects.builtin import DictionaryAttr, FloatAttr, StringAttr, f64

    from visc.passes.graph.partition import COSTS_ATTR
    from visc.passes.placement.placement import compute_ops, entry

    for op in compute_ops(entry(module)):
        node = op.attributes.get("onnx_node")
        if not isinstance(node, StringAttr):
            continue
        per = {dev: FloatAttr(c.get(node.data, 0.0), f64) for dev, c in costs.items()}
        op.attributes[COSTS_ATTR] = DictionaryAttr(per)


def _option(values: Sequence[str]) -> str:
    for v in values:
        if any(ch in v for ch in ',{} "='):
            raise CompileError(f"'{v}' cannot be passed to vision-partition (it contains one of , {{ }} = \" or a space)")
    return ",".join(values)


def build_pipeline(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    stages: Sequence[StageLike] | int | str,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    devices: Sequence[str] | None = None,
    frames_in_flight: int = 4,
    records: Any = None,
    arch: str | None = None,
    profile_repeat: int = 5,
    progress: Callable[[str], None] | None = None,
    threads: int | None = None,
    fallback: Sequence[str] | None = None,
    engine: str = "threads",
    ray_address: str | None = None,
) -> Pipeline:
    """Compile ``model`` into a `Pipeline` (see the module docstring). ``stages``: a list of
    `Stage` (or "target[:until]" strings), or a number of stages for visc to cut itself over
    ``devices`` (one target per stage, or one for all), balancing per-op times measured by
    a profile run of the whole model on each device; or "placement": cut where the CPU
    fallback placement (``fallback`` ONNX op types, ops without a GPU lowering, tiny ops
    between CPU ops) changes device, for the one GPU target in ``devices``. ``threads``: CPU
    threads per replica of the stages visc creates (and of the profile that places their cuts).
    ``engine``: "threads" (this process) or "ray" (each stage a Ray actor; ``ray_address``
    names the cluster, None: the one this host runs or a local one)."""
    from visc.compiler import (
        GRAPH_PIPELINE,
        check_fallback,
        check_input_shapes,
        check_model,
        compile_module,
        run_passes,
    )
    from visc.frontend.onnx import import_model, load_model
    from visc.passes.graph.partition import split_stages
    from visc.runtime.pipeline import ENGINES, Pipeline, StageInfo

    if engine not in ENGINES:
        raise CompileError(f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    check_model(model)
    check_input_shapes(input_shapes)
    check_fallback(fallback)
    if engine == "ray":
        from visc.runtime.ray_engine import ray_module

        ray_module()  # without Ray: say what to install before compiling anything

    say = progress or (lambda _msg: None)
    proto, _ = load_model(model)
    from visc.frontend.dynamic_split import needs_split

    if needs_split(proto):
        from visc.dynamic_models import append_host_stage, with_input_shapes
        from visc.frontend.dynamic_split import split_dynamic

        split = split_dynamic(with_input_shapes(proto, input_shapes))
        if split.host is not None:  # the stages asked for cut the static part; the host part follows
            head = build_pipeline(split.static, stages, None, devices, frames_in_flight, records, arch,
                                  profile_repeat, progress, threads, fallback, engine, ray_address)
            return append_host_stage(head, split)
        proto, input_shapes = split.static, None
    imported = import_model(proto, dict(input_shapes) if input_shapes else None)
    module, weights = imported.module, imported.weights
    run_passes(module, GRAPH_PIPELINE, weights)

    placed = stages == "placement"
    if placed:
        gpu = list(devices or ["opencl"])
        if len(gpu) != 1 or gpu[0] not in ("opencl", "cuda"):
            raise CompileError(f"stages='placement' takes one GPU target in devices (opencl or cuda), got {gpu}")
        from visc.passes.placement import placement_spec

        run_passes(module, [placement_spec(gpu[0], list(fallback or ()))], weights)
        spec = f"vision-partition{{by_placement=true target={gpu[0]}}}"
        specs = []
    elif isinstance(stages, str):
        raise CompileError(f"stages must be a list of stages, a number of stages or 'placement', not '{stages}'")
    elif isinstance(stages, int):
        count = stages
        if count < 1:
            raise CompileError(f"a pipeline needs at least one stage, not {count}")
        targets = list(devices or ["cpu"])
        if len(targets) == 1:
            targets = targets * count
        if len(targets) != count:
            raise CompileError(f"{count} stages need {count} devices (or one for all), got {targets}")
        specs = [Stage(target=t, threads=threads) for t in targets]
        _check_stages(specs)  # before profiling on each device
        if count > 1:
            costs: dict[str, dict[str, float]] = {}
            for target in dict.fromkeys(targets):
                say(f"profiling the whole model on {target} to balance the stages")
                costs[target] = _profile_costs(module, weights, target, arch, records, profile_repeat, threads)
            _attach_costs(module, costs)
            spec = f"vision-partition{{stages={count} devices={_option(targets)}}}"
        else:
            spec = ""
    else:
        specs = [_stage(s) for s in stages]
        _check_stages(specs)  # before resolving cuts: a wrong target is the first thing to say
        if not specs:
            raise CompileError("a pipeline needs at least one stage")
        if any(s.until is None for s in specs[:-1]):
            missing = [i for i, s in enumerate(specs[:-1]) if s.until is None]
            raise CompileError(f"stage {missing[0]} has no `until`: every stage but the last ends at a named node")
        if specs[-1].until is not None:
            raise CompileError(f"the last stage runs the rest of the graph; drop its until='{specs[-1].until}' "
                               "(or add a stage after it)")
        producer, nodes = _node_names(proto)
        surviving = {n for fused in _stage_nodes(module) for n in fused.split("+")}
        cuts = [_resolve_cut(str(s.until), producer, nodes, surviving) for s in specs[:-1]]
        targets = [s.target for s in specs]
        spec = (f"vision-partition{{cuts={_option(cuts)} devices={_option(targets)}}}" if cuts else "")
    parts = None
    if spec:
        run_passes(module, [spec], weights)
        parts = split_stages(module)
        if placed:
            specs = [Stage(target=part.device, threads=threads if part.device == "cpu" else None)
                     for part in parts]
    _check_stages(specs)

    # the caller's view of the graph, read before a single stage's compile lowers `module` itself
    graph_inputs, visible_outputs = _graph_inputs(module), _visible_outputs(module)
    models = []
    infos = []
    for i, s in enumerate(specs):
        say(f"compiling stage {i} for {s.target}")
        stage_module = parts[i].module if parts is not None else module
        nodes = _stage_nodes(stage_module)
        compiled = compile_module(stage_module, weights, s.target, device=s.device, arch=arch, records=records,
                                  graph_passes=False)
        models.append(compiled)
        infos.append(StageInfo(index=i, target=s.target, device=s.device, replicas=s.replicas, threads=s.threads,
                               nodes=len(nodes), first_node=nodes[0] if nodes else "",
                               last_node=nodes[-1] if nodes else "", ray=dict(s.ray) if s.ray else None))
    return Pipeline(models, infos, graph_inputs, visible_outputs,
                    frames_in_flight=frames_in_flight,
                    metadata={"cuts": [i.last_node.split("+")[-1] for i in infos[:-1]]}, engine=engine,
                    ray_address=ray_address)


def _check_stages(specs: Sequence[Stage]) -> None:
    from visc.compiler import TARGETS

    for s in specs:
        if s.target not in TARGETS:
            raise CompileError(f"unknown stage target '{s.target}' (available: {', '.join(TARGETS)})")
        if s.replicas < 1:
            raise CompileError(f"a stage needs at least one replica, not {s.replicas}")


def _stage_nodes(module: ModuleOp) -> list[str]:
    from xdsl.dialects.builtin import StringAttr

    from visc.passes.placement.placement import compute_ops, entry

    return [a.data for op in compute_ops(entry(module)) if isinstance(a := op.attributes.get("onnx_node"), StringAttr)]


def _graph_inputs(module: ModuleOp) -> list[TensorSpec]:
    """The model's inputs as the caller gives them (names, shapes, dtypes of `@main`)."""
    from xdsl.dialects.builtin import ShapedType

    from visc.passes.graph.helpers import string_list
    from visc.passes.placement.placement import entry
    from visc.runtime.plan import TensorSpec

    main = entry(module)
    args = main.body.block.args
    names, dtypes = string_list(main, "vision.input_names"), string_list(main, "vision.input_dtypes")
    return [TensorSpec(n, tuple(a.type.get_shape()), d) for n, d, a in zip(names, dtypes, args, strict=True)
            if isinstance(a.type, ShapedType)]


def _visible_outputs(module: ModuleOp) -> list[str]:
    """The outputs a caller gets: `@main`'s, less the hidden row counts of NMS outputs."""
    from visc.passes.graph.helpers import string_list
    from visc.passes.placement.placement import entry
    from visc.reference import output_counts

    main = entry(module)
    hidden = {c for c in output_counts(main) or () if c >= 0}
    return [n for j, n in enumerate(string_list(main, "vision.output_names")) if j not in hidden]


def hand_cuts(model: str | os.PathLike[str] | bytes | onnx.ModelProto, count: int,
              input_shapes: Mapping[str, Sequence[int]] | None = None) -> list[str]:
    """The ``count - 1`` cuts a user would make without measuring: after equal numbers of
    compute ops (the ONNX node ending each share), for tests and the benchmark's comparison."""
    from visc.compiler import GRAPH_PIPELINE, run_passes
    from visc.frontend.onnx import import_model

    imported = import_model(model, dict(input_shapes) if input_shapes else None)
    run_passes(imported.module, GRAPH_PIPELINE, imported.weights)
    nodes = _stage_nodes(imported.module)
    if count < 1 or count > len(nodes):
        raise CompileError(f"cannot cut {len(nodes)} ops into {count} stages")
    return [nodes[round(len(nodes) * k / count) - 1].split("+")[-1] for k in range(1, count)]


__all__ = ["Stage", "build_pipeline", "hand_cuts"]
