"""numpy semantics of the indexed reads and writes (gather_elements, gather_nd, scatter_nd),
registered in `visc.reference`'s op table. Negative indices wrap; an index outside its dim
raises IndexError, as the kernels' status words report it at run time."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from visc.dialects import vision
from visc.dialects.vision import get_int, get_str


def _wrapped(idx: np.ndarray, sizes: Sequence[int] | int) -> np.ndarray:
    """Indices with negatives wrapped, checked against ``sizes`` (one per last-axis entry, or
    one for all)."""
    idx = idx.astype(np.int64)
    n = np.asarray(sizes, dtype=np.int64)
    if idx.size and (np.any(idx < -n) or np.any(idx >= n)):
        raise IndexError(f"index out of range for dims of size {n.tolist()}")
    return np.where(idx < 0, idx + n, idx)


def _gather_elements(op: vision.VisionOp, args: Sequence[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    data, idx = args
    axis = get_int(op, "axis")
    return np.take_along_axis(data, _wrapped(idx, data.shape[axis]), axis=axis)


def _gather_nd(op: vision.VisionOp, args: Sequence[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    data, idx = args
    b, k = get_int(op, "batch_dims", 0), idx.shape[-1]
    idx = _wrapped(idx, data.shape[b:b + k])
    batch = int(np.prod(data.shape[:b], dtype=np.int64))
    flat_data = data.reshape((batch,) + data.shape[b:])
    flat_idx = idx.reshape(batch, -1, k)
    picked = np.stack([flat_data[i][tuple(flat_idx[i].T)] for i in range(batch)])
    return picked.reshape(idx.shape[:-1] + data.shape[b + k:])


_COMBINE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "none": lambda old, new: new, "add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
}


def _scatter_nd(op: vision.VisionOp, args: Sequence[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    data, idx, updates = args
    k = idx.shape[-1]
    idx = _wrapped(idx, data.shape[:k]).reshape(-1, k)
    out = data.copy()
    combine = _COMBINE[get_str(op, "reduction", "none")]
    slices = updates.reshape((len(idx),) + data.shape[k:])
    for tup, upd in zip(idx, slices, strict=True):  # in order: a later tuple sees earlier writes
        at = tuple(int(v) for v in tup)
        out[at] = combine(out[at], upd)
    return out


RULES: dict[type[vision.VisionOp], Callable[..., np.ndarray | list[np.ndarray]]] = {
    vision.GatherElementsOp: _gather_elements,
    vision.GatherNDOp: _gather_nd,
    vision.ScatterNDOp: _scatter_nd,
}

__all__ = ["RULES"]
