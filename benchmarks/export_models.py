"""Export the torchvision models visc's detection and modern-CNN tests use, weights stripped.

    python benchmarks/export_models.py [--out tests/models] [--only NAME ...]
    python benchmarks/export_models.py --set cnns      # the CPU benchmark's CNNs -> benchmarks/models

Needs PyTorch and torchvision (CI has neither: the tests read the stripped files in
tests/models and refill their weights from a seed, `visc.tools.stripped_models`). Each model
is built with ``weights=None`` after ``torch.manual_seed(0)``, exported with the TorchScript
exporter at opset 17, checked by onnxruntime against PyTorch on a seeded input, stripped and
saved. A detector's outputs are named after its result dict's keys, in the dict's order (the
exporter flattens the dict so: Faster R-CNN's is boxes, labels, scores), then put in the order
boxes, scores, labels. Detectors keep every box: score thresholds are 0 so
``detections_per_img`` boxes come out of NMS (tests/test_detectors.py refills each with a
scheme and seeds whose scores do not tie). Prints a table and writes ``export.json`` beside
the files.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from visc.tools.stripped_models import refill_weights, strip_weights  # noqa: E402


def _detectors() -> dict[str, tuple[Callable[[], Any], tuple[int, ...]]]:
    from torchvision.models import detection as d

    small = {"weights": None, "weights_backbone": None, "min_size": 320, "max_size": 320}
    return {
        "ssdlite320_mobilenet_v3_large": (lambda: d.ssdlite320_mobilenet_v3_large(
            weights=None, weights_backbone=None, score_thresh=0.0), (3, 320, 320)),
        "retinanet_resnet50_fpn": (lambda: d.retinanet_resnet50_fpn(**small, score_thresh=0.0), (3, 320, 320)),
        "fcos_resnet50_fpn": (lambda: d.fcos_resnet50_fpn(**small, score_thresh=0.0), (3, 320, 320)),
        "fasterrcnn_mobilenet_v3_large_320_fpn": (lambda: d.fasterrcnn_mobilenet_v3_large_320_fpn(
            weights=None, weights_backbone=None, box_score_thresh=0.0), (3, 320, 320)),
    }


def _classifiers() -> dict[str, tuple[Callable[[], Any], tuple[int, ...]]]:
    from torchvision import models

    return {"convnext_tiny": (lambda: models.convnext_tiny(weights=None), (1, 3, 224, 224))}


def _benchmark_cnns() -> dict[str, tuple[Callable[[], Any], tuple[int, ...]]]:
    """The torchvision CNNs `benchmarks/cpu_backend.py --torchvision` times against onnxruntime:
    depthwise, squeeze-and-excitation, grouped and channel-shuffle blocks the light models lack."""
    from torchvision import models

    names = ("efficientnet_b0", "efficientnet_v2_s", "mobilenet_v2", "mobilenet_v3_large", "mnasnet1_0",
             "squeezenet1_1", "shufflenet_v2_x1_0", "regnet_y_400mf", "resnet18")
    return {n: (lambda n=n: getattr(models, n)(weights=None), (1, 3, 224, 224)) for n in names}


# every detector file's outputs, in this order (tests/test_detectors.py reads them so)
DETECTION_OUTPUTS = ("boxes", "scores", "labels")


def _order_outputs(model: onnx.ModelProto, order: tuple[str, ...]) -> None:
    """Put ``model``'s graph outputs in ``order`` (every name must be there)."""
    by_name = {o.name: o for o in model.graph.output}
    if sorted(by_name) != sorted(order):
        raise ValueError(f"outputs {sorted(by_name)} are not {list(order)}")
    ordered = [onnx.ValueInfoProto() for _ in order]
    for new, name in zip(ordered, order, strict=True):
        new.CopyFrom(by_name[name])
    del model.graph.output[:]
    model.graph.output.extend(ordered)


