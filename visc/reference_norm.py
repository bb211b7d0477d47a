"""numpy semantics of the row normalizations (layer_norm, group_norm), registered in
`visc.reference`'s op table.

Statistics follow the kernels: float32 for float16 and float32 data (float64 for float64), the
mean first, then the biased variance as the mean of squared deviations (two passes), and
y = (x - mean) * (1 / sqrt(var + epsilon)) * scale + bias.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from visc.dialects import vision
from visc.dialects.vision import get_float, get_int, get_ints


def stat_dtype(dt: np.dtype) -> np.dtype:
    """The type row statistics are computed in."""
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _moments(x: np.ndarray, axes: tuple[int, ...], epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 1 / sqrt(var + epsilon) over `axes`, keeping them as 1."""
    mean = x.mean(axis=axes, keepdims=True, dtype=x.dtype)
    dev = x - mean
    var = (dev * dev).mean(axis=axes, keepdims=True, dtype=x.dtype)
    return mean, x.dtype.type(1) / np.sqrt(var + x.dtype.type(epsilon))


def _layer_norm(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> list[np.ndarray]:
    x = args[0]
    work = stat_dtype(x.dtype)
    xs = x.astype(work)
    mean, inv = _moments(xs, get_ints(op, "axes"), get_float(op, "epsilon", 1e-5))
    y = (xs - mean) * inv * args[1].astype(work)
    if len(args) > 2:
        y = y + args[2].astype(work)
    return [y.astype(x.dtype), mean, inv][: len(op.dests)]


def _group_norm(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x, scale, bias = args
    work = stat_dtype(x.dtype)
    rows = x.astype(work).reshape(x.shape[0], get_int(op, "groups"), -1)
    mean, inv = _moments(rows, (2,), get_float(op, "epsilon", 1e-5))
    channel = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = ((rows - mean) * inv).reshape(x.shape) * scale.astype(work).reshape(channel) + bias.astype(work).reshape(channel)
    return y.astype(x.dtype)


RULES: dict[type[vision.VisionOp], Callable[..., np.ndarray | list[np.ndarray]]] = {
    vision.LayerNormOp: _layer_norm,
    vision.GroupNormOp: _group_norm,
}

__all__ = ["RULES", "stat_dtype"]
