"""Placement: tags from the user list, no-GPU-lowering ops and the tiny-op cost rule; explicit
copies; mixed OpenCL + CPU plans give the same numbers as onnxruntime."""

from __future__ import annotations

import numpy as np
from conftest import run_onnxruntime
from detection_models import MODELS, image

import visc
from visc.compiler import GRAPH_PIPELINE, run_passes
from visc.frontend import import_model
from visc.passes.placement.placement import compute_ops, entry, placement_of
from visc.passes.placement.report import placements


def _placed(model, fallback, tiny: int = 4096):
    imported = import_model(model)
    run_passes(imported.module, [*GRAPH_PIPELINE, f"vision-placement{{fallback={','.join(fallback)} tiny={tiny}}}",
                                 "vision-insert-copies"], imported.weights)
    return imported.module


def test_user_list_tags_only_those_ops() -> None:
    module = _placed(MODELS["ssd"](), ["NonMaxSuppression", "TopK"], tiny=0)
    ops = compute_ops(entry(module))
    cpu = {op.attributes["onnx_op"].data for op in ops if placement_of(op) == "cpu"}
    assert cpu == {"NonMaxSuppression", "TopK"}
    assert all(placement_of(op) in ("cpu", "gpu") for op in ops)
    assert int(entry(module).attributes["vision.num_copies"].value.data) > 0


def test_cost_rule_moves_tiny_ops_between_cpu_ops() -> None:
    rows_off = placements(import_model(MODELS["ssd"]()), "opencl", ["NonMaxSuppression", "TopK"])
    listed = ["NonMaxSuppression", "TopK", "Conv"]
    without = _placed(MODELS["ssd"](), listed, tiny=0)
    with_rule = _placed(MODELS["ssd"](), listed, tiny=10**9)
    cpu_without = sum(placement_of(op) == "cpu" for op in compute_ops(entry(without)))
    cpu_with = sum(placement_of(op) == "cpu" for op in compute_ops(entry(with_rule)))
    # with every conv on the CPU, the small ops between them follow and copies drop
    assert cpu_with > cpu_without
    copies = [int(entry(m).attributes["vision.num_copies"].value.data) for m in (without, with_rule)]
    assert copies[1] < copies[0]
    assert any(d == "gpu" for _, _, d in rows_off)


def test_detectors_with_cpu_fallback_match_onnxruntime() -> None:
    for name in sorted(MODELS):
        model, x = MODELS[name](), image()
        want_boxes, want_scores, want_sel = run_onnxruntime(model, {"image": x})
        compiled = visc.compile(model, fallback=["NonMaxSuppression", "TopK"])
        boxes, scores, sel = compiled.run({"image": x})
        ex = compiled.executor()
        assert any(ex.on_cpu) and not all(ex.on_cpu)
        np.testing.assert_allclose(boxes, want_boxes, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(sel, want_sel)
        profile = compiled.profile({"image": x})
        assert [k for k, _ in profile] == [launch.kernel for launch in compiled.plan.launches]
        assert all(t > 0 for _, t in profile) and any(k.startswith("cpu_nms") for k, _ in profile)
        # copies only where placement changes: the pass's count plus the image upload
        imported = import_model(model)
        run_passes(imported.module, [*GRAPH_PIPELINE, "vision-placement{fallback=NonMaxSuppression,TopK}",
                                     "vision-insert-copies"], imported.weights)
        assert ex.copies == int(entry(imported.module).attributes["vision.num_copies"].value.data) + 1


def test_show_placement_cli(tmp_path, capsys) -> None:
    import onnx

    from visc.tools.visc_cli import main

    path = str(tmp_path / "yolo.onnx")
    onnx.save(MODELS["yolo"](), path)
    assert main(["import", path, "--show-placement", "--fallback", "NonMaxSuppression"]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[1:] == ["NonMaxSuppression", "cpu"] for line in out.splitlines())
    assert " gpu" in out