def export_one(name: str, build: Callable[[], Any], shape: tuple[int, ...], detector: bool) -> tuple[bytes, dict]:
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    model = build().eval()
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    args = ([x],) if detector else (x,)
    with torch.no_grad():
        result = model(*args)
    # the exporter names the flattened outputs in order: a detector's dict flattens in its key
    # order, which differs between detectors (Faster R-CNN: boxes, labels, scores)
    names = list(result[0]) if detector else ["logits"]
    buf = io.BytesIO()
    start = time.perf_counter()
    torch.onnx.export(model, args, buf, opset_version=17, input_names=["image"], output_names=names,
                      dynamo=False, do_constant_folding=True)
    export_s = time.perf_counter() - start
    full = onnx.load_from_string(buf.getvalue())
    if detector:
        _order_outputs(full, DETECTION_OUTPUTS)
    outputs = [o.name for o in full.graph.output]
    want = [result[0][k].numpy() for k in outputs] if detector else [result.numpy()]
    sess = ort.InferenceSession(full.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})
    same_count = all(g.shape == w.shape for g, w in zip(got, want, strict=True))
    err = max(float(np.abs(g.astype(np.float64) - w).max()) if g.size and g.shape == w.shape else 0.0
              for g, w in zip(got, want, strict=True))
    stripped = strip_weights(full)
    refilled = refill_weights(stripped, seed=0)
    sess = ort.InferenceSession(refilled.SerializeToString(), providers=["CPUExecutionProvider"])
    refill_out = sess.run(None, {"image": x.numpy()})
    ops = sorted({n.op_type for n in full.graph.node})
    row = {"model": name, "export_s": export_s, "nodes": len(full.graph.node), "ops": ops,
           "full_bytes": len(buf.getvalue()), "stripped_bytes": len(stripped.SerializeToString()),
           "ort_vs_torch_same_shapes": same_count, "ort_vs_torch_max_abs": err,
           "refilled_outputs": [list(o.shape) for o in refill_out]}
    if detector:
        scores = np.sort(refill_out[1])
        row["refilled_detections"] = int(refill_out[0].shape[0])
        row["refilled_min_score_gap"] = float(np.diff(scores).min()) if scores.size > 1 else None
    return stripped.SerializeToString(), row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", choices=("tests", "cnns"), default="tests",
                   help="tests: the detectors and convnext of tests/models; cnns: the CPU benchmark's CNNs")
    p.add_argument("--out", default=None, help="default: tests/models, or benchmarks/models for --set cnns")
    p.add_argument("--only", nargs="*", help="model names to export (default: all)")
    args = p.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    args.out = args.out or (os.path.join(here, "models") if args.set == "cnns" else
                            os.path.join(here, "..", "tests", "models"))
    os.makedirs(args.out, exist_ok=True)
    if args.set == "cnns":
        table = [(n, b, s, False) for n, (b, s) in _benchmark_cnns().items()]
    else:
        table = [(n, b, s, True) for n, (b, s) in _detectors().items()]
        table += [(n, b, s, False) for n, (b, s) in _classifiers().items()]
    rows = []
    for name, build, shape, detector in table:
        if args.only and name not in args.only:
            continue
        try:
            data, row = export_one(name, build, shape, detector)
        except Exception as e:  # report and go on: one exporter failure must not hide the others
            rows.append({"model": name, "error": f"{type(e).__name__}: {e}"})
            print(f"{name}: FAILED {type(e).__name__}: {e}", flush=True)
            continue
        with open(os.path.join(args.out, f"{name}.onnx"), "wb") as f:
            f.write(data)
        rows.append(row)
        print(f"{name}: {row['nodes']} nodes, {row['full_bytes'] / 2**20:.1f} MiB -> "
              f"{row['stripped_bytes'] / 2**10:.0f} KiB stripped; ort vs torch max abs {row['ort_vs_torch_max_abs']:.2e}; "
              f"refilled outputs {row['refilled_outputs']}", flush=True)
    with open(os.path.join(args.out, "export.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
