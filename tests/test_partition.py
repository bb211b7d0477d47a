"""vision-partition: stage functions compiled one by one through the unchanged pipeline give
bitwise the outputs of the uncut model; the automatic cut is the exact min-max optimum."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import helper
from xdsl.dialects import func
from xdsl.parser import Parser

import visc
from visc.compiler import (
    GRAPH_PIPELINE,
    device_type_for,
    finish_module,
    lowering_pipeline,
    run_passes,
    slab_alignment,
)
from visc.dialects import make_context
from visc.errors import CompileError
from visc.frontend import import_model
from visc.passes.graph.partition import min_max_partition, split_stages
from visc.passes.placement.placement import compute_ops
from visc.tools.model_zoo import load_light_model


def _skip_model() -> onnx.ModelProto:
    """conv-relu -> conv-relu -> conv + skip(first relu) -> flatten -> gemm; the first relu
    is also a graph output, the skip crosses two cuts and the flatten sits at a cut."""
    rng = np.random.default_rng(3)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="c0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"], name="r0"),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], name="c1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="c2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r0"], ["s"], name="add"),
        helper.make_node("Flatten", ["s"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc"),
    ]
    return make_model(nodes, {"x": ([1, 4, 8, 8], np.float32)}, ["y", "r0"],
                      {"w0": w(8, 4, 3, 3), "w1": w(8, 8, 3, 3), "w2": w(8, 8, 3, 3), "wf": w(512, 10)})


def _partitioned(model: onnx.ModelProto, spec: str):
    imported = import_model(model)
    run_passes(imported.module, [*GRAPH_PIPELINE, spec], imported.weights)
    imported.module.verify()
    return imported


def _run_stages(model: onnx.ModelProto, spec: str, target: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Compile every stage as a model of its own and run them in order, edges by name."""
    imported = _partitioned(model, spec)
    device_type = device_type_for(target, None)
    specs = lowering_pipeline(target, device_type, slab_align=slab_alignment(target, None))
    values = dict(feeds)
    for stage in split_stages(imported.module):
        run_passes(stage.module, specs, imported.weights)
        compiled = finish_module(stage.module, imported.weights, target)
        assert compiled.input_names == stage.input_names and compiled.output_names == stage.output_names
        outs = compiled.run({n: values[n] for n in stage.input_names})
        values.update(zip(stage.output_names, outs, strict=True))
    return values


def _check_bitwise(model: onnx.ModelProto, spec: str, target: str, feeds: dict[str, np.ndarray]) -> None:
    whole = visc.compile(model, target=target, records=False)
    want = whole.run(feeds)
    got = _run_stages(model, spec, target, feeds)
    for name, value in zip(whole.output_names, want, strict=True):
        assert got[name].dtype == value.dtype and np.array_equal(got[name], value), name


@pytest.mark.parametrize("target", ["opencl", "cpu"])
def test_skip_connection_and_flatten_at_cuts_are_bitwise_equal(target: str) -> None:
    x = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)
    _check_bitwise(_skip_model(), "vision-partition{cuts=r0,c1,flat}", target, {"x": x})


def test_skip_model_stage_contract() -> None:
    module = _partitioned(_skip_model(), "vision-partition{cuts=flat,r0,c1 devices=a,b,c,d}").module
    stages = split_stages(module)
    assert [s.device for s in stages] == ["a", "b", "c", "d"]
    # the first relu is a graph output and feeds stage 1 and (skip) stage 2 under its own name
    assert stages[0].output_names == ["r0"] and stages[1].input_names == ["r0"]
    assert stages[2].input_names == ["r0", "c1+r1:0"]
    # the flatten travels as its source and is applied again by the last stage
    assert stages[3].input_names == ["c2+add:0"] and stages[3].output_names == ["y"]
    last = stages[3].module.body.block.first_op
    assert isinstance(last, func.FuncOp) and any(o.name == "vision.reshape" for o in last.body.block.ops)
    main = next(f for f in module.ops if isinstance(f, func.FuncOp) and f.sym_name.data == "main")
    assert [o.name for o in main.body.block.ops] == ["func.call"] * 4 + ["func.return"]
    assert [n.data for n in main.attributes["vision.output_names"].data] == ["y", "r0"]


def test_squeezenet_two_cuts_opencl_bitwise() -> None:
    model = load_light_model("squeezenet", seed=1)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    _check_bitwise(model, "vision-partition{cuts=n17,n40}", "opencl", {"data_0": x})


# -- automatic cuts --------------------------------------------------------------------------

