"""`vision-default-schedule`: the untuned heuristic, and the only place one lives.

Fills `schedule = #vision.schedule<{...}>` on every kernel-producing op that has none (a tuner
record may already have put one there), on tensors or on bufferized memrefs alike. It fills
exactly the keys the op's lowering reads (see each lowering module's docstring).

The heuristic depends on the device kind (option ``device_type``; ``auto`` asks the OpenCL
runtime which device it will run on):

* register tiles (conv2d ``tile_oc x tile_ow``, matmul ``tile_m x tile_n``) as large as the
  accumulator budget allows while the kernel keeps enough threads to fill the device, never
  wasting more than 1/8 of the columns on a ragged last tile;
* GPUs: scalar threads (consecutive threads on consecutive output columns coalesce);
  CPUs: ``vec`` lanes per register column (8 by default, narrower where the output is
  narrow), because a CPU OpenCL driver runs a thread as one core's loop and does not
  vectorize across threads that contain loops;
* work-group size: the largest power of two <= ``max_workgroup_size`` that still gives enough
  work-groups for all compute units, at least one warp/wavefront (32) on GPUs, and no larger than the
  thread count needs;
* unroll hints where trip counts are small or the body is short;
* GPUs, conv2d with groups = 1 and matmul with large enough M, N and K: the implicit GEMM
  staged through work-group memory (conv_staged.py / matmul_staged.py): 4x4 accumulators
  per thread, 64x64 blocks halved (the larger side first, down to 16) until there are enough
  work-groups for the device, then 2x4 or 2x2 per thread where the threads are still too few,
  K steps of 16; accumulators in registers (``stage = 2``) except
  on the CPU backend, which runs a group's threads in one stack frame (``stage = 1``);
* GPUs, conv2d with groups = 1 whose GEMM has at most 2^24 multiply-adds: the reduction split
  across a work-group's threads instead (``stage = 3``, split_reduction_gemm.py).
"""

from __future__ import annotations

import contextvars
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import AnyFloat, Float32Type, ModuleOp
from xdsl.passes import ModulePass

from visc.dialects.vision import (
    NORM_OPS,
    ConcatOp,
    Conv2dOp,
    GlobalPoolOp,
    LogSoftmaxOp,
    MatmulOp,
    Pool2dOp,
    ReduceOp,
    ReshapeOp,
    ScheduleAttr,
    SoftmaxOp,
    SplitOp,
    VisionOp,
    element_type_of,
    get_int,
    get_ints,
    shape_of,
)
from visc.errors import CompileError, ViscError
from visc.passes.lowering.split_reduction_gemm import SPLIT_STAGE
from visc.passes.lowering.vision_op_schedules import OPS as VISION_OPS
from visc.passes.lowering.vision_op_schedules import vision_op_schedule


@dataclass(frozen=True)
class TargetTraits:
    """What the heuristic needs to know about a device family."""

    min_threads: int  # threads a kernel should have to fill the device
    min_groups: int  # work-groups it should have (compute units x a few)
    max_accumulators: int  # register-tile budget per thread (scalars, or vectors when vec > 1)
    vec: int  # vector width of the register tile's innermost dim (1: scalar threads)
    vector_bits: int  # widest vector used (PoCL miscompiles 512-bit vectors on AVX2 targets)
    min_wg: int  # smallest work-group worth launching (a warp / wavefront on GPUs)


DEVICES: dict[str, TargetTraits] = {
    # GPUs: scalar threads, coalescing comes from consecutive threads on consecutive columns
    "gpu": TargetTraits(min_threads=8192, min_groups=64, max_accumulators=16, vec=1, vector_bits=128, min_wg=32),
    # CPUs (PoCL, the CPU backend): each thread is one core's SIMD loop, so vectorize inside it
    "cpu": TargetTraits(min_threads=64, min_groups=8, max_accumulators=16, vec=8, vector_bits=256, min_wg=8),
}
TARGETS = ("opencl", "cuda", "cpu")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _divisors(n: int, candidates: Iterable[int]) -> list[int]:
    return [c for c in candidates if c <= n and n % c == 0]


