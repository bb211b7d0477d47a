"""torchvision's detectors end to end: data-dependent post-processing (NonZero, TopK of a
computed k, NMS feeding Gather, Ifs) split off to a host stage after the device part, and
the detections compared with onnxruntime on the same refilled weights and input.

The graphs are tests/models/*.onnx (benchmarks/export_models.py, weights stripped; refilled
here from a seed, `visc.tools.stripped_models`). Seeds are chosen so no two kept scores tie
(ties make NMS order arbitrary): the refill scheme and seeds per model are
`host_graph_cases.REFILL`.
Detections are matched one to one (label equal, box and score within 1e-4), so two whose
scores agree to that tolerance may come in either order.

Faster R-CNN's scheme is "fan_in" (variance-preserving weights up to the heads): "recorded"
lets its MobileNet's activations vanish (every RPN objectness 0.5, every score alike, one
label) and "he" lets them grow into the hundreds (no proposal survives, and onnxruntime
fails on the empty RoI batch). Its seeds were picked among 16 weight seeds x 4 input seeds
by onnxruntime alone: RPN logits of standard deviation about 1 (no sigmoid saturates), box
scores 0.08 to 0.23 over 8 labels, consecutive scores at least 1.5e-4 apart relative (so the
matching is unambiguous), and the same detections with onnxruntime's graph optimizations off
and on a 1e-6 perturbation of the input (visc's scores then agree within 1.4e-5).
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from conftest import run_onnxruntime
from host_graph_cases import DETECTORS, detector
from onnx import TensorProto
from test_pipeline import needs_cuda, needs_opencl

import visc
from visc.runtime.pipeline import Pipeline

MODELS_DIR = os.path.join(os.path.dirname(__file__), "models")
RTOL = 1e-4


def test_detector_files_output_boxes_scores_labels() -> None:
    """Every file's outputs are boxes and scores (float) then labels (int64), as the tests
    and benchmarks/detection.py read them (benchmarks/export_models.py orders them so)."""
    want = [("boxes", TensorProto.FLOAT), ("scores", TensorProto.FLOAT), ("labels", TensorProto.INT64)]
    for name in DETECTORS:
        model = onnx.load(os.path.join(MODELS_DIR, f"{name}.onnx"))
        assert [(o.name, o.type.tensor_type.elem_type) for o in model.graph.output] == want, name


def check_detections(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """Same count; each of onnxruntime's detections matched one to one with one of visc's of
    equal label, box within ``RTOL`` of the image scale and score within ``RTOL`` relative:
    detections whose scores agree to that tolerance may come in either order."""
    (gb, gs, gl), (wb, ws, wl) = got, want
    assert gb.shape == wb.shape and gs.shape == ws.shape and gl.shape == wl.shape, "different numbers of detections"
    assert len(np.unique(ws)) == len(ws), "onnxruntime's scores tie: choose another seed"
    scale = max(float(np.abs(wb).max()), 1e-30)
    free = np.ones(len(gs), dtype=bool)
    for k in np.argsort(-ws, kind="stable"):
        close = (free & (gl == wl[k]) & (np.abs(gs - ws[k]) <= RTOL * abs(float(ws[k])))
                 & (np.abs(gb - wb[k]).max(axis=1) <= RTOL * scale))
        hits = np.flatnonzero(close)
        assert hits.size, f"onnxruntime's detection {k} (label {wl[k]}, score {ws[k]}, box {wb[k]}) has no match"
        free[hits[0]] = False


@pytest.mark.parametrize("target", ["cpu", pytest.param("opencl", marks=needs_opencl)])
@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_matches_onnxruntime(name: str, target: str) -> None:
    model, image = detector(name)
    compiled = visc.compile(model, target=target)
    assert isinstance(compiled, Pipeline) and [i.target for i in compiled.infos] == [target, "host"]
    try:
        got = compiled.run({"image": image})
    finally:
        compiled.close()
    check_detections(got, run_onnxruntime(model, {"image": image}))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_matches_onnxruntime_on_cuda(name: str) -> None:
    model, image = detector(name)
    compiled = visc.compile(model, target="cuda")
    try:
        got = compiled.run({"image": image})
    finally:
        compiled.close()
    check_detections(got, run_onnxruntime(model, {"image": image}))


@needs_opencl
def test_detector_streams_and_saves(tmp_path) -> None:
    """The split detector is a pipeline like any other: frames stream through device and
    host stages in order, and the saved file runs without the ONNX model."""
    model, _ = detector("retinanet_resnet50_fpn")
    compiled = visc.compile(model, target="opencl")
    path = str(tmp_path / "retinanet.visc")
    try:
        frames = [{"image": np.random.default_rng(k).random((3, 320, 320), dtype=np.float32)}
                  for k in (1, 2, 6)]  # input seeds whose kept scores do not tie
        streamed = list(compiled.map(frames))
        compiled.save(path)
    finally:
        compiled.close()
    loaded = visc.load(path)
    try:
        for frame, got in zip(frames, streamed, strict=True):
            want = run_onnxruntime(model, frame)
            check_detections(got, want)
            check_detections(loaded.run(frame), want)
    finally:
        loaded.close()
