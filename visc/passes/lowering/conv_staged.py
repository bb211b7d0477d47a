"""conv2d (groups = 1) as an implicit GEMM (``stage >= 1``): staged through work-group memory
(``stage`` 1, 2) or with the reduction split across a work-group's threads (``stage = 3``).

``M`` = output channels, ``N`` = output pixels of the whole batch (``n * OH * OW``), ``K`` =
``C * KH * KW``. ``A`` is the weight viewed as an ``O x K`` matrix (contiguous along k); ``B`` is
the input im2col'd on the fly: column ``p`` = (image, oh, ow), row ``k`` = (c, kh, kw), zero
where the window lies in the padding. The GEMM engine (`visc.passes.lowering.staged_gemm`,
or `visc.passes.lowering.split_reduction_gemm` for ``stage = 3``) reads both and accumulates; each output then gets the bias and the fused epilogue
(`common.epilogue`) and is stored. Batch-1 layers with few pixels (ResNet's 7x7 stages) still
get several work-groups along N because all images share one N dimension.

Schedule keys read when ``stage >= 1`` (conv.py's docstring lists the others):

* ``stage``    0: conv.py's register-tiled kernel; 1: staged, accumulators in work-group memory
               (any backend); 2: staged, accumulators in registers (GPU targets; an op placed
               on the CPU backend is lowered as stage 1); 3: the reduction split across
               threads (keys below).
* ``block_m``  output channels per work-group.
* ``block_n``  output pixels per work-group.
* ``tile_k``   K step staged per barrier pair.
* ``tile_oc``  output channels per thread (TM; divides block_m).
* ``tile_ow``  output pixels per thread (TN; divides block_n).
* ``wg``       must equal ``(block_m / tile_oc) * (block_n / tile_ow)``.
* ``unroll_k`` 0: the K step is unrolled while building; else the hint on its loop.
* ``split_k``  K-slices summed by a second kernel (1: none), for layers with few blocks.

``vec`` must stay 1, ``flat`` 0, ``unroll_win`` 1 (the window is part of K), ``pack`` 0 and
``threads_k`` 1; the weight must not be stored packed (``packed_oc``).

Keys read when ``stage = 3`` (``block_m``, ``tile_k``, ``split_k`` keep their defaults):

* ``tile_oc``   output channels per work-group, all of them in every thread (TM).
* ``tile_ow``   output pixels per thread (TN; divides block_n).
* ``block_n``   output pixels per work-group.
* ``threads_k`` threads sharing each pixel group's reduction, each summing one slice of K.
* ``wg``        must equal ``(block_n / tile_ow) * threads_k``.
* ``unroll_k``  K elements per loop step of a slice (0: the whole slice, up to 64).
"""

from __future__ import annotations

from xdsl.ir import SSAValue

from visc.dialects.vision import VisionOp, get_int
from visc.passes.lowering.common import Problems, Schedule, elt, epilogue, kernel_hint, node_name
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder
from visc.passes.lowering.split_reduction_gemm import (
    SPLIT_STAGE,
    SplitReductionGemm,
    check_split,
    split_tiles,
)
from visc.passes.lowering.staged_gemm import StagedGemm, check_staged, staged_tiles
from visc.passes.lowering.workgroup import GroupBuilder, byte_size

NEUTRAL = (("vec", 1), ("flat", 0), ("unroll_win", 1), ("pack", 0))


def gemm_sizes(op: VisionOp) -> tuple[int, int, int]:
    """(M, N, K) of the conv's implicit GEMM."""
    from visc.passes.lowering.conv import _geometry

    g = _geometry(op)
    return g.o, g.n * g.oh * g.ow, g.cg * g.kh * g.kw