def workgroup_size(threads: int, traits: TargetTraits, max_wg: int) -> int:
    wg = 1 << max(0, max_wg.bit_length() - 1)  # largest power of two <= max_wg
    while wg > traits.min_wg and _ceil_div(threads, wg) < traits.min_groups:
        wg //= 2
    return max(1, min(wg, 1 << max(0, (threads - 1).bit_length())))


_WIDTHS = (16, 8, 4, 3, 2, 1)  # OpenCL C vector widths


@dataclass(frozen=True)
class _Tile:
    rows: int  # register rows (conv: output channels, matmul: output rows)
    cols: int  # register column groups
    vec: int  # lanes per column group
    threads: int
    efficiency: float  # useful / computed outputs along the columns

    @property
    def score(self) -> float:
        """Useful multiply-adds per unit of inner-loop cost: rows x cols (vector) FMAs against
        cols loads of the streamed operand (weighted 2: distinct addresses) and rows loads of
        the operand that is uniform across the work-group (weighted 1: broadcasts)."""
        r, c = self.rows, self.cols
        return r * c * self.vec * self.efficiency / (r * c + r + 2 * c)


def _lanes(op: VisionOp, traits: TargetTraits, target: str = "opencl") -> int:
    """The widest vector the op's element type allows on this device kind: floats of 32 and
    64 bits only (half vectors need cl_khr_fp16, which CPU drivers often lack); the CPU
    backend's are the host's registers (16 floats with AVX-512)."""
    elt = element_type_of(op.dests[0])
    bits = elt.bitwidth if isinstance(elt, AnyFloat) else 0
    if bits < 32:
        return 1
    if traits is DEVICES["cpu"] and target == "cpu":
        return max(1, min(16, cpu_vector_registers(target)[0] // bits))
    return max(1, min(traits.vec, traits.vector_bits // bits))


MAX_TILE_COLS = 8  # register column groups a tile may have


def accumulator_budget(traits: TargetTraits, target: str) -> int:
    """Register-tile accumulators per thread: the device family's budget, and on the CPU
    backend at most half the host's vector registers (as `_packed_conv`'s tiles): 16
    accumulators on AVX2's 16 ymm registers spill (Zen 1, ResNet-50's 256 -> 128 1x1 conv
    over 56x56 as an 8x2 column tile: 6.2 ms, 4x3: 3.2 ms; 4x2 tiles another 1-2% on
    MobileNetV2, EfficientNet-B0, SqueezeNet, ShuffleNet)."""
    if traits is DEVICES["cpu"] and target == "cpu":
        return min(traits.max_accumulators, cpu_vector_registers(target)[1] // 2)
    return traits.max_accumulators


def _pick_tile(rows: list[int], width: int, vec_limit: int, threads_at, traits: TargetTraits,
               max_cols: int = MAX_TILE_COLS, *, budget: int) -> _Tile:
    """The register tile with the best inner-loop score among those within `budget`
    accumulators (`accumulator_budget`) that keep `threads_at(rows, col_threads) >=
    min_threads`; else the tile with most threads. `width` is the extent of the vectorized,
    cyclically distributed dim."""
    options = []
    for vec in _WIDTHS:
        if vec > min(vec_limit, width):
            continue
        groups = _ceil_div(width, vec)
        for cols in range(1, min(groups, max_cols) + 1):
            col_threads = _ceil_div(groups, cols)
            for r in rows:
                if r * cols > budget:
                    continue
                eff = width / (col_threads * cols * vec)
                options.append(_Tile(r, cols, vec, threads_at(r, col_threads), eff))
    enough = [t for t in options if t.threads >= traits.min_threads]
    if enough:
        return max(enough, key=lambda t: (round(t.score, 6), t.efficiency, t.rows))
    return max(options, key=lambda t: (t.threads, t.score))


def _staged(m: int, n: int, k: int, traits: TargetTraits, max_wg: int, target: str) -> dict[str, int] | None:
    """The staged GEMM schedule of an M x N x K problem on a GPU, None where it does not pay
    (too small to share tiles between threads, or a CPU device)."""
    if traits is not DEVICES["gpu"] or m < 16 or n < 16 or k < 32 or m * n < 4096:
        return None
    tm = tn = 4
    bm, bn = (64 if m >= 64 else 32 if m >= 32 else 16), (64 if n >= 64 else 32 if n >= 32 else 16)
    bk = 16 if k >= 16 else 8
    # too few blocks to fill the device (deep layers at batch 1): split K first, keeping the
    # large blocks' reuse, while each K-slice keeps >= 8 tiles of work
    split = 1
    while _ceil_div(m, bm) * _ceil_div(n, bn) * split < 2 * traits.min_groups and k >= 2 * split * 8 * bk:
        split *= 2
    while _ceil_div(m, bm) * _ceil_div(n, bn) * split < traits.min_groups and max(bm, bn) > 16:
        if bn >= bm:
            bn //= 2
        else:
            bm //= 2
    groups = _ceil_div(m, bm) * _ceil_div(n, bn) * split
    # still too few threads to fill the device (small images, batch 1): smaller thread tiles
    while groups * (bm // tm) * (bn // tn) < traits.min_threads and tm * tn > 4 and (bm // tm) * (bn // tn) < max_wg:
        if tm >= tn:
            tm //= 2
        else:
            tn //= 2
    while (bm // tm) * (bn // tn) > max_wg:  # a device with small work-groups: larger thread tiles
        if tn <= tm:
            tn *= 2
        else:
            tm *= 2
    return {"stage": 1 if target == "cpu" else 2, "block_m": bm, "block_n": bn, "tile_k": bk,
            "wg": (bm // tm) * (bn // tn), "unroll_k": 0, "tm": tm, "tn": tn, "split_k": split}


# A conv GEMM of at most this many multiply-adds is latency-bound on a GPU: too few outputs
# for the staged kernel's blocks, each with a long reduction (MobileNetV2 at batch 1)
SMALL_GEMM_FMAS = 1 << 24


def _split_reduction(m: int, n: int, k: int, traits: TargetTraits, max_wg: int,
                     target: str) -> dict[str, int] | None:
    """The ``stage = 3`` schedule (the reduction split across a work-group's threads) of a
    small conv GEMM on a GPU, None where the staged kernel is the better default.

    Measured on the H100 over every groups=1 conv of ResNet-50 and MobileNetV2 at batch 1 and
    8 (scripts/gpu/heuristic_probe.py): each of the 17 convs of at most 2^24 multiply-adds ran
    1.2-3.8x faster with it than with the staged kernel; above 2^24 it lost as often as it
    won. GPU targets only (the CPU backend keeps the staged kernel, as its GPU heuristics are
    a test configuration). The slices stay 12 or more elements long: 16 threads per output
    group from K = 192, 8 below, with wider tiles where K is short and the threads' own work
    is small."""
    if traits is not DEVICES["gpu"] or target == "cpu" or k < 32 or m * n * k > SMALL_GEMM_FMAS:
        return None
    tm, tn, bn, rk = (2, 1, 16, 16) if k >= 192 else (4, 1, 32, 8) if k >= 96 else (4, 2, 64, 8)
    while (bn // tn) * rk > max_wg and rk > 1:
        rk //= 2
    while (bn // tn) * rk > max_wg and bn > tn:
        bn //= 2
    return {"stage": SPLIT_STAGE, "tile_oc": tm, "tile_ow": tn, "block_n": bn, "threads_k": rk, "unroll_k": 4,
            "wg": (bn // tn) * rk}


_VECTOR_BITS: contextvars.ContextVar[int] = contextvars.ContextVar("vector_bits", default=0)


def cpu_vector_registers(target: str) -> tuple[int, int]:
    """(vector bits, vector registers) of the CPU that runs `target`'s kernels: the host's
    for the CPU backend; AVX2's for PoCL, which compiles for 16 ymm registers here (and fails
    to build 512-bit vector kernels). `DefaultSchedulePass`'s ``vector_bits`` stands in for
    the host's while it runs (IR tests pin one ISA's heuristic)."""
    if target == "cpu":
        bits = _VECTOR_BITS.get()
        if not bits:
            from visc.backends.cpu import host_vector_bits

            bits = host_vector_bits()
        return bits, 32 if bits == 512 else 16
    return 256, 16


@functools.cache
def cpu_backend_threads() -> int:
    """Threads a CPU backend kernel needs to keep this host's cores busy: `GRAINS_PER_THREAD`
    grains for each of the executor's threads (the runtime cuts a launch into as many)."""
    from visc.runtime.cpu import default_threads
    from visc.runtime.cpu_workers import GRAINS_PER_THREAD

    return GRAINS_PER_THREAD * default_threads()


def _packed_conv(op: VisionOp, traits: TargetTraits, max_wg: int, target: str, oh: int, ow: int) -> dict[str, int] | None:
    """The packed-weight conv schedule (conv_packed.py) on a CPU: channel vectors as wide as
    the registers, and the tile with the most useful accumulators within half the vector
    registers (more spills: measured on AVX-512 and in PoCL), ties broken by FMAs per load
    (the CPU backend ranks its own way, below); None where the channels of a group do not
    fill a vector."""
    if not isinstance(element_type_of(op.dests[0]), Float32Type):
        return None
    bits, regs = cpu_vector_registers(target)
    n, o = shape_of(op.dests[0])[:2]
    og = o // get_int(op, "groups", 1)
    lanes = next((v for v in (16, 8, 4) if v * 32 <= bits and og % v == 0), 0)
    if not lanes:
        return None
    # AVX2 over a large input plane: four channel vectors by three columns (`CPU_WIDE_TILE_PLANE`)
    wide = target == "cpu" and regs <= 16 and math.prod(shape_of(op.ins[0])[2:]) >= CPU_WIDE_TILE_PLANE
    budget = regs // 2 if regs > 16 else (12 if wide else 10)
    options = []
    for nvec in (1, 2, 4):
        if og % (nvec * lanes):
            continue
        for tow in range(1, min(ow, 16) + 1):
            if nvec * tow > budget:
                continue
            tiles = _ceil_div(ow, tow)
            threads = n * (o // (nvec * lanes)) * oh * tiles
            eff = ow / (tiles * tow)
            if target == "cpu":
                # the CPU backend: two channel vectors by the most useful columns, then the
                # least waste (2x8 at 56, 2x7 at 28 and 13). Measured against the 4x4 the general
                # rank picks, AVX-512, ResNet's 3x3 convs: 64 channels at 112x112 1.9 vs 2.65 ms,
                # 128 at 28x28 0.51 vs 0.88, 512 at 7x7 0.64 vs 0.72 (a tile over fewer columns
                # re-reads its weights more). Enough threads is a few grains per core of this
                # host (`cpu_backend_threads`), not PoCL's 64: 1152 -> 192 at 7x7 ran 2x4 tiles
                # for 78 threads in 82 us, 2x7 for 42 in 54 us on 2 cores
                rank: tuple[object, ...] = (threads >= cpu_backend_threads(), nvec == (4 if wide else 2),
                                            round(eff * tow, 2), eff)
            else:
                rank = (threads >= traits.min_threads, round(eff * nvec * tow, 2), nvec * tow / (nvec + tow))
            options.append((rank, nvec, tow, threads))
    if not options:
        return None
    _, nvec, tow, threads = max(options)
    return {"pack": lanes, "tile_oc": nvec * lanes, "tile_ow": tow, "unroll_k": 1, "unroll_win": 1,
            "wg": workgroup_size(threads, traits, max_wg)}


# input planes from which AVX2 hosts run packed convs as 4 x 3 tiles, not 2 x 5: half the
# passes over an input that overflows the L2 (Zen 1: 256 -> 256 3x3 at 56x56 66.6 -> 58.6 ms,
# 64 -> 64 at 224x224 73.5 -> 68.2; VGG-19 6% faster, ResNet-18 3%; at 28x28 even, at 14x14
# and 7x7 the narrower tiles ahead by 11-13%)
CPU_WIDE_TILE_PLANE = 56 * 56

DEPTHWISE_ROWS = 4  # output rows per thread of a CPU depthwise conv (conv_depthwise.py)

# a stride-1 conv whose reduction (channels x window) is shorter than this runs with column
# vectors on the CPU backend (measured on AVX-512: 27 taps 22x faster, 144 and 288 even)
CPU_COLUMN_REDUCTION = 64
# ... at strides up to this (a strided column vector is that many whole-vector loads and a
# shuffle: MobileNetV2's 3 -> 32 3x3 stem at stride 2 128 -> 122 us in the model, 96 alone)
CPU_COLUMN_STRIDE = 2
# ... when it has fewer output channels than this: with more, channel vectors fill whole
# registers four at a time, and a strided stem ran faster packed (SqueezeNet 1.1's 3 -> 64
# at stride 2: the model 0.96x; 3 -> 16, 24 and 32 stems stay faster on columns)
CPU_STRIDED_COLUMN_OC = 64
# ... with column tiles one vector wide: wider ones measured up to 1.6x slower alone
# (MobileNetV2's 3 -> 32 stem: (8, 1) 84 us, the score's pick (8, 2) 130), 2-3% on the
# models with such a stem (MobileNetV2, EfficientNet-B0, MNASNet, ShuffleNetV2)
CPU_STRIDED_COLS = 1
# ... but a 1x1 conv over at most this many pixels with at least this many input channels
# keeps channel vectors where its channels fill whole registers: a 7x7 row wastes a quarter
# of its column lanes, and a column tile's inputs stream from the L2 (AVX-512, 2 cores:
# 512 -> 2048 at 7x7 269 -> 220 us, 960 -> 160 50 -> 38 us). At 14x14 single convs gained
# too (384 -> 64 46 -> 27 us) but whole models did not measurably, and DenseNet-121's 41
# such convs took its cold compile from 8 to 11 s; at 28x28 columns stay ahead or even
CPU_PACKED_PLANE = 49
CPU_PACKED_REDUCTION = 128
# On 256-bit hosts (AVX2) channel vectors win such 1x1 convs up to 14x14 (Zen 1: 1024 -> 256
# at 14x14 2.63 -> 1.54 ms, onnxruntime 1.43; DenseNet-121 and ResNet-50 6% faster). Larger
# planes gained 2-4% more (512 -> 128 at 28x28 1.73 -> 1.64 ms) but DenseNet-121's cold
# compile went from 15.2 to 16.0 s
CPU_PACKED_PLANE_256 = 196


def cpu_packed_plane(target: str) -> int:
    """Largest plane of a 1x1 conv that keeps channel vectors (`CPU_PACKED_PLANE`)."""
    return CPU_PACKED_PLANE_256 if cpu_vector_registers(target)[0] <= 256 else CPU_PACKED_PLANE


def _conv2d(op: VisionOp, traits: TargetTraits, max_wg: int, target: str = "opencl") -> dict[str, int]:
    from visc.passes.lowering.conv import flattenable
    from visc.passes.lowering.conv_depthwise import DEPTHWISE_WIDTHS, flat_depthwise, is_depthwise
    from visc.passes.lowering.conv_staged import gemm_sizes

    if get_int(op, "groups", 1) == 1:
        sizes = gemm_sizes(op)
        split = _split_reduction(*sizes, traits, max_wg, target)
        if split is not None:
            return split
        staged = _staged(*sizes, traits, max_wg, target)
        if staged is not None:
            staged["tile_oc"], staged["tile_ow"] = staged.pop("tm"), staged.pop("tn")
            return staged

    n, o, oh, ow = shape_of(op.dests[0])
    groups = get_int(op, "groups", 1)
    cg = shape_of(op.ins[1])[1]
    kh, kw = shape_of(op.ins[1])[2:]
    og = o // groups
    flat = flattenable(op)  # 1x1 convs: one long row of columns
    if flat:
        oh, ow = 1, oh * ow

    # the CPU backend's 1x1 convs are a GEMM over one long row: column vectors store whole
    # vectors, while channel vectors (packed) leave lane by lane, which costs more than the
    # multiply-adds when the input has few channels (EfficientNet-B0: 12 -> 6 ms); so do
    # convs at stride 1 or 2 with a short reduction (VGG's 3 -> 64 3x3 at 224: 11.3 -> 0.5 ms;
    # CPU_COLUMN_STRIDE). Rows shorter than a vector (squeeze-and-excitation's 1x1 images)
    # keep channel vectors
    sh, sw = get_ints(op, "strides")
    lanes = _lanes(op, traits, target)
    columns = target == "cpu" and ow >= lanes and (
        (flat and (ow > cpu_packed_plane(target) or cg < CPU_PACKED_REDUCTION or og % lanes))
        or ((sw == 1 or sw <= CPU_COLUMN_STRIDE and og < CPU_STRIDED_COLUMN_OC) and cg * kh * kw < CPU_COLUMN_REDUCTION))
    if traits is DEVICES["cpu"] and not columns:
        packed = _packed_conv(op, traits, max_wg, target, oh, ow)
        if packed is not None:
            if flat:
                packed["flat"] = 1
            return packed

    def threads(toc: int, col_threads: int) -> int:
        return n * (o // toc) * oh * col_threads

    if target == "cpu" and is_depthwise(op, cg, og):
        # the CPU backend's depthwise convs: a thread per channel and block of rows
        # (conv_depthwise.py), vectors as wide as the registers and the output row allow;
        # rows shorter than a vector walk the plane as one flat row where the window allows
        # (AVX-512: EfficientNet-B0's 5x5 over 1152 channels at 7x7 92 -> 42 us, 3x3 65 -> 24,
        # 5x5 over 672 at 14x14 139 -> 90; the model 0.92x, EfficientNetV2-S 0.83x)
        if ow < lanes <= oh * ow and flat_depthwise(op):
            return {"wg": workgroup_size(n * o, traits, max_wg), "rows": 1, "flat": 1, "vec": lanes}
        vec = next((v for v in DEPTHWISE_WIDTHS[::-1] if v <= min(lanes, ow)), 0)
        if vec:
            rows = min(oh, DEPTHWISE_ROWS)
            return {"wg": workgroup_size(n * o * _ceil_div(oh, rows), traits, max_wg), "rows": rows, "vec": vec}

    if traits is DEVICES["gpu"] and og == 1:
        # depthwise on a GPU: one output per thread. A thread's outputs share no weights,
        # so a register tile only cuts the threads that hide memory latency (H100, MobileNetV2's
        # strided 3x3: 11 us with 8 columns per thread, 6 us with one)
        return {"wg": workgroup_size(threads(1, ow), traits, max_wg), "tile_oc": 1, "tile_ow": 1,
                "unroll_k": 0 if cg <= 16 else 1, "unroll_win": 0 if kh * kw <= 9 else 1}

    strided_cols = CPU_STRIDED_COLS if columns and sw > 1 else MAX_TILE_COLS
    tile = _pick_tile(_divisors(og, (8, 4, 2, 1)), ow, lanes, threads, traits, strided_cols,
                      budget=accumulator_budget(traits, target))
    sched = {
        "wg": workgroup_size(tile.threads, traits, max_wg),
        "tile_oc": tile.rows,
        "tile_ow": tile.cols,
        # scalar tiles profit from unrolled channel loops; vector tiles already fill the
        # registers (measured on PoCL/AVX-512: the hint costs 10-20% there)
        "unroll_k": 1 if tile.vec > 1 else (4 if cg >= 4 else 0),
        "unroll_win": 0 if kh * kw <= 9 and cg < 4 else 1,
    }
    if tile.vec > 1:
        sched["vec"] = tile.vec
    if flat:
        sched["flat"] = 1
    return sched


def _matmul(op: VisionOp, traits: TargetTraits, max_wg: int, target: str = "opencl") -> dict[str, int]:
    out = shape_of(op.dests[0])
    m, nn = out[-2], out[-1]
    a = shape_of(op.ins[0])
    kk = a[-2] if get_int(op, "transpose_a", 0) else a[-1]
    batch = math.prod(out[:-2])
    staged = _staged(m, nn, kk, traits, max_wg, target)
    if staged is not None:
        staged["tile_m"], staged["tile_n"] = staged.pop("tm"), staged.pop("tn")
        return staged
    row_cands = [r for r in (4, 2, 1) if r <= m and ((_ceil_div(m, r) * r - m) * 8 <= m or r == 1)]

    def threads(tm: int, col_threads: int) -> int:
        return batch * _ceil_div(m, tm) * col_threads

    if get_int(op, "transpose_b", 0):  # vectors run along k: every column is its own group
        tile = _pick_tile(row_cands, nn, 1, threads, traits, budget=accumulator_budget(traits, target))
        vec = next((v for v in _WIDTHS if v <= min(_lanes(op, traits), kk)), 1)
    else:
        tile = _pick_tile(row_cands, nn, _lanes(op, traits), threads, traits,
                          budget=accumulator_budget(traits, target))
        vec = tile.vec
    sched = {"wg": workgroup_size(tile.threads, traits, max_wg), "tile_m": tile.rows, "tile_n": tile.cols,
             "unroll_k": 4}
    if vec > 1:
        sched["vec"] = vec
    return sched


def _threads(op: VisionOp) -> int:
    """Thread count of the op's (largest) kernel, for ops with one thread per element/row."""
    if isinstance(op, ConcatOp):
        return max(math.prod(shape_of(v)) for v in op.ins)
    if isinstance(op, SplitOp):
        return max(math.prod(shape_of(v)) for v in op.dests)
    if isinstance(op, SoftmaxOp | LogSoftmaxOp):
        x = shape_of(op.ins[0])
        axis = get_int(op, "axis", -1) % len(x)
        return math.prod(x) // max(1, x[axis])
    return math.prod(shape_of(op.dests[0]))


def _row_norm(op: VisionOp, traits: TargetTraits, max_wg: int) -> dict[str, int]:
    """layer_norm / group_norm (row_norm.py). CPUs: a thread per row with a vector's worth of
    independent partial sums (a CPU runs a work-group on one core, so sharing a row gains no
    parallelism and loses contiguous access). GPUs: a thread per row where the rows alone fill
    the device or are too short to give a warp two elements per thread; else a work-group per
    row with a thread per 4 elements (group norm's few long rows; layer norm's thousands of
    rows of a hundred channels)."""
    from visc.passes.lowering.row_norm import row_shape

    dims, n = row_shape(op)
    rows = math.prod(dims)
    if traits is DEVICES["cpu"]:
        return {"wg": workgroup_size(max(1, rows), traits, max_wg), "coop": 0, "partials": max(1, min(traits.vec, n))}
    if rows >= traits.min_threads or n < 2 * traits.min_wg:
        return {"wg": workgroup_size(max(1, rows), traits, max_wg), "coop": 0}
    wg = 1 << max(0, min(max_wg.bit_length() - 1, (_ceil_div(n, 4) - 1).bit_length()))
    return {"wg": wg, "coop": 1}


def default_schedule(op: VisionOp, device_type: str = "gpu", max_workgroup_size: int = 256,
                     target: str = "opencl") -> dict[str, int]:
    """The heuristic schedule of one op (only the keys its lowering reads) for `target`."""
    from visc.passes.lowering.vision_to_loops import schedule_keys

    traits = DEVICES[device_type]
    if isinstance(op, Conv2dOp):
        sched = _conv2d(op, traits, max_workgroup_size, target)
    elif isinstance(op, MatmulOp):
        sched = _matmul(op, traits, max_workgroup_size, target)
    elif isinstance(op, Pool2dOp):
        out = shape_of(op.dests[0])
        # fewest column groups; integer max pools stay scalar (_lanes is 1 for them)
        vec = max(v for v in _WIDTHS if v <= min(_lanes(op, traits), out[-1]))
        sched = {"wg": workgroup_size(math.prod(out[:-1]) * _ceil_div(out[-1], vec), traits, max_workgroup_size),
                 "unroll_win": 0 if math.prod(get_ints(op, "kernel")) <= 9 else 1}
        if vec > 1:
            sched["vec"] = vec
    elif isinstance(op, NORM_OPS):
        sched = _row_norm(op, traits, max_workgroup_size)
    elif isinstance(op, VISION_OPS):
        sched = vision_op_schedule(op, lambda t: workgroup_size(max(1, t), traits, max_workgroup_size),
                                   max_workgroup_size, device_type)
    else:
        sched = {"wg": workgroup_size(max(1, _threads(op)), traits, max_workgroup_size)}
        if isinstance(op, GlobalPoolOp) and traits is DEVICES["cpu"]:
            # a thread per plane with independent sums: 4 beat 16 on AVX-512 (1x96x112x112:
            # 86 us against 130, and 286 with one chain)
            sched["partials"] = max(1, min(4, math.prod(shape_of(op.ins[0])[2:])))
        if isinstance(op, ReduceOp):
            sched["unroll_k"] = 1
    keys = schedule_keys(op)
    return {k: v for k, v in sched.items() if k in keys}


def opencl_device_type(spec: str = "") -> str:
    """"cpu" or "gpu" for the OpenCL device `spec` selects (visc.runtime.devices rules);
    "gpu" when no OpenCL runtime or device is available."""
    try:
        import pyopencl as cl

        from visc.runtime.devices import select_device

        device = select_device(spec or None)
    except (ImportError, ViscError):
        return "gpu"
    return "cpu" if device.type & cl.device_type.CPU else "gpu"


def _host_accumulators(vop: VisionOp) -> None:
    """A given ``stage = 2`` schedule on target cpu becomes ``stage = 1``: the CPU backend runs
    a work-group's threads one after another through one stack frame, so per-thread private
    accumulators kept across barriers would be shared (as for ops placed on the CPU)."""
    sched = vop.attributes["schedule"]
    if isinstance(sched, ScheduleAttr) and sched.get("stage", 0) == 2:
        vop.attributes["schedule"] = ScheduleAttr({**sched.as_dict(), "stage": 1})


@dataclass(frozen=True)
class DefaultSchedulePass(ModulePass):
    """Options: ``target`` (opencl | cuda | cpu), ``device_type`` (gpu | cpu | auto: for
    opencl, the kind of the device ``device`` selects; cuda is gpu, cpu is cpu),
    ``device`` (an OpenCL device spec for auto), ``max_workgroup_size``, ``vector_bits``
    (target cpu: the registers' width, 256 for AVX2 or 512 for AVX-512; 0, the default: the
    host's). Given schedules are kept, except that target cpu runs ``stage = 2`` as
    ``stage = 1`` (`_host_accumulators`)."""

    name = "vision-default-schedule"

    target: str = "opencl"
    device_type: str = "auto"
    device: str = ""
    max_workgroup_size: int = 256
    vector_bits: int = 0

    def resolved_device_type(self) -> str:
        if self.device_type != "auto":
            return self.device_type
        if self.target == "opencl":
            return opencl_device_type(self.device)
        return "gpu" if self.target == "cuda" else "cpu"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.target not in TARGETS:
            raise CompileError(f"vision-default-schedule: unknown target '{self.target}' "
                               f"(known: {', '.join(TARGETS)})")
        if self.device_type not in (*DEVICES, "auto"):
            raise CompileError(f"vision-default-schedule: unknown device_type '{self.device_type}' "
                               f"(known: {', '.join(DEVICES)}, auto)")
        if self.max_workgroup_size < 1:
            raise CompileError("vision-default-schedule: max_workgroup_size must be >= 1")
        if self.vector_bits not in (0, 128, 256, 512):
            raise CompileError(f"vision-default-schedule: vector_bits={self.vector_bits} (one of 128, 256, 512; "
                               f"0: the host's)")
        token = _VECTOR_BITS.set(self.vector_bits)
        try:
            self._fill(op)
        finally:
            _VECTOR_BITS.reset(token)

    def _fill(self, op: ModuleOp) -> None:
        from visc.passes.lowering.vision_to_loops import schedule_keys

        device_type = self.resolved_device_type()
        for vop in op.walk():
            if not isinstance(vop, VisionOp) or isinstance(vop, ReshapeOp):
                continue
            if "schedule" in vop.attributes:
                if self.target == "cpu":
                    _host_accumulators(vop)
                continue
            if not schedule_keys(vop):
                continue
            vop.attributes["schedule"] = ScheduleAttr(default_schedule(vop, device_type, self.max_workgroup_size,
                                                                           self.target))
