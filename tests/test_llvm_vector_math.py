"""The CPU backend's inline f32 exp (visc/backends/llvm_vector_math.py): accuracy against
float64 over the whole finite range, the edges (overflow, underflow, NaN, infinities), and
the vector forms it takes in a conv's SiLU epilogue and an elementwise loop."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper

import visc


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    want32 = want.astype(np.float32)
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want32))


def test_exp_within_two_ulps_and_edges(rng) -> None:
    edges = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 88.72, 88.73, 89.0, -87.3, -87.4,
                      -100.0, -103.9, -104.0, -1e4, 1e4], np.float32)
    body = np.concatenate([rng.uniform(-103.0, 88.7, 4000), rng.uniform(-1.0, 1.0, 1000)]).astype(np.float32)
    x = np.concatenate([edges, body])[None]
    model = make_model([helper.make_node("Exp", ["x"], ["y"])], {"x": (x.shape, np.float32)}, ["y"])
    (y,) = visc.compile(model, target="cpu", cache=False).run([x])
    with np.errstate(over="ignore"):
        want = np.exp(x.astype(np.float64))
    normal = np.isfinite(want) & (want >= np.finfo(np.float32).tiny) & (want <= np.finfo(np.float32).max)
    assert _ulps(y[normal], want[normal]).max() <= 2.0
    sub = (want > 0) & (want < np.finfo(np.float32).tiny)  # gradual underflow: absolute error below one subnormal step
    assert np.abs(y[sub] - want[sub]).max() <= 2 * np.finfo(np.float32).smallest_subnormal
    np.testing.assert_array_equal(y[0, :3], [np.nan, np.inf, 0.0])
    assert np.all(y[0, [8, 9, 16]] == np.inf) and np.all(y[0, [14, 15]] == 0.0)
    np.testing.assert_array_equal(y[0, 3:5], [1.0, 1.0])


@pytest.mark.parametrize("channels", [16, 32])
def test_silu_epilogue_matches_onnxruntime(rng, channels: int) -> None:
    """A conv whose output channels fill vectors gets the SiLU as a vector epilogue."""
    w = rng.standard_normal((channels, 8, 1, 1)).astype(np.float32)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Sigmoid", ["c"], ["s"]),
         helper.make_node("Mul", ["c", "s"], ["y"])],
        {"x": ((1, 8, 9, 11), np.float32)}, ["y"], {"w": w})
    x = (4 * rng.standard_normal((1, 8, 9, 11))).astype(np.float32)
    (y,) = visc.compile(model, target="cpu", cache=False).run([x])
    (want,) = run_onnxruntime(model, {"x": x})
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
