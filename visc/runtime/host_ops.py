"""Vectorized numpy kernels of the ONNX ops that `onnx.reference` runs slowly (Python loops
over boxes, indices or elements: NonMaxSuppression, GatherND, RoiAlign, ScatterElements; full
sorts: TopK; extra copies: Gather, NonZero, Expand) or that stall on a loaded machine (Gemm,
MatMul: OpenBLAS's spinning threads), for `visc.runtime.host_graph.HostGraph`.

Each kernel has the ONNX semantics onnxruntime implements (tie orders, float32 arithmetic of
NonMaxSuppression's IoU, RoiAlign's sampling grid), so the host part of a model gives
onnxruntime's outputs. Invalid data raises `ValueError`/`IndexError` with the reason; the
graph executor adds the node's name and op type. Imports numpy and the standard library.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# ---------------------------------------------------------------------------------- TopK


def top_k(x: np.ndarray, k: int, axis: int = -1, largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The k largest (or smallest) values along ``axis`` and their int64 indices, sorted, equal
    values by lower index first (the ONNX order). A full stable sort only when k is a large
    part of the axis; otherwise a partition finds the k-th value and only the k are sorted."""
    axis = _axis(axis, x.ndim)
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise ValueError(f"k={k} is outside 0..{n} (the size of axis {axis} of the input {list(x.shape)})")
    last = axis == x.ndim - 1
    moved = x if last else np.moveaxis(x, axis, -1)
    rows = moved.reshape(-1, n)
    if k == 0 or rows.shape[0] == 0:
        idx = np.zeros((rows.shape[0], k), dtype=np.int64)
    elif n <= 2048 or 4 * k >= n or (x.dtype.kind == "f" and np.isnan(rows).any()):
        idx = _stable_order(rows, largest)[:, :k]
    elif n >= 1 << 16 and 16 * k <= n and rows.shape[0] <= 8:
        idx = np.stack([_sampled_order(row, k, largest) for row in rows])
    else:
        idx = _partial_order(rows, k, largest)
    values = np.take_along_axis(rows, idx, axis=-1).reshape(*moved.shape[:-1], k)
    idx = idx.reshape(*moved.shape[:-1], k)
    return (values, idx) if last else (np.moveaxis(values, -1, axis), np.moveaxis(idx, -1, axis))


def _stable_order(rows: np.ndarray, largest: bool) -> np.ndarray:
    """Per row, the positions in ascending order (descending with ``largest``), equal values by
    lower position first. Descending: sort the reversed row stably and reverse the result, so
    no negation (which overflows integers) is needed."""
    if not largest:
        return np.argsort(rows, axis=-1, kind="stable")
    n = rows.shape[-1]
    return (n - 1 - np.argsort(rows[:, ::-1], axis=-1, kind="stable"))[:, ::-1]


def _partial_order(rows: np.ndarray, k: int, largest: bool) -> np.ndarray:
    """`_stable_order(rows)[:, :k]` without sorting whole rows: everything strictly beyond the
    k-th value, then the lowest-positioned values equal to it, then a stable sort of those k."""
    n = rows.shape[-1]
    kth = np.partition(rows, n - k if largest else k - 1, axis=-1)[:, n - k if largest else k - 1, None]
    beyond = rows > kth if largest else rows < kth
    equal = rows == kth
    need = k - beyond.sum(axis=-1, keepdims=True)
    take = beyond | (equal & (np.cumsum(equal, axis=-1) <= need))
    idx = np.nonzero(take)[1].reshape(rows.shape[0], k)  # row-major: each row's k, by position
    order = _stable_order(np.take_along_axis(rows, idx, axis=-1), largest)
    return np.take_along_axis(idx, order, axis=-1)