def check_conv2d_staged(op: VisionOp, sched: Schedule) -> Problems:
    problems: Problems = []
    stage = sched.get("stage", 0)
    if stage not in (1, 2, SPLIT_STAGE):
        return [f"schedule stage={stage} is illegal (0, 1, 2 or {SPLIT_STAGE})"]
    if get_int(op, "groups", 1) != 1:
        return [f"schedule stage={stage} needs groups = 1 (this conv has {get_int(op, 'groups', 1)})"]
    if "wg" not in sched.values:
        return ["schedule has no 'wg' (work-group size)"]
    if get_int(op, "packed_oc", 0):
        return [f"schedule stage={stage} reads the weight as an O x K matrix: it must not be packed (packed_oc)"]
    if stage == SPLIT_STAGE:
        check_split(problems, sched, "tile_oc", "tile_ow", gemm_sizes(op)[2], byte_size(elt(op.dests[0])),
                    other_keys=NEUTRAL)
    else:
        check_staged(problems, sched, "tile_oc", "tile_ow", byte_size(elt(op.dests[0])),
                     other_keys=(*NEUTRAL, ("threads_k", 1)))
    return problems


def lower_conv2d_staged(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    from visc.passes.lowering.conv import _clamped, _geometry

    g = _geometry(op)
    m, n, kk = gemm_sizes(op)
    x, w, out = op.ins[0], op.ins[1], op.outs[0]
    bias = op.ins[2] if len(op.ins) == 3 else None
    fuse = list(op.fuse)
    node = node_name(op)
    w_mat = fl.view(w, (g.o, kk), node + ":gemm_w")
    pixels = g.oh * g.ow
    window = g.kh * g.kw
    pointwise = (g.kh, g.kw, g.sh, g.sw, g.pt, g.pl) == (1, 1, 1, 1, 0, 0) and g.oh == g.h and g.ow == g.w
    x_rows = fl.view(x, (g.n, g.c, g.h * g.w), node + ":gemm_x") if pointwise else x

    def pixel(k: GroupBuilder, p: Idx) -> tuple[Idx, Idx]:
        """(image, pixel within the image) of GEMM column p."""
        return (0, p) if g.n == 1 else (k.div(p, pixels), k.rem(p, pixels))

    def load_a(k: GroupBuilder, _b: list[Idx], row: Idx, col: Idx) -> SSAValue:
        return k.load(w_mat, [row, col])

    def load_b(k: GroupBuilder, _b: list[Idx], kidx: Idx, p: Idx) -> SSAValue:
        img, q = pixel(k, p)
        if pointwise:
            return k.load(x_rows, [img, kidx, q])
        c = k.div(kidx, window)
        r = k.rem(kidx, window)
        kh, kw = k.div(r, g.kw), k.rem(r, g.kw)
        oh, ow = k.div(q, g.ow), k.rem(q, g.ow)
        ih, row_ok = _clamped(k, k.add(k.sub(k.mul(oh, g.sh), g.pt), k.mul(kh, g.dh)),
                              -g.pt, (g.oh - 1) * g.sh - g.pt + (g.kh - 1) * g.dh, g.h)
        iw, col_ok = _clamped(k, k.add(k.sub(k.mul(ow, g.sw), g.pl), k.mul(kw, g.dw)),
                              -g.pl, (g.ow - 1) * g.sw - g.pl + (g.kw - 1) * g.dw, g.w)
        value = k.load(x, [img, c, ih, iw])
        return k.select(k.and_(row_ok, col_ok), value, k.const(0.0, elt(out)))

    def store(k: KernelBuilder, _b: list[Idx], oc: Idx, p: Idx, acc: SSAValue) -> None:
        img, q = pixel(k, p)
        oh, ow = k.div(q, g.ow), k.rem(q, g.ow)
        v = k.fadd(acc, k.load(bias, [oc])) if bias is not None else acc
        idx = [img, oc, oh, ow]
        k.store(epilogue(k, op, v, idx, fuse), out, idx)

    if sched.get("stage", 0) == SPLIT_STAGE:
        split = split_tiles(sched, "tile_oc", "tile_ow")
        SplitReductionGemm(m, n, kk, [], split, elt(out), load_a, load_b, store).build(fl, kernel_hint(op))
        return
    tiles = staged_tiles(sched, "tile_oc", "tile_ow", op)
    StagedGemm(m, n, kk, [], tiles, elt(out), load_a, load_b, store).build(fl, kernel_hint(op))


__all__ = ["check_conv2d_staged", "lower_conv2d_staged", "gemm_sizes"]
