"""vision-concat-in-place: producers write their slab of a concat's output. Checked end to
end against onnxruntime on OpenCL and the CPU backend, through the arena interpreter, and
for the cases it must leave alone (batch > 1, unaligned slabs, placed modules)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper

import visc
from visc.compiler import compile_model, default_pipeline
from visc.dialects.vision import ConcatOp, SubBufferOp
from visc.errors import CompileError


def _fire(batch: int = 1, squeeze: int = 8, expand: int = 32, size: int = 6, seed: int = 0):
    """SqueezeNet's fire module: a 1x1 squeeze feeding a 1x1 and a 3x3 expand, concatenated,
    then a conv reading the concat (so the concat output is an intermediate)."""
    rng = np.random.default_rng(seed)
    w = {
        "ws": rng.standard_normal((squeeze, 4, 1, 1)).astype(np.float32) * 0.5,
        "w1": rng.standard_normal((expand, squeeze, 1, 1)).astype(np.float32) * 0.5,
        "w3": rng.standard_normal((expand, squeeze, 3, 3)).astype(np.float32) * 0.2,
        "wo": rng.standard_normal((4, 2 * expand, 1, 1)).astype(np.float32) * 0.2,
    }
    nodes = [
        helper.make_node("Conv", ["x", "ws"], ["s"], name="squeeze"),
        helper.make_node("Relu", ["s"], ["sr"], name="squeeze_relu"),
        helper.make_node("Conv", ["sr", "w1"], ["e1"], name="expand1x1"),
        helper.make_node("Relu", ["e1"], ["e1r"], name="expand1x1_relu"),
        helper.make_node("Conv", ["sr", "w3"], ["e3"], name="expand3x3", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["e3"], ["e3r"], name="expand3x3_relu"),
        helper.make_node("Concat", ["e1r", "e3r"], ["cat"], name="concat", axis=1),
        helper.make_node("Conv", ["cat", "wo"], ["y"], name="out"),
    ]
    model = make_model(nodes, {"x": ((batch, 4, size, size), np.float32)}, ["y"], w)
    x = rng.standard_normal((batch, 4, size, size)).astype(np.float32)
    return model, x


def _concat_launches(compiled: visc.CompiledModel) -> list[str]:
    return [la.kernel for la in compiled.plan.launches if "concat" in la.kernel]


def _slabs(compiled: visc.CompiledModel) -> list[int]:
    return [b.offset or 0 for b in compiled.plan.buffers if b.kind == "arena" and b.base is not None]


def _check(compiled: visc.CompiledModel, model, x: np.ndarray) -> None:
    (got,) = compiled.run({"x": x})
    (want,) = run_onnxruntime(model, {"x": x})
    scale = float(np.abs(want).max())
    assert scale > 0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("target", ["opencl", "cpu"])
def test_fire_module_writes_in_place(target: str) -> None:
    model, x = _fire()
    compiled = visc.compile(model, target=target, records=False)
    assert _concat_launches(compiled) == []  # nothing left to copy
    assert len(_slabs(compiled)) == 2
    _check(compiled, model, x)


def test_batch_two_keeps_the_copy() -> None:
    """With a batch dim > 1 a slab is not contiguous: the concat copies as before."""
    model, x = _fire(batch=2)
    compiled = visc.compile(model, target="cpu", records=False)
    assert len(_concat_launches(compiled)) == 2 and not _slabs(compiled)
    _check(compiled, model, x)


def test_unaligned_slab_is_copied() -> None:
    """3 channels of 5x5 floats put the second slab at byte 300, which is not 128-byte
    aligned: the first input is placed, the second copied."""
    model, x = _fire(expand=3, size=5)
    compiled = visc.compile(model, target="opencl", records=False)
    assert _slabs(compiled) and len(_concat_launches(compiled)) == 1
    _check(compiled, model, x)


def test_opencl_rejects_a_slab_the_device_cannot_address() -> None:
    """A plan compiled with a smaller slab alignment than the device's sub-buffers need
    fails with a clear error instead of running on copies that would not alias."""
    model, _ = _fire(expand=3, size=5)
    pipeline = default_pipeline("opencl", "cpu", slab_align=4)
    with pytest.raises(CompileError, match="not .*-byte aligned"):
        compile_model(model, target="opencl", pipeline=pipeline, records=False).run(
            {"x": np.zeros((1, 4, 5, 5), np.float32)})


def test_slabs_through_the_arena_interpreter() -> None:
    """The bufferized module with slabs, run by the arena interpreter, matches the tensor
    reference, and the plan has no two live buffers on the same bytes."""
    from visc.buffer_interpreter import run_bufferized
    from visc.compiler import run_passes
    from visc.frontend.onnx import import_model
    from visc.passes.graph.memory_plan import plan_conflicts
    from visc.reference import evaluate

    model, x = _fire()
    imported = import_model(model)
    want = evaluate(imported.module, imported.weights, [x])
    run_passes(imported.module, ["vision-bufferize", "vision-concat-in-place"], imported.weights)
    main = next(op for op in imported.module.ops if getattr(op, "sym_name", None) is not None)
    assert [op for op in main.walk() if isinstance(op, SubBufferOp)]
    assert not [op for op in main.walk() if isinstance(op, ConcatOp)]
    assert plan_conflicts(main) == []
    (got,) = run_bufferized(imported.module, imported.weights, [x])
    np.testing.assert_allclose(got, want[0], rtol=1e-5, atol=1e-5)


def test_placed_modules_are_left_alone() -> None:
    """A mixed CPU/GPU plan tracks each buffer's bytes per side; slabs would hide writes."""
    from visc.compiler import run_passes
    from visc.frontend.onnx import import_model

    model, _ = _fire()
    imported = import_model(model)
    run_passes(imported.module, ["vision-placement{target=opencl fallback=Concat}", "vision-insert-copies",
                                 "vision-bufferize", "vision-concat-in-place"], imported.weights)
    assert not [op for op in imported.module.walk() if isinstance(op, SubBufferOp)]


def test_bad_alignment_option() -> None:
    from visc.compiler import run_passes
    from visc.frontend.onnx import import_model

    imported = import_model(_fire()[0])
    with pytest.raises(CompileError, match="align must be positive"):
        run_passes(imported.module, ["vision-bufferize", "vision-concat-in-place{align=0}"], imported.weights)