def _sampled_order(row: np.ndarray, k: int, largest: bool) -> np.ndarray:
    """`_partial_order` of one long row with a small k: a threshold from a strided sample that
    about 1.5 k + a margin of values pass; if at least k pass, the top k are among them (every
    value equal to the k-th passes too, in index order), else the whole row is used."""
    n = row.size
    step = max(1, n // 8192)
    sample = row[::step]
    rank = min(sample.size - 1, int(1.5 * k / step) + 32)
    if largest:
        cut = np.partition(sample, sample.size - 1 - rank)[sample.size - 1 - rank]
        passed = np.flatnonzero(row >= cut)
    else:
        cut = np.partition(sample, rank)[rank]
        passed = np.flatnonzero(row <= cut)
    if passed.size < k:
        return _partial_order(row[None], k, largest)[0]
    if passed.size <= 4 * k:
        return passed[_stable_order(row[passed][None], largest)[0, :k]]
    return passed[_partial_order(row[passed][None], k, largest)[0]]


def _axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a tensor of rank {ndim}")
    return axis % ndim


# ------------------------------------------------------------------------- Gather, GatherND


def _check_indices(indices: np.ndarray, size: int, what: str) -> bool:
    """Raise `IndexError` naming the first index outside -size..size-1; whether some index is
    negative."""
    if indices.size == 0:
        return False
    lo, hi = indices.min(), indices.max()
    if lo < -size or hi >= size:
        bad = lo if lo < -size else hi
        where = tuple(int(i) for i in np.argwhere(indices == bad)[0])
        raise IndexError(f"index {int(bad)} at {list(where)} of the indices is out of range for {what} of size "
                         f"{size} (valid: {-size}..{size - 1})")
    return bool(lo < 0)


def gather(data: np.ndarray, indices: np.ndarray, axis: int = 0) -> np.ndarray:
    """ONNX Gather: ``np.take``, whose own bounds check (negative indices count from the end)
    costs no extra pass; a bad index is reported with its position."""
    axis = _axis(axis, data.ndim)
    return _take(data, indices, axis, f"axis {axis} of the data {list(data.shape)}")


def _take(data: np.ndarray, indices: np.ndarray, axis: int, what: str) -> np.ndarray:
    try:
        return np.take(data, indices, axis=axis)
    except IndexError:
        _check_indices(indices, data.shape[axis], what)
        raise


def gather_nd(data: np.ndarray, indices: np.ndarray, batch_dims: int = 0) -> np.ndarray:
    """ONNX GatherND by numpy indexing: the leading ``batch_dims`` become one batch axis, the
    last axis of ``indices`` holds coordinates into the next ``m`` data axes (one coordinate:
    a ``np.take``; several: advanced indexing after a bounds check)."""
    b = int(batch_dims)
    m = indices.shape[-1] if indices.ndim else 0
    if indices.ndim < 1 or b < 0 or b >= min(data.ndim, indices.ndim) or m < 1 or b + m > data.ndim:
        raise ValueError(f"indices {list(indices.shape)} with batch_dims={b} do not index data {list(data.shape)}")
    if data.shape[:b] != indices.shape[:b]:
        raise ValueError(f"the batch dims of data {list(data.shape)} and indices {list(indices.shape)} differ")
    out_shape = (*indices.shape[:-1], *data.shape[b + m:])
    what = f"axis {b} of the data {list(data.shape)}"
    if b == 0 and m == 1:
        return _take(data, indices[..., 0], 0, what)
    batch = int(np.prod(data.shape[:b], dtype=np.int64))
    flat = data.reshape(batch, *data.shape[b:])
    coords = indices.reshape(batch, -1, m)
    if batch == 1 and m == 1:
        return _take(flat[0], coords[0, :, 0], 0, what).reshape(out_shape)
    for j in range(m):
        _check_indices(coords[..., j], flat.shape[1 + j], f"axis {b + j} of the data {list(data.shape)}")
    parts = tuple(coords[..., j] for j in range(m))
    return flat[(np.arange(batch)[:, None], *parts)].reshape(out_shape)


def nonzero(x: np.ndarray) -> np.ndarray:
    """ONNX NonZero: int64 [rank, count] coordinates, without the reference's two copies."""
    if x.ndim == 0:
        return np.zeros((0, int(np.count_nonzero(x))), dtype=np.int64)
    if x.ndim == 1:
        return np.flatnonzero(x).astype(np.int64, copy=False)[None]
    return np.array(np.nonzero(x), dtype=np.int64)


def expand(data: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """ONNX Expand (bidirectional broadcast) as one copy of a broadcast view (the reference
    multiplies by a tensor of ones of the output's size)."""
    dims = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    try:
        out_shape = np.broadcast_shapes(data.shape, dims)
    except ValueError:
        raise ValueError(f"the input {list(data.shape)} cannot be expanded to {list(dims)}") from None
    return np.broadcast_to(data, out_shape).copy()


# ----------------------------------------------------------------------- NonMaxSuppression

_NO_BOXES = np.zeros((0, 3), dtype=np.int64)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, max_output: np.ndarray | None = None,
                        iou_threshold: np.ndarray | None = None, score_threshold: np.ndarray | None = None,
                        center_point_box: int = 0) -> np.ndarray:
    """ONNX NonMaxSuppression: greedy per batch and class, int64 [n, 3] rows (batch, class,
    box) by batch, class, then selection order (score descending, equal scores by lower box
    index). A box is suppressed when its IoU with a selected box, computed in float32 exactly
    as onnxruntime does, exceeds the threshold; boxes with no area never suppress.

    The greedy loop is replaced by two exact equivalents: boxes are first split into groups
    that cannot interact (gaps between their extents, shrunk by the threshold: a pair whose
    IoU exceeds t overlaps by more than t of the wider box); groups dense with overlaps run
    the greedy in lock step, one selection per group per round, and sparse groups solve the
    greedy's fixed point over their few overlapping pairs."""
    if boxes.ndim != 3 or scores.ndim != 3 or boxes.shape[2] != 4:
        raise ValueError(f"boxes {list(boxes.shape)} must be [batches, boxes, 4] and scores {list(scores.shape)} "
                         "[batches, classes, boxes]")
    if boxes.shape[0] != scores.shape[0] or boxes.shape[1] != scores.shape[2]:
        raise ValueError(f"boxes {list(boxes.shape)} and scores {list(scores.shape)} disagree on the batches or boxes")
    if center_point_box not in (0, 1):
        raise ValueError(f"center_point_box must be 0 or 1, got {center_point_box}")
    limit = max(int(max_output.reshape(-1)[0]), 0) if max_output is not None and max_output.size else 0
    iou = np.float32(iou_threshold.reshape(-1)[0]) if iou_threshold is not None and iou_threshold.size else np.float32(0)
    if not 0 <= iou <= 1:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou}")
    if limit == 0 or scores.size == 0:
        return _NO_BOXES.copy()
    batches, classes, n = scores.shape
    flat = scores.reshape(batches * classes, n)
    if score_threshold is not None and score_threshold.size:
        problem, box = np.nonzero(flat > np.float32(score_threshold.reshape(-1)[0]))
    else:
        problem, box = np.divmod(np.arange(flat.size, dtype=np.int64), n)
    score = flat[problem, box]
    order = np.lexsort((-score, problem))  # stable: equal scores keep the lower box first
    problem, box = problem[order], box[order]
    cand = _Candidates(_corners(boxes, center_point_box), problem, box, classes)
    kept = cand.greedy(iou)
    problem, box = problem[kept], box[kept]
    if limit < box.size:
        first = np.r_[0, np.flatnonzero(np.diff(problem)) + 1]
        rank = np.arange(box.size) - np.repeat(first, np.diff(np.r_[first, box.size]))
        problem, box = problem[rank < limit], box[rank < limit]
    return np.stack([problem // classes, problem % classes, box], axis=1).astype(np.int64)


def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """[4, batches, boxes] float32 x_min, x_max, y_min, y_max as onnxruntime computes them."""
    b = boxes.astype(np.float32, copy=False)
    if center_point_box == 0:
        y0, x0, y1, x1 = (b[..., i] for i in range(4))
        return np.stack([np.minimum(x0, x1), np.maximum(x0, x1), np.minimum(y0, y1), np.maximum(y0, y1)])
    xc, yc, w, h = (b[..., i] for i in range(4))
    hw, hh = w / np.float32(2), h / np.float32(2)
    return np.stack([xc - hw, xc + hw, yc - hh, yc + hh])


def _suppresses(a: np.ndarray, b: np.ndarray, iou: np.float32) -> np.ndarray:
    """Whether box ``a`` suppresses box ``b`` (arrays [5, ...]: x_min, x_max, y_min, y_max,
    area; both with positive extents and area), onnxruntime's float32 test: overlapping
    extents, a positive intersection and union, and intersection / union > iou."""
    ix0, ix1 = np.maximum(a[0], b[0]), np.minimum(a[1], b[1])
    iy0, iy1 = np.maximum(a[2], b[2]), np.minimum(a[3], b[3])
    inter = (ix1 - ix0) * (iy1 - iy0)
    union = (a[4] + b[4]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return (ix1 > ix0) & (iy1 > iy0) & (inter > 0) & (union > 0) & (inter / union > iou)


class _Candidates:
    """The candidate boxes of every (batch, class) problem, sorted by problem then rank, with
    their float32 corners and areas."""

    # a group is sparse (solved over its overlapping pairs) below this many pairs per box
    SPARSE_PAIRS_PER_BOX = 64
    # cost model of the two solvers, measured on a 2-core x86 VM: seconds per candidate pair,
    # per lock-step round and per member in a round (a quarter of a group's boxes selected)
    PAIR_S, ROUND_S, MEMBER_S = 36e-9, 50e-6, 25e-9

    def __init__(self, corners: np.ndarray, problem: np.ndarray, box: np.ndarray, classes: int):
        self.problem = problem
        self.size = box.size
        c = corners[:, problem // classes, box]  # [4, candidates]
        area = (c[1] - c[0]) * (c[3] - c[2])
        self.coords = np.concatenate([c, area[None]])  # [5, candidates] float32
        # boxes with an empty extent or no area neither suppress nor are suppressed
        self.active = np.flatnonzero((c[1] > c[0]) & (c[3] > c[2]) & (area > 0))

    def greedy(self, iou: np.float32) -> np.ndarray:
        """Positions of the selected candidates, in candidate order."""
        keep = np.ones(self.size, dtype=bool)
        if self.active.size < 2:
            return np.flatnonzero(keep)
        shrink = float(iou) / 2 * (1 - 1e-4) if iou >= 0.01 else 0.0
        x0, x1, y0, y1 = self._extents(shrink)
        group = self._groups(x0, x1, y0, y1, self.problem[self.active])
        order, count = self._sweep_counts(group, x0, x1)
        sizes = np.bincount(group)
        pairs = np.bincount(group[order], weights=count, minlength=sizes.size)
        sparse = pairs <= self.SPARSE_PAIRS_PER_BOX * sizes
        if not sparse.all():
            rounds = sizes[~sparse].max() / 4
            lock = rounds * (self.ROUND_S + self.MEMBER_S * sizes[~sparse].sum() / 2)
            if self.PAIR_S * pairs[~sparse].sum() < lock:  # few dense groups: the lock step is a slow loop
                sparse[:] = True
        count[~sparse[group[order]]] = 0
        self._fixed_point(keep, *self._hits(order, count, y0, y1, iou))
        dense = ~sparse[group]
        if dense.any():
            self._lock_step(keep, self.active[dense], group[dense], iou)
        return np.flatnonzero(keep)

    def _extents(self, shrink: float) -> tuple[np.ndarray, ...]:
        """Integer keys of the active boxes' x and y extents, each side moved in by ``shrink``
        of the box's size (two boxes whose IoU exceeds t overlap by more than t of the larger
        size in both axes, so with shrink < t/2 their shrunk extents still overlap). A key is
        the number of shrunk starts below the value: start < end exactly when key(start) <
        key(end), so overlaps and gaps are decided on integers."""
        c = self.coords[:4, self.active].astype(np.float64)
        w, h = c[1] - c[0], c[3] - c[2]
        return (*_axis_keys(c[0] + shrink * w, c[1] - shrink * w), *_axis_keys(c[2] + shrink * h, c[3] - shrink * h))

    @staticmethod
    def _groups(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray, problem: np.ndarray) -> np.ndarray:
        """A group id per active candidate such that boxes of different groups cannot suppress
        each other: splits at gaps between shrunk extents, in x then y, until none is left."""
        group = problem
        counts = [-1]
        for step in range(8):
            lo, hi = (x0, x1) if step % 2 == 0 else (y0, y1)
            group = _split_at_gaps(group, lo, hi)
            counts.append(int(group.max()) + 1)
            if len(counts) > 2 and counts[-1] == counts[-3]:  # neither axis split anything more
                break
        return group

    @staticmethod
    def _sweep_counts(group: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(order, count): the active candidates sorted by (group, shrunk x start), and for each
        in that order how many after it in its group start before its shrunk x end."""
        key0, key1 = _group_keys(group, x0, x1)
        order = np.argsort(key0, kind="stable")
        end = np.searchsorted(key0[order], key1[order], side="left")
        return order, np.maximum(end - np.arange(group.size) - 1, 0)

    def _hits(self, order: np.ndarray, count: np.ndarray, y0: np.ndarray, y1: np.ndarray,
              iou: np.float32) -> tuple[np.ndarray, np.ndarray]:
        """The sweep's pairs whose shrunk y extents overlap too and whose IoU exceeds the
        threshold, as candidate positions (earlier rank, later rank). Pairs are formed in
        sweep order, where each box's partners follow it closely, so the gathers stay local."""
        total = int(count.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        first = np.repeat(np.arange(count.size), count)
        second = np.arange(total) - np.repeat(np.cumsum(count) - count, count) + first + 1
        ys0, ys1 = y0[order], y1[order]
        near = np.flatnonzero((np.take(ys0, first) < np.take(ys1, second)) & (np.take(ys0, second) < np.take(ys1, first)))
        first, second = first[near], second[near]
        boxes = self.coords[:, self.active[order]]
        hit = np.flatnonzero(_suppresses(np.take(boxes, first, axis=1), np.take(boxes, second, axis=1), iou))
        a, b = self.active[order[first[hit]]], self.active[order[second[hit]]]
        return np.minimum(a, b), np.maximum(a, b)  # candidate positions follow rank order

    def _fixed_point(self, keep: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
        """Greedy selection over the suppressing pairs (``first`` ranked before ``second``): a
        box is kept iff no kept box before it suppresses it. That recursion has one solution;
        iterating it from 'all kept' reaches it after as many steps as the longest chain of
        suppressions, else a sequential pass over the suppressing boxes finishes."""
        if first.size == 0:
            return
        state = keep.copy()
        for _ in range(32):
            new = keep.copy()
            new[second[state[first]]] = False
            if np.array_equal(new, state):
                keep[:] = new
                return
            state = new
        order = np.argsort(first, kind="stable")
        first, second = first[order], second[order]
        rows = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
        ends = np.r_[rows[1:], first.size].tolist()
        for i, lo, hi in zip(first[rows].tolist(), rows.tolist(), ends, strict=True):
            if keep[i]:
                keep[second[lo:hi]] = False

    def _lock_step(self, keep: np.ndarray, members: np.ndarray, group: np.ndarray, iou: np.float32) -> None:
        """Greedy selection in dense groups: each round, every group's best remaining box is
        selected and removes the boxes of its group it suppresses."""
        order = np.lexsort((members, group))
        members, group = members[order], group[order]
        coords = self.coords[:, members]
        while members.size:
            head = np.r_[True, group[1:] != group[:-1]]
            starts = np.flatnonzero(head)
            lengths = np.diff(np.r_[starts, members.size])
            lead = np.repeat(coords[:, starts], lengths, axis=1)
            alive = ~_suppresses(lead, coords, iou) & ~head
            keep[members[~head & ~alive]] = False
            members, group, coords = members[alive], group[alive], coords[:, alive]


def _axis_keys(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(key(lo), key(hi)), key(v) = how many values of ``lo`` are below v: monotone, and
    key(lo[i]) < key(hi[j]) exactly when lo[i] < hi[j]."""
    starts = np.sort(lo)
    keys = np.searchsorted(starts, lo, side="left"), np.searchsorted(starts, hi, side="left")
    return tuple(k.astype(np.int32) for k in keys) if lo.size < 2**31 - 1 else keys  # type: ignore[return-value]


def _group_keys(group: np.ndarray, k0: np.ndarray, k1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis keys offset by the group, so one sort orders by (group, key) and keys of
    different groups never compare as overlapping."""
    base = group.astype(np.int64) * (k0.size + 1)
    return base + k0, base + k1


def _split_at_gaps(group: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Refine ``group``: within a group, sorted by ``lo``, a box whose ``lo`` is at or beyond
    every earlier box's ``hi`` starts a new group. Returns dense new ids."""
    key0, key1 = _group_keys(group, lo, hi)
    order = np.argsort(key0, kind="stable")
    reach = np.maximum.accumulate(key1[order])
    start = np.r_[True, key0[order][1:] >= reach[:-1]]
    new = np.empty_like(group)
    new[order] = np.cumsum(start) - 1
    return new


# -------------------------------------------------------------------------- ScatterElements

_SCATTER_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def scatter_elements(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: int = 0,
                     reduction: str = "none") -> np.ndarray:
    """ONNX ScatterElements by fancy indexing (with ``reduction`` by the ufunc's unbuffered
    ``at``; without one, of equal indices the last update wins, as in onnxruntime). Indices
    that are the same along every other axis (a gather index expanded over the channels, as
    torchvision's RoI pooling scatters its levels) scatter whole slices."""
    axis = _axis(axis, data.ndim)
    if indices.shape != updates.shape or indices.ndim != data.ndim:
        raise ValueError(f"indices {list(indices.shape)} and updates {list(updates.shape)} must have one shape "
                         f"and the rank of the data {list(data.shape)}")
    if any(i > d for j, (i, d) in enumerate(zip(indices.shape, data.shape, strict=True)) if j != axis):
        raise ValueError(f"indices {list(indices.shape)} exceed the data {list(data.shape)} on an axis other than {axis}")
    negative = _check_indices(indices, data.shape[axis], f"axis {axis} of the data {list(data.shape)}")
    out = data.copy()
    idx = indices.astype(np.int64, copy=False)
    if negative:
        idx = np.where(idx < 0, idx + data.shape[axis], idx)
    ufunc = _SCATTER_UFUNCS.get(reduction or "none")
    if reduction not in (None, "", "none") and ufunc is None:
        raise ValueError(f"reduction '{reduction}' is not one of none, add, mul, max, min")
    head = tuple(slice(0, s) for s in indices.shape)
    line = idx[tuple(slice(None) if j == axis else slice(0, 1) for j in range(idx.ndim))]
    if idx.size and ufunc is None and _constant_across(idx, line):
        # whole slices: out[..., line[k], ...] = updates[..., k, ...] within the indexed box
        box = out[tuple(slice(None) if j == axis else head[j] for j in range(idx.ndim))]
        box[(slice(None),) * axis + (line.reshape(-1),)] = updates
        return out
    grid = list(np.ogrid[head])
    grid[axis] = idx
    if ufunc is None:
        out[tuple(grid)] = updates
    else:
        ufunc.at(out, tuple(grid), updates)
    return out


def _constant_across(idx: np.ndarray, line: np.ndarray) -> bool:
    """Whether ``idx`` equals ``line`` (its first entry along every axis but one) everywhere;
    free for a broadcast view (zero strides on those axes)."""
    if all(st == 0 or n == 1 for st, n, m in zip(idx.strides, idx.shape, line.shape, strict=True) if m == 1):
        return True
    return bool((idx == line).all())


# -------------------------------------------------------------------------------- RoiAlign


def roi_align(x: np.ndarray, rois: np.ndarray, batch_indices: np.ndarray, mode: str = "avg",
              output_height: int = 1, output_width: int = 1, sampling_ratio: int = 0,
              spatial_scale: float = 1.0, half_pixel: bool = True) -> np.ndarray:
    """ONNX RoiAlign with onnxruntime's arithmetic: sample positions and bilinear weights in the
    input's float type, the grid of ``sampling_ratio`` (or ceil(roi size / output size))
    samples per bin, samples outside [-1, size] weighing nothing, and "max" taking the largest
    weighted corner. The bilinear weights factor into a y part and an x part, so average
    pooling is two matrix products per image (Ay @ X @ Ax^T) where the maps are small enough,
    else gathers of channel vectors."""
    if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 4 or batch_indices.ndim != 1:
        raise ValueError(f"X {list(x.shape)} must be [N, C, H, W], rois {list(rois.shape)} [R, 4] and "
                         f"batch_indices {list(batch_indices.shape)} [R]")
    if rois.shape[0] != batch_indices.shape[0]:
        raise ValueError(f"rois {list(rois.shape)} and batch_indices {list(batch_indices.shape)} differ in length")
    mode = mode.lower()
    if mode not in ("avg", "max"):
        raise ValueError(f"mode '{mode}' is not avg or max")
    n, c, h, w = x.shape
    batch = batch_indices.astype(np.int64, copy=False)
    if batch.size and (batch.min() < 0 or batch.max() >= n):
        bad = int(batch.min() if batch.min() < 0 else batch.max())
        raise IndexError(f"batch index {bad} is out of range for X with {n} images")
    ct = np.float32 if x.dtype != np.float64 else np.float64
    r = rois.shape[0]
    if r == 0:
        return np.zeros((0, c, output_height, output_width), dtype=x.dtype)
    grid = _RoiGrid(rois.astype(ct), ct, h, w, output_height, output_width, sampling_ratio, spatial_scale, half_pixel)
    xc = x.astype(ct, copy=False)
    dense_flops = output_height * h * w * (1 + output_width / max(h, 1))
    gather_ops = 40 * output_height * output_width * grid.gh * grid.gw
    if mode == "avg" and dense_flops <= gather_ops:
        out = grid.average_dense(xc, batch)
    else:
        out = grid.pool_gather(xc, batch, mode)
    return out.astype(x.dtype, copy=False)


class _RoiGrid:
    """Per roi and output row (column): the sample rows (columns), their low/high neighbours
    and bilinear weights, padded to the largest grid among the rois."""

    def __init__(self, rois: np.ndarray, ct: type, h: int, w: int, ph: int, pw: int, sampling_ratio: int,
                 spatial_scale: float, half_pixel: bool):
        scale, off = ct(spatial_scale), ct(0.5 if half_pixel else 0.0)
        x0, y0, x1, y1 = (rois[:, i] * scale - off for i in range(4))
        rw, rh = x1 - x0, y1 - y0
        if not half_pixel:  # malformed rois become 1x1
            rw, rh = np.maximum(rw, ct(1)), np.maximum(rh, ct(1))
        bin_h, bin_w = rh / ct(ph), rw / ct(pw)
        if sampling_ratio > 0:
            gh = gw = np.full(rois.shape[0], sampling_ratio, dtype=np.int64)
        else:
            gh = np.maximum(np.ceil(rh / ct(ph)), 0).astype(np.int64)
            gw = np.maximum(np.ceil(rw / ct(pw)), 0).astype(np.int64)
        self.count = np.maximum(gh * gw, 1).astype(ct)
        self.empty = gh * gw == 0  # a roi without samples pools to 0
        self.gh, self.gw = int(max(gh.max(), 1)), int(max(gw.max(), 1))
        self.shape = (ph, pw)
        self.h, self.w, self.ct = h, w, ct
        # [R, P, G] sample positions, then neighbours and weights (zero for padding samples)
        self.y = _Axis(y0, bin_h, gh, ph, self.gh, h, ct)
        self.x = _Axis(x0, bin_w, gw, pw, self.gw, w, ct)

    def average_dense(self, x: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """out[r] = Ay[r] @ X[b] @ Ax[r]^T / count, per image b (one matrix product for all
        rois of the image, then one batched product)."""
        ph, pw = self.shape
        r = batch.size
        c = x.shape[1]
        ay = self.y.matrix(self.h)  # [R, PH, H]
        ax = np.ascontiguousarray(self.x.matrix(self.w).transpose(0, 2, 1))  # [R, W, PW]
        out = np.empty((r, ph, c, pw), dtype=self.ct)
        images = np.unique(batch)
        for b in images:
            sel = slice(None) if images.size == 1 else np.flatnonzero(batch == b)
            img = x[b].transpose(1, 0, 2).reshape(self.h, c * self.w)  # [H, C*W]
            rows = matmul_2d(ay[sel].reshape(-1, self.h), img).reshape(-1, ph * c, self.w)
            out[sel] = (rows @ ax[sel]).reshape(-1, ph, c, pw)
        result = np.empty((r, c, ph, pw), dtype=self.ct)
        np.divide(out.transpose(0, 2, 1, 3), self.count[:, None, None, None], out=result)
        return result

    def pool_gather(self, x: np.ndarray, batch: np.ndarray, mode: str) -> np.ndarray:
        """Gather the four neighbours' channel vectors of every sample (channels last, so each
        gather copies a contiguous run), weigh them, then sum or take the maximum: one sample
        row at a time, over as many rois as fit a bounded temporary."""
        ph, pw = self.shape
        c = x.shape[1]
        img = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # [N, H, W, C]
        out = np.empty((batch.size, c, ph, pw), dtype=self.ct)
        step = max(1, (1 << 22) // (ph * pw * self.gw * c))
        for lo in range(0, batch.size, step):
            sl = slice(lo, lo + step)
            pooled = self._pool_rois(img, batch[sl], sl, mode)  # [r, PH, PW, C]
            out[sl] = pooled.transpose(0, 3, 1, 2)
        return out

    def _pool_rois(self, img: np.ndarray, batch: np.ndarray, sl: slice, mode: str) -> np.ndarray:
        b = batch[:, None, None, None]
        xs = ((self.x.low[sl], self.x.w_low[sl]), (self.x.high[sl], self.x.w_high[sl]))  # [r, PW, GW]
        real_x = self.x.real[sl][:, None, :, :, None]
        acc = None
        for iy in range(self.gh):
            row = None  # [r, PH, PW, GW, C]: the weighted neighbours of sample row iy
            for yi, wy in ((self.y.low[sl][:, :, iy], self.y.w_low[sl][:, :, iy]),
                           (self.y.high[sl][:, :, iy], self.y.w_high[sl][:, :, iy])):
                for xi, wx in xs:
                    vals = img[b, yi[:, :, None, None], xi[:, None, :, :]]
                    term = (wy[:, :, None, None] * wx[:, None, :, :])[..., None] * vals
                    row = term if row is None else (row + term if mode == "avg" else np.maximum(row, term))
            assert row is not None
            if mode == "avg":
                part = row.sum(axis=3)
            else:
                real = real_x & self.y.real[sl][:, :, iy, None, None, None]
                part = np.where(real, row, -np.inf).max(axis=3)
            acc = part if acc is None else (acc + part if mode == "avg" else np.maximum(acc, part))
        assert acc is not None
        if mode == "avg":
            return acc / self.count[sl, None, None, None]
        acc[self.empty[sl]] = 0
        return acc


class _Axis:
    """One axis of the sampling grid: per roi, output bin and sample, the clamped low/high
    neighbour indices and their weights (onnxruntime's float arithmetic), zero outside the
    map's [-1, size] and for padding samples beyond the roi's own grid (``real`` False)."""

    def __init__(self, start: np.ndarray, bin_size: np.ndarray, grid: np.ndarray, bins: int, pad: int, size: int,
                 ct: type):
        p = np.arange(bins, dtype=ct)[None, :, None]
        i = np.arange(pad)
        frac = (i.astype(ct) + ct(0.5))[None, None, :]
        g = np.maximum(grid, 1).astype(ct)[:, None, None]
        pos = (start[:, None, None] + p * bin_size[:, None, None]) + frac * bin_size[:, None, None] / g
        self.real = np.broadcast_to(i[None, None, :] < grid[:, None, None], pos.shape)
        inside = (pos >= ct(-1)) & (pos <= ct(size)) & self.real
        pos = np.where(pos <= 0, ct(0), pos)
        low = pos.astype(np.int64)
        edge = low >= size - 1
        low = np.where(edge, size - 1, low)
        high = np.where(edge, size - 1, low + 1)
        pos = np.where(edge, low.astype(ct), pos)
        frac_high = (pos - low.astype(ct)).astype(ct)
        frac_low = ct(1) - frac_high
        zero = ct(0)
        self.low, self.high = low, high
        self.w_low = np.where(inside, frac_low, zero)
        self.w_high = np.where(inside, frac_high, zero)

    def matrix(self, size: int) -> np.ndarray:
        """[R, bins, size]: the weight each map row (column) gets in each output bin."""
        r, bins, _ = self.low.shape
        base = (np.arange(r)[:, None, None] * bins + np.arange(bins)[None, :, None]) * size
        flat = np.bincount(np.concatenate([(base + self.low).ravel(), (base + self.high).ravel()]),
                           weights=np.concatenate([self.w_low.ravel(), self.w_high.ravel()]),
                           minlength=r * bins * size)
        return flat.reshape(r, bins, size).astype(self.w_low.dtype)


# ---------------------------------------------------------------------------- Gemm, MatMul


class _OpenBLAS:
    """numpy's OpenBLAS, reached through ctypes (as threadpoolctl does), so that a host part's
    products run as single-threaded BLAS calls on our own threads. OpenBLAS's threads spin
    at a barrier and keep spinning for ~0.1 s after a call: on a loaded 2-core machine a
    150x12544x1024 Gemm took 60-430 ms with OpenBLAS's 2 threads against 39-48 ms split over
    two Python threads of one BLAS thread each (onnxruntime's thread pool splits work the same
    way), and on an idle one the split took 18 ms, but 35 ms right after another product had
    woken OpenBLAS's threads. Absent (another BLAS, no /proc/self/maps): numpy as it is."""

    SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
               "openblas_set_num_threads64_", "openblas_set_num_threads")

    def __init__(self) -> None:
        self._set = self._get = None
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 1
        try:
            with open("/proc/self/maps") as f:
                paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", f.read())))
        except OSError:
            return
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for name in self.SETTERS:
                getter = name.replace("set_num_threads", "get_num_threads")
                if hasattr(lib, name) and hasattr(lib, getter):
                    self._set, self._get = getattr(lib, name), getattr(lib, getter)
                    self._get.restype = ctypes.c_int
                    return

    @property
    def available(self) -> bool:
        return self._set is not None

    def threads(self) -> int:
        """OpenBLAS's own thread count outside our single-threaded sections (the cores a
        product may use: 1 if the user asked for OPENBLAS_NUM_THREADS=1)."""
        with self._lock:
            return self._saved if self._users or self._get is None else int(self._get())

    @contextlib.contextmanager
    def single_threaded(self) -> Iterator[None]:
        """OpenBLAS on one thread while any caller is inside (re-entrant; the previous count
        is restored when the last one leaves)."""
        if self._set is None:
            yield
            return
        with self._lock:
            if self._users == 0:
                self._saved = int(self._get())
                self._set(1)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._set(self._saved)


_blas: _OpenBLAS | None = None
_pool: ThreadPoolExecutor | None = None
_init_lock = threading.Lock()
SPLIT_MIN_FLOPS = 1 << 22  # below this a product's split costs more than it saves


def _split_setup() -> tuple[_OpenBLAS, ThreadPoolExecutor | None, int]:
    """(the BLAS, a pool of worker threads, how many parts a product may run in)."""
    global _blas, _pool
    with _init_lock:
        if _blas is None:
            _blas = _OpenBLAS()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = min(cores, _blas.threads()) if _blas.available else 1
        if _pool is None and workers > 1:
            _pool = ThreadPoolExecutor(cores - 1, thread_name_prefix="visc-host-blas")
    return _blas, _pool, workers


def own_blas() -> contextlib.AbstractContextManager[None]:
    """A context in which OpenBLAS runs single-threaded and the products of these kernels
    are split over our own threads instead (`_OpenBLAS`); `HostGraph` runs inside one, so
    no product of a run leaves OpenBLAS's threads spinning against the next."""
    return _split_setup()[0].single_threaded()


def _in_parts(n: int, parts: int, block: Callable[[int, int], None]) -> None:
    """``block(lo, hi)`` over ``parts`` slices of range(n), on the pool and this thread, with
    OpenBLAS single-threaded."""
    blas, pool, _ = _split_setup()
    edges = np.linspace(0, n, parts + 1).astype(int).tolist()
    assert pool is not None
    with blas.single_threaded():
        futures = [pool.submit(block, edges[i], edges[i + 1]) for i in range(1, parts)]
        block(edges[0], edges[1])
        for f in futures:
            f.result()


def _parts(flops: int, n: int, dtype: np.dtype) -> int:
    """How many parts a product of ``flops`` multiply-adds over an axis of ``n`` runs in."""
    if dtype not in (np.float32, np.float64) or flops < SPLIT_MIN_FLOPS:
        return 1
    _, pool, workers = _split_setup()
    return min(workers, max(1, n // 16)) if pool is not None else 1


def matmul_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for matrices; a large float product runs as column blocks, one per core,
    each a single-threaded BLAS call (see `_OpenBLAS`)."""
    m, k = a.shape
    n = b.shape[1]
    parts = _parts(m * n * k, n, a.dtype) if a.dtype == b.dtype else 1
    if parts < 2:
        return a @ b
    out = np.empty((m, n), dtype=a.dtype)

    def block(lo: int, hi: int) -> None:
        np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])

    _in_parts(n, parts, block)
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX MatMul (numpy's matmul): a stack times a matrix is one 2-D product; a large
    product of stacks runs as blocks of the stack, one per core."""
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        return np.matmul(a, b)  # vectors, and numpy's own error for shapes that do not multiply
    if b.ndim == 2:
        return matmul_2d(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    count = int(np.prod(batch, dtype=np.int64))
    parts = _parts(count * m * n * k, count, a.dtype) if a.dtype == b.dtype else 1
    if parts < 2:
        return np.matmul(a, b)
    sa = np.broadcast_to(a, (*batch, m, k)).reshape(count, m, k)
    sb = np.broadcast_to(b, (*batch, k, n)).reshape(count, k, n)
    out = np.empty((count, m, n), dtype=a.dtype)

    def block(lo: int, hi: int) -> None:
        np.matmul(sa[lo:hi], sb[lo:hi], out=out[lo:hi])

    _in_parts(count, parts, block)
    return out.reshape(*batch, m, n)


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, alpha: float = 1.0, beta: float = 1.0,
         trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """ONNX Gemm: alpha * A' B' + beta * C in A's type."""
    a2, b2 = (a.T if trans_a else a), (b.T if trans_b else b)
    if a2.ndim != 2 or b2.ndim != 2 or a2.shape[1] != b2.shape[0]:
        raise ValueError(f"A {list(a.shape)} (transA={int(trans_a)}) and B {list(b.shape)} (transB={int(trans_b)}) "
                         "do not multiply")
    out = matmul_2d(a2, b2)
    if alpha != 1:
        out *= out.dtype.type(alpha)
    if c is not None and beta != 0:
        out += c if beta == 1 else c * c.dtype.type(beta)
    return out.astype(a.dtype, copy=False)
