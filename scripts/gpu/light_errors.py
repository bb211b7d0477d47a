"""The nine light models on CUDA and on OpenCL against onnxruntime: the max relative error
of each (the acceptance number, <= 1e-4), printed as a table and saved as JSON.

    python scripts/gpu/light_errors.py [--out light_errors.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import onnxruntime as ort

import visc
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.visc_cli import print_table, random_inputs, rel_error


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="light_errors.json")
    ap.add_argument("--targets", default="cuda,opencl")
    args = ap.parse_args(argv)
    rows = []
    worst = 0.0
    for name in LIGHT_MODELS:
        onnx_model = load_light_model(name, seed=3)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(onnx_model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        row: dict[str, object] = {"model": name}
        for target in args.targets.split(","):
            model = visc.compile(onnx_model, target=target)
            inputs = random_inputs(model.plan.inputs, seed=7)
            want = sess.run(None, dict(zip(model.input_names, inputs, strict=True)))
            err = max(rel_error(g, w) for g, w in zip(model.run(inputs), want, strict=True))
            row[f"{target}_rel_err"] = err
            row[f"{target}_device"] = model.device_name
            worst = max(worst, err)
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{k}={v:.2e}" for k, v in row.items() if k.endswith("err")), flush=True)
    print(f"devices: {', '.join(sorted({str(v) for r in rows for k, v in r.items() if k.endswith('device')}))}")
    print_table(rows, [("model", "model", "")] + [(f"{t}_rel_err", f"{t} max rel err", ".2e")
                                                  for t in args.targets.split(",")])
    with open(args.out, "w") as f:
        json.dump({"rows": rows, "worst": worst}, f, indent=1)
    print(f"worst {worst:.2e} ({'within' if worst <= 1e-4 else 'ABOVE'} 1e-4); saved {args.out}")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
