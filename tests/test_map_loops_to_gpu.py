"""map-loops-to-gpu: structure of the stage-5 module, and the index mapping checked on PoCL
for many (shape, work-group size) pairs built into one program."""

from __future__ import annotations

import itertools
import math

import numpy as np
from xdsl.dialects import gpu
from xdsl.parser import Parser

from visc.backends.opencl import emit_opencl
from visc.backends.plan_extract import extract_plan
from visc.dialects import make_context
from visc.passes.gpu.map_loops_to_gpu import MapLoopsToGpuPass
from visc.runtime.opencl import OpenCLExecutor


def _parallel(ubs: tuple[int, ...], body: str, name: str, wg: int) -> str:
    n = len(ubs)
    ivs = ", ".join(f"%i{d}: index" for d in range(n))
    operands = ", ".join(["%c0"] * n + [f"%c{u}" for u in ubs] + ["%c1"] * n)
    return (f'"scf.parallel"({operands}) <{{operandSegmentSizes = array<i32: {n}, {n}, {n}, 0>}}> ({{\n'
            f"^bb0({ivs}):\n{body}\n  scf.reduce\n}}) "
            f'{{kernel_name = "{name}", workgroup_size = {wg} : i64}} : ({", ".join(["index"] * 3 * n)}) -> ()')


def _index_code(ubs: tuple[int, ...], out: str) -> str:
    """out[i0, i1, ...] = i0 * 1000 + i1 * 100 + ... as i32: checks every index, not just
    the flat order."""
    n = len(ubs)
    lines, acc = [], None
    for d in range(n):
        weight = 10 ** (n - 1 - d) * (10 if n < 4 else 1)
        lines.append(f"  %w{d} = arith.constant {weight} : index")
        lines.append(f"  %p{d} = arith.muli %i{d}, %w{d} : index")
        if acc is None:
            acc = f"%p{d}"
        else:
            lines.append(f"  %s{d} = arith.addi {acc}, %p{d} : index")
            acc = f"%s{d}"
    lines.append(f"  %v = arith.index_cast {acc} : index to i32")
    idx = ", ".join(f"%i{d}" for d in range(n))
    lines.append(f"  memref.store %v, %{out}[{idx}] : memref<{'x'.join(map(str, ubs))}xi32>")
    return "\n".join(lines)


CASES = [((7,), 4), ((8,), 8), ((3, 5), 16), ((1, 6, 1), 4), ((2, 3, 4), 5), ((2, 1, 3, 2), 64),
         ((9, 9), 1), ((1,), 32)]


def _stage4(cases: list[tuple[tuple[int, ...], int]]) -> str:
    outs = ", ".join(f"%o{k}: memref<{'x'.join(map(str, s))}xi32>" for k, (s, _) in enumerate(cases))
    consts = sorted({u for s, _ in cases for u in s} | {0, 1})
    body = "\n".join(f"  %c{c} = arith.constant {c} : index" for c in consts)
    loops = "\n".join(_parallel(s, _index_code(s, f"o{k}"), f"ids{k}", wg) for k, (s, wg) in enumerate(cases))
    return (f"func.func @main({outs}) attributes {{vision.num_inputs = 0 : i64}} {{\n{body}\n{loops}\n"
            "  func.return\n}\n")


def _lower(text: str):
    ctx = make_context()
    module = Parser(ctx, text).parse_module()
    MapLoopsToGpuPass().apply(ctx, module)
    module.verify()
    return module


def test_every_index_of_every_space_is_visited_once() -> None:
    module = _lower(_stage4(CASES))
    plan = extract_plan(module)
    for launch, (shape, wg) in zip(plan.launches, CASES, strict=True):
        assert launch.block == (wg, 1, 1)
        assert launch.grid == (math.ceil(math.prod(shape) / wg), 1, 1)
    outs = OpenCLExecutor(plan, emit_opencl(module), {}).run([])
    for out, (shape, _) in zip(outs, CASES, strict=True):
        n = len(shape)
        weights = [10 ** (n - 1 - d) * (10 if n < 4 else 1) for d in range(n)]
        want = np.zeros(shape, np.int32)
        for idx in itertools.product(*map(range, shape)):
            want[idx] = sum(i * w for i, w in zip(idx, weights, strict=True))
        np.testing.assert_array_equal(out, want)


def test_structure_dedup_and_arguments() -> None:
    cases = [((4, 4), 8), ((4, 4), 8), ((4, 4), 4)]
    module = _lower(_stage4(cases))
    assert "gpu.container_module" in module.attributes
    (kernels,) = [op for op in module.ops if isinstance(op, gpu.ModuleOp)]
    funcs = [op for op in kernels.body.block.ops if isinstance(op, gpu.FuncOp)]
    # the first two differ only in their output buffer: one kernel
    assert [f.sym_name.data for f in funcs] == ["ids0", "ids2"]
    assert all(f.kernel is not None for f in funcs)
    assert [tuple(f.known_block_size.get_values()) for f in funcs] == [(8, 1, 1), (4, 1, 1)]
    plan = extract_plan(module)
    assert [launch.kernel for launch in plan.launches] == ["ids0", "ids0", "ids2"]
    assert [launch.args for launch in plan.launches] == [[0], [1], [2]]
    # exact multiples need no bounds check
    assert "cmpi" not in str(funcs[0])


def test_pass_is_idempotent_on_stage5() -> None:
    module = _lower(_stage4([((5,), 4)]))
    before = str(module)
    MapLoopsToGpuPass().apply(make_context(), module)
    assert str(module) == before