_CHAIN_COSTS = (5.0, 1.0, 7.0, 2.0, 2.0, 6.0)
_CHAIN_DIMS = (1, 2, 4, 1, 1, 1)  # each map broadcasts its input to one more leading dim


def _chain_shapes() -> list[list[int]]:
    shapes, shape = [], [4]
    for d in _CHAIN_DIMS:
        shape = [d, *shape]
        shapes.append(shape)
    return shapes


def _chain(costs: Sequence[float] = _CHAIN_COSTS) -> str:
    """A chain of maps with hand-set costs whose tensors differ in size."""
    def typ(shape: Sequence[int]) -> str:
        return f"tensor<{'x'.join(map(str, shape))}xf32>"

    lines, prev, prev_type = [], "%x", typ([4])
    for k, (c, shape) in enumerate(zip(costs, _chain_shapes(), strict=True)):
        lines.append(f'  %v{k} = vision.map ins({prev} : {prev_type}) {{onnx_node = "m{k}", '
                     f'vision.costs = {{gpu = {c} : f32}}}} body {{\n  ^bb0(%e: f32):\n'
                     f'    %n = arith.negf %e : f32\n    vision.yield %n : f32\n  }} -> {typ(shape)}')
        prev, prev_type = f"%v{k}", typ(shape)
    return (f"func.func @main(%x: {typ([4])}) -> {prev_type} attributes {{vision.input_names = [\"x\"], "
            "vision.output_names = [\"y\"], vision.input_dtypes = [\"float32\"], "
            "vision.output_dtypes = [\"float32\"]} {\n" + "\n".join(lines) + f"\n  func.return {prev} : {prev_type}\n}}\n")


def _partition_text(text: str, spec: str):
    module = Parser(make_context(), text).parse_module()
    run_passes(module, [spec], None)
    module.verify()
    return module


def test_two_stage_cut_is_the_brute_force_optimum() -> None:
    edge_cost = 2e5  # us per MiB: a 32-float edge costs ~24 us, more than most ops
    sizes = [4 * int(np.prod(shape)) for shape in _chain_shapes()]
    n = len(_CHAIN_COSTS)

    def worst(k: int) -> float:  # cut after op k-1; each stage receives the tensor before it
        first = sum(_CHAIN_COSTS[:k]) + 16 / 2**20 * edge_cost
        second = sum(_CHAIN_COSTS[k:]) + sizes[k - 1] / 2**20 * edge_cost
        return max(first, second)

    balanced = min(range(1, n), key=lambda k: max(sum(_CHAIN_COSTS[:k]), sum(_CHAIN_COSTS[k:])))
    assert balanced != min(range(1, n), key=worst)  # the edges change the answer
    for cost in (0.0, edge_cost):
        best = min(range(1, n), key=worst) if cost else balanced
        module = _partition_text(_chain(), f"vision-partition{{stages=2 target=gpu edge_cost={cost}}}")
        first = next(iter(split_stages(module)[0].module.ops))
        assert isinstance(first, func.FuncOp)
        assert len(compute_ops(first)) == best, cost


def test_min_max_partition_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        n, stages = int(rng.integers(3, 8)), int(rng.integers(2, 4))
        if stages > n:
            continue
        costs = [list(rng.uniform(0, 10, n)) for _ in range(stages)]
        received = [[float(rng.uniform(0, 3)) if j > i else 0.0 for j in range(n + 1)] for i in range(n + 1)]

        def worst(starts: Sequence[int], costs=costs, received=received, n=n) -> float:
            ends = [*starts[1:], n]
            return max(sum(costs[s][starts[s]:ends[s]]) + received[starts[s]][ends[s]] for s in range(len(starts)))

        brute = min(worst([0, *c]) for c in itertools.combinations(range(1, n), stages - 1))
        assert worst(min_max_partition(costs, received, stages)) == pytest.approx(brute)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "message"), [
    ("vision-partition{cuts=nope}", "no op comes from ONNX node 'nope'"),
    ("vision-partition{cuts=m5}", "stage 1 would hold no compute op: cut .m5. comes after the last"),
    ("vision-partition{cuts=m1,m1}", "would hold no compute op"),
    ("vision-partition{cuts=m1 stages=2}", "exactly one of"),
    ("vision-partition", "exactly one of"),
    ("vision-partition{cuts=m1 devices=gpu}", "devices names 1 devices for 2 stages"),
    ("vision-partition{stages=2 target=cpu}", "no cost for device 'cpu'"),
    ("vision-partition{by_placement=true}", "run vision-placement first"),
])
def test_errors(spec: str, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        _partition_text(_chain(), spec)
