"""Every stage of the pipeline prints and parses back to the same module, and `visc-opt`
reproduces each stage from the previous stage's printed text."""

from __future__ import annotations

import subprocess
import sys

import pytest
from xdsl.parser import Parser

from visc.compiler import default_pipeline, run_passes
from visc.dialects import make_context
from visc.frontend.onnx import import_model
from visc.tools.model_zoo import load_light_model


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    imported = import_model(load_light_model("squeezenet", seed=1))
    weights_path = str(tmp_path_factory.mktemp("w") / "weights.npz")
    imported.weights.save(weights_path)
    texts = [("import", str(imported.module))]
    run_passes(imported.module, default_pipeline("opencl", "cpu"), imported.weights,
               after_pass=lambda spec, module, _secs: texts.append((spec, str(module))))
    return texts, weights_path


def test_every_stage_roundtrips(stages) -> None:
    texts, _ = stages
    ctx = make_context()
    for spec, text in texts:
        module = Parser(ctx, text).parse_module()
        module.verify()
        assert str(module) == text, f"printing after {spec} does not round-trip"


def test_visc_opt_reproduces_each_stage(stages, tmp_path) -> None:
    texts, weights_path = stages
    store = weights_path
    for (_, before), (spec, after) in zip(texts, texts[1:], strict=False):
        src = tmp_path / "in.mlir"
        src.write_text(before)
        out_weights = str(tmp_path / "w_out.npz")
        proc = subprocess.run(
            [sys.executable, "-m", "visc.tools.visc_opt", str(src), "-p", spec, "--weights", store,
             "--save-weights", out_weights],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, f"{spec}: {proc.stderr}"
        assert proc.stdout.strip() == after.strip(), f"visc-opt -p {spec} differs from the compile driver"
        store = out_weights
