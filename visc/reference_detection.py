"""numpy semantics of the sorting, selection and detection ops (topk, sort, argmax/argmin,
scan, nms, roi_align), registered in `visc.reference`'s op table.

Kept apart from reference.py because these are algorithms, not formulas: NMS and RoiAlign
follow ONNX's definitions operation by operation in the element type (float32 for float32
data), so the GPU kernels, which do the same arithmetic, match them bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from visc.dialects import vision
from visc.dialects.vision import get_float, get_int, get_str, shape_of


def _order_key(x: np.ndarray, descending: bool) -> np.ndarray:
    """Keys whose ascending stable argsort gives `x` in the wanted order, ties by index."""
    if not descending:
        return x
    if x.dtype.kind == "f":
        return -x
    return ~x  # bitwise not reverses the order of signed integers and bools without overflow


def stable_argsort(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    return np.argsort(_order_key(x, descending), axis=axis, kind="stable")


def _topk(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> list[np.ndarray]:
    x = args[0]
    axis, k = get_int(op, "axis"), get_int(op, "k")
    order = np.take(stable_argsort(x, axis, bool(get_int(op, "largest", 1))), np.arange(k), axis=axis)
    return [np.take_along_axis(x, order, axis=axis), order.astype(np.int64)]


def _sort(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> list[np.ndarray]:
    x = args[0]
    axis = get_int(op, "axis")
    order = stable_argsort(x, axis, bool(get_int(op, "descending", 0)))
    return [np.take_along_axis(x, order, axis=axis), order.astype(np.int64)]


def _arg_extreme(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    axis = get_int(op, "axis")
    pick = np.argmax if isinstance(op, vision.ArgMaxOp) else np.argmin
    if get_int(op, "select_last_index", 0):
        idx = x.shape[axis] - 1 - pick(np.flip(x, axis=axis), axis=axis)
    else:
        idx = pick(x, axis=axis)
    return np.asarray(idx, dtype=np.int64).reshape(shape_of(op.dests[0]))


def _scan(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x = args[0]
    axis = get_int(op, "axis")
    reverse = bool(get_int(op, "reverse", 0))
    work = np.flip(x, axis=axis) if reverse else x
    acc = np.float32 if x.dtype == np.float16 else x.dtype
    total = np.cumsum(work, axis=axis, dtype=acc)
    if get_int(op, "exclusive", 0):
        total = total - work.astype(acc)
    if reverse:
        total = np.flip(total, axis=axis)
    return total.astype(x.dtype)


# -- non-maximum suppression ----------------------------------------------------------------


def _corners(boxes: np.ndarray, center_point_box: int) -> tuple[np.ndarray, ...]:
    """(x_min, x_max, y_min, y_max) per box, in the boxes' dtype, as ONNX computes them."""
    if center_point_box:
        half_w, half_h = boxes[:, 2] / 2, boxes[:, 3] / 2
        return boxes[:, 0] - half_w, boxes[:, 0] + half_w, boxes[:, 1] - half_h, boxes[:, 1] + half_h
    x_min, x_max = np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3])
    y_min, y_max = np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])
    return x_min, x_max, y_min, y_max


def suppresses(corners: tuple[np.ndarray, ...], i: int, others: np.ndarray, iou_threshold: np.floating) -> np.ndarray:
    """Whether box `i` suppresses each box of `others` (ONNX's SuppressByIOU, vectorized)."""
    x_min, x_max, y_min, y_max = corners
    ix_min, ix_max = np.maximum(x_min[i], x_min[others]), np.minimum(x_max[i], x_max[others])
    iy_min, iy_max = np.maximum(y_min[i], y_min[others]), np.minimum(y_max[i], y_max[others])
    inter = (ix_max - ix_min) * (iy_max - iy_min)
    area_i = (x_max[i] - x_min[i]) * (y_max[i] - y_min[i])
    area_o = (x_max[others] - x_min[others]) * (y_max[others] - y_min[others])
    union = area_i + area_o - inter
    ok = (ix_max > ix_min) & (iy_max > iy_min) & (inter > 0) & (area_i > 0) & (area_o > 0) & (union > 0)
    with np.errstate(all="ignore"):
        iou = inter / np.where(union > 0, union, 1)
    return ok & (iou > iou_threshold)


def nms_select(boxes: np.ndarray, scores: np.ndarray, max_per_class: int, iou_threshold: float,
               score_threshold: float | None, center_point_box: int) -> np.ndarray:
    """Selected (batch, class, box) rows of ONNX NonMaxSuppression, int64 [num_selected, 3]."""
    rows: list[tuple[int, int, int]] = []
    dt = boxes.dtype.type
    thr = dt(iou_threshold)
    for b in range(boxes.shape[0]):
        corners = _corners(boxes[b], center_point_box)
        for c in range(scores.shape[1]):
            s = scores[b, c]
            order = stable_argsort(s, 0, descending=True)
            if score_threshold is not None:
                order = order[s[order] > s.dtype.type(score_threshold)]
            alive = np.ones(len(order), bool)
            kept = 0
            for pos in range(len(order)):
                if kept >= max_per_class:
                    break
                if not alive[pos]:
                    continue
                rows.append((b, c, int(order[pos])))
                kept += 1
                rest = order[pos + 1:]
                alive[pos + 1:] &= ~suppresses(corners, int(order[pos]), rest, thr)
    return np.array(rows, dtype=np.int64).reshape(len(rows), 3)


def _nms(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> list[np.ndarray]:
    boxes, scores = args
    score_threshold = get_float(op, "score_threshold") if "score_threshold" in op.attributes else None
    picked = nms_select(boxes, scores, max(get_int(op, "max_output_boxes_per_class"), 0),
                        get_float(op, "iou_threshold", 0.0), score_threshold, get_int(op, "center_point_box", 0))
    rows = shape_of(op.dests[0])[0]
    selected = np.full((rows, 3), -1, dtype=np.int64)
    selected[: len(picked)] = picked
    return [selected, np.array([len(picked)], dtype=np.int64)]


# -- RoiAlign ---------------------------------------------------------------------------------


def _bilinear_taps(pos: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(low index, high index, low weight, high weight) of sample coordinates along one axis,
    with ONNX RoiAlign's border rules (a sample beyond the last pixel sits on it)."""
    p = np.maximum(pos, 0)
    low = p.astype(np.int64)  # trunc of a non-negative value
    at_edge = low >= size - 1
    low = np.where(at_edge, size - 1, low)
    high = np.where(at_edge, size - 1, low + 1)
    p = np.where(at_edge, p.dtype.type(size - 1), p)
    frac = p - low.astype(p.dtype)
    return low, high, 1 - frac, frac


def _roi_align(op: vision.VisionOp, args: list[np.ndarray], fuse: Sequence[np.ndarray]) -> np.ndarray:
    x, rois, batch_indices = args
    r_count, channels, oh, ow = shape_of(op.dests[0])
    _, _, h, w = x.shape
    dt = x.dtype.type
    scale = dt(get_float(op, "spatial_scale", 1.0))
    half_pixel = get_str(op, "coord_mode", "half_pixel") == "half_pixel"
    ratio = get_int(op, "sampling_ratio", 0)
    is_max = get_str(op, "mode", "avg") == "max"
    out = np.zeros((r_count, channels, oh, ow), dtype=x.dtype)
    offset = dt(0.5 if half_pixel else 0.0)
    for r in range(r_count):
        x0, y0, x1, y1 = (rois[r, i] * scale - offset for i in range(4))
        roi_w, roi_h = x1 - x0, y1 - y0
        if not half_pixel:
            roi_w, roi_h = max(roi_w, dt(1)), max(roi_h, dt(1))
        bin_h, bin_w = roi_h / dt(oh), roi_w / dt(ow)
        grid_h = ratio if ratio > 0 else int(np.ceil(roi_h / dt(oh)))
        grid_w = ratio if ratio > 0 else int(np.ceil(roi_w / dt(ow)))
        count = dt(max(grid_h * grid_w, 1))
        # sample coordinates per (bin, sample) along each axis
        ys = (y0 + np.arange(oh, dtype=dt)[:, None] * bin_h
              + (np.arange(grid_h, dtype=dt)[None, :] + dt(0.5)) * bin_h / dt(grid_h))
        xs = (x0 + np.arange(ow, dtype=dt)[:, None] * bin_w
              + (np.arange(grid_w, dtype=dt)[None, :] + dt(0.5)) * bin_w / dt(grid_w))
        y_lo, y_hi, hy, ly = _bilinear_taps(ys, h)
        x_lo, x_hi, hx, lx = _bilinear_taps(xs, w)
        y_in = (ys >= -1) & (ys <= h)  # samples outside [-1, size] contribute 0
        x_in = (xs >= -1) & (xs <= w)
        img = x[int(batch_indices[r])]  # [C, H, W]
        weights = [hy[:, :, None, None] * hx[None, None], hy[:, :, None, None] * lx[None, None],
                   ly[:, :, None, None] * hx[None, None], ly[:, :, None, None] * lx[None, None]]
        inside = (y_in[:, :, None, None] & x_in[None, None]).astype(dt)
        # [C, oh, gh, ow, gw]: each tap's weighted samples
        terms = [wt * inside * img[:, yi[:, :, None, None], xi[None, None, :, :]] for wt, (yi, xi) in
                 zip(weights, [(y_lo, x_lo), (y_lo, x_hi), (y_hi, x_lo), (y_hi, x_hi)], strict=True)]
        if grid_h * grid_w == 0:
            continue
        if is_max:
            val = np.maximum(np.maximum(terms[0], terms[1]), np.maximum(terms[2], terms[3]))
            out[r] = val.max(axis=(2, 4))
        else:
            val = ((terms[0] + terms[1]) + terms[2]) + terms[3]
            out[r] = val.sum(axis=(2, 4), dtype=dt) / count
    return out


RULES: dict[type[vision.VisionOp], Callable[..., np.ndarray | list[np.ndarray]]] = {
    vision.TopKOp: _topk,
    vision.SortOp: _sort,
    vision.ArgMaxOp: _arg_extreme,
    vision.ArgMinOp: _arg_extreme,
    vision.ScanOp: _scan,
    vision.NmsOp: _nms,
    vision.RoiAlignOp: _roi_align,
}

__all__ = ["RULES", "nms_select", "stable_argsort", "suppresses"]
