"""Search spaces: the legal values of each schedule key of one workload on one device.

Each key gets a fixed list of candidate values derived from the op's shapes and the device's
limits (divisors, powers of two, vector widths the device handles, work-group sizes up to its
maximum), so Optuna sees the same categorical distribution in every trial. Keys whose values
depend on each other (``tile_ow`` on ``vec``, the register budget on both tiles, the work-group
size on the thread count) are checked by `SearchSpace.problems`, which also runs the lowering's
own legality check: a proposal with problems is never built (the search records it as pruned).

The space is a tree (`Branch`): one kernel family per branch (``direct``: the plain kernels;
``packed``: conv over packed weights, CPUs; ``staged``: the local-memory GEMM), each searching
only the keys its lowering reads, with the others pinned to their neutral values and the
staged work-group size derived from the block. A flat space over the union of the keys would
make most staged proposals illegal (``wg`` must equal the block's thread count, ``vec`` must
be 1) and would let keys a kernel ignores split one kernel into many "distinct" schedules;
TPE, a *tree*-structured estimator, models each branch on its own trials.

conv2d (groups = 1) and matmul also get the staged keys (``stage``, ``block_m``, ``block_n``,
``tile_k``, ``split_k``; conv_staged.py / matmul_staged.py): staged proposals must use exactly
``(block_m / TM) * (block_n / TN)`` threads, at most the device's work-group size, and tiles
(plus, for ``stage = 1``, accumulators) that fit its local memory. ``stage = 2`` (per-thread
register arrays across barriers) is offered on GPUs only, and so is ``stage = 3`` (the
reduction split across ``threads_k`` threads, split_reduction_gemm.py), a branch of its own
(``split``) whose work-group is ``(block_n / TN) * threads_k`` threads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects.builtin import AnyFloat, ModuleOp

from visc.dialects.vision import (
    Conv2dOp,
    MatmulOp,
    Pool2dOp,
    VisionOp,
    element_type_of,
    get_int,
    shape_of,
)
from visc.passes.lowering.common import Schedule
from visc.passes.lowering.conv_staged import NEUTRAL as STAGED_CONV_NEUTRAL
from visc.passes.lowering.split_reduction_gemm import SPLIT_STAGE, split_tiles
from visc.passes.lowering.staged_gemm import STAGED_DEFAULTS

_WIDTHS = (1, 2, 4, 8, 16)  # vector widths worth searching (3 is legal but never faster)


@dataclass(frozen=True)
class DeviceLimits:
    """What a space needs to know about the device a workload is tuned on."""

    device_type: str = "cpu"  # "cpu" | "gpu": which heuristic family the default comes from
    max_workgroup_size: int = 256
    local_memory_bytes: int = 32 * 1024
    vector_bits: int = 256  # widest vector register (PoCL miscompiles 512-bit vectors on AVX2)
    max_accumulators: int = 32  # register-tile budget per thread (scalars or vectors)
    vector_registers: int = 16  # CPU vector registers (bounds packed conv tiles; 32 with AVX-512)

    @staticmethod
    def of_opencl(device: Any) -> DeviceLimits:
        """Limits of a `pyopencl.Device`."""
        import pyopencl as cl

        is_cpu = bool(device.type & cl.device_type.CPU)
        return DeviceLimits("cpu" if is_cpu else "gpu", int(device.max_work_group_size),
                            int(device.local_mem_size), 256 if is_cpu else 128)

    @staticmethod
    def for_target(target: str, device: str | None = None) -> DeviceLimits:
        if target == "opencl":
            from visc.runtime.devices import select_device

            return DeviceLimits.of_opencl(select_device(device))
        if target == "cuda":
            return DeviceLimits("gpu", 1024, 48 * 1024, 128)
        from visc.passes.lowering.default_schedule import cpu_vector_registers

        bits, registers = cpu_vector_registers("cpu")
        return DeviceLimits("cpu", 1024, 1 << 20, bits, vector_registers=registers)


def _pow2_upto(hi: int, lo: int = 1) -> list[int]:
    out, v = [], lo
    while v <= hi:
        out.append(v)
        v *= 2
    return out or [lo]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _lanes(op: VisionOp, limits: DeviceLimits) -> int:
    elt = element_type_of(op.dests[0])
    bits = elt.bitwidth if isinstance(elt, AnyFloat) else 0
    return max(1, limits.vector_bits // bits) if bits >= 32 else 1


# what a key is pinned to where its branch does not read it: what the lowerings assume of a
# schedule without it (a staged conv requires the unstaged keys at these values)
NEUTRAL = {"stage": 0, **STAGED_DEFAULTS, **dict(STAGED_CONV_NEUTRAL), "threads_k": 1}
_STAGED_ONLY = ("stage", "block_m", "block_n", "tile_k", "split_k", "threads_k")


def ordered_choices(key: str, values: list[int]) -> list[int]:
    """`values` in their natural order: ascending, with 0 ("fully") after every finite
    unroll factor, so a proposal's index tells TPE which values are neighbours."""
    return sorted(values, key=lambda v: (key.startswith("unroll") and v == 0, v))


@dataclass(frozen=True)
class Branch:
    """One kernel family of a space: the keys it searches (`choices`, ordered), the keys it
    pins (`fixed`), and whether ``wg`` follows from the block (staged: its thread count)."""

    name: str
    choices: dict[str, list[int]]
    fixed: dict[str, int]
    derived_wg: tuple[str, str] | None = None  # (tm key, tn key) of a staged block
    split: bool = False  # wg = (block_n / tn) * threads_k (stage 3) rather than the block's tiles

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.choices.values())

    def schedule(self, values: dict[str, int]) -> dict[str, int]:
        """The whole schedule of this branch with `values` for its searched keys."""
        sched = {**self.fixed, **values}
        if self.derived_wg is not None:
            tm, tn = self.derived_wg
            if self.split:
                sched["wg"] = split_tiles(Schedule(sched), tm, tn).threads
            else:
                sched["wg"] = (sched["block_m"] // sched[tm]) * (sched["block_n"] // sched[tn])
        return sched

    def values_of(self, sched: dict[str, int]) -> dict[str, int] | None:
        """The searched keys' values if `sched` is one of this branch's schedules (a key it
        lacks: neutral), else None."""
        sched = {**{k: v for k, v in NEUTRAL.items() if k in self.choices or k in self.fixed}, **sched}
        if any(k not in sched or sched[k] not in v for k, v in self.choices.items()):
            return None
        values = {k: sched[k] for k in self.choices}
        whole = self.schedule(values)
        return values if set(sched) <= set(whole) and all(sched.get(k, v) == v for k, v in whole.items()) else None


def _pow2(values: list[int]) -> list[int]:
    return [v for v in values if v & (v - 1) == 0]


def branches_of(choices: dict[str, list[int]], unroll_fully: bool = True) -> list[Branch]:
    """The kernel families of a flat space (see the module docstring); `unroll_fully`: whether
    the unstaged kernels may unroll their reduction fully (``unroll_k=0``, short loops only)."""
    ordered = {k: ordered_choices(k, v) for k, v in choices.items()}
    fixed = {k: NEUTRAL[k] for k in ordered if k in NEUTRAL and NEUTRAL[k] in ordered[k]}
    common = {k: v for k, v in ordered.items() if k not in _STAGED_ONLY and k != "pack"}
    if not unroll_fully and "unroll_k" in common:
        common["unroll_k"] = [u for u in common["unroll_k"] if u] or common["unroll_k"]
    out = [Branch("direct", common, {k: v for k, v in fixed.items() if k not in common})]
    packs = [p for p in ordered.get("pack", []) if p]
    if packs:
        searched = {"pack": packs, **{k: v for k, v in common.items() if k != "vec"}}
        searched["tile_oc"] = [v for v in searched.get("tile_oc", []) if v >= packs[0]] or searched["tile_oc"]
        out.append(Branch("packed", searched, {k: v for k, v in fixed.items() if k not in searched}))
    stages = [s for s in ordered.get("stage", []) if s]
    tm, tn = ("tile_oc", "tile_ow") if "tile_oc" in ordered else ("tile_m", "tile_n")
    staged = [s for s in stages if s != SPLIT_STAGE]
    if staged:
        top = max(ordered.get("block_m", [64]) + ordered.get("block_n", [64]))
        searched = {"stage": staged, **{k: ordered[k] for k in _STAGED_ONLY[1:] if k in ordered and k != "threads_k"},
                    tm: [v for v in _pow2(ordered[tm]) if v <= top], tn: [v for v in _pow2(ordered[tn]) if v <= top]}
        if "unroll_k" in ordered:
            searched["unroll_k"] = ordered["unroll_k"]
        pinned = {k: v for k, v in fixed.items() if k not in searched and k != "wg"}
        out.append(Branch("staged", searched, pinned, (tm, tn)))
    if SPLIT_STAGE in stages:  # after "staged": earlier studies' branch indices stay valid
        searched = {"stage": [SPLIT_STAGE], tm: [v for v in _pow2(ordered[tm]) if v <= 16],
                    tn: [v for v in ordered[tn] if v in (1, 2, 4)], "block_n": ordered["block_n"],
                    "threads_k": ordered["threads_k"], "unroll_k": [u for u in (1, 2, 4, 8, 0) if u in ordered.get("unroll_k", [1])]}
        pinned = {k: v for k, v in fixed.items() if k not in searched and k != "wg"}
        out.append(Branch("split", searched, pinned, (tm, tn), split=True))
    return out


@dataclass
class SearchSpace:
    """Candidate values per key (`choices`), for `op` (the tensor-level op of a task), and
    the tree of kernel families a search walks (`branches`)."""

    op: VisionOp
    limits: DeviceLimits
    choices: dict[str, list[int]] = field(default_factory=dict)
    checked: VisionOp | None = None  # the bufferized op the lowering's check reads (default: op)
    module: ModuleOp | None = None
    branches: list[Branch] = field(init=False)

    def __post_init__(self) -> None:
        short = not isinstance(self.op, Conv2dOp | MatmulOp) or _contraction(self.op) <= 16
        self.branches = branches_of(self.choices, unroll_fully=short)

    @property
    def size(self) -> int:
        """Schedules in the tree (before the legality check)."""
        return sum(b.size for b in self.branches)

    def propose(self, suggest: Callable[[str, int], int]) -> dict[str, int]:
        """A schedule from index proposals: `suggest(param, n)` returns an index below `n`
        (an Optuna trial's ``suggest_int(param, 0, n - 1)``). Params: ``kernel`` (which
        branch, when there are several), then ``<branch>.<key>`` for the keys it searches."""
        branch = self.branches[suggest("kernel", len(self.branches)) if len(self.branches) > 1 else 0]
        return branch.schedule({k: v[suggest(f"{branch.name}.{k}", len(v))] for k, v in branch.choices.items()})

    def params(self, sched: dict[str, int]) -> dict[str, int] | None:
        """The index params `propose` turns into `sched` (None: the tree cannot express it)."""
        for i, branch in enumerate(self.branches):
            values = branch.values_of(sched)
            if values is not None:
                params = {f"{branch.name}.{k}": branch.choices[k].index(v) for k, v in values.items()}
                return {"kernel": i, **params} if len(self.branches) > 1 else params
        return None

    def neighbors(self, sched: dict[str, int], exclude: Container[str] = ()) -> list[dict[str, int]]:
        """The legal schedules of `sched`'s kernel family one step away, whose `signature` is not
        in `exclude`: one searched key moved to the next smaller or larger of its candidates
        (the local moves refinement tries)."""
        for branch in self.branches:
            values = branch.values_of(sched)
            if values is None:
                continue
            out = []
            for k, vs in branch.choices.items():
                i = vs.index(values[k])
                for j in (i - 1, i + 1):
                    if 0 <= j < len(vs):
                        near = branch.schedule({**values, k: vs[j]})
                        if signature(near) not in exclude and not self.problems(near):
                            out.append(near)
            return out
        return []

    def sample(self, rng: Any, tries: int = 2000, exclude: Container[str] = ()) -> dict[str, int] | None:
        """A random legal schedule (branch, then each key, uniformly) whose `signature` is not
        in `exclude` (None: none found in `tries`)."""
        for _ in range(tries):
            sched = self.propose(lambda _, n: int(rng.integers(n)))
            if signature(sched) not in exclude and not self.problems(sched):
                return sched
        return None

    def problems(self, sched: dict[str, int]) -> list[str]:
        """Why `sched` cannot or should not be built (empty when it can)."""
        from visc.passes.lowering.vision_to_loops import LOWERINGS

        problems = [f"{k}={v} is not in the space {self.choices[k]}" for k, v in sched.items()
                    if k in self.choices and v not in self.choices[k]]
        problems += _constraints(self.op, self.limits, sched)
        lowering = LOWERINGS.get(type(self.op))
        if lowering is not None and not problems:
            problems += lowering.check(self.checked or self.op, Schedule(dict(sched)))
        return problems


def signature(schedule: dict[str, int]) -> str:
    """A schedule as one string (dictionary order does not matter)."""
    return json.dumps(schedule, sort_keys=True)


def _wg_choices(limits: DeviceLimits) -> list[int]:
    lo = 8 if limits.device_type == "gpu" else 1
    return _pow2_upto(min(limits.max_workgroup_size, 1024), lo)


_BLOCKS = [16, 32, 64, 128]
_TILE_K = [8, 16, 32]


_SPLIT_K = [1, 2, 4, 8, 16, 32]
_THREADS_K = [1, 2, 4, 8, 16, 32, 64]


def _staged_choices(op: VisionOp, limits: DeviceLimits) -> dict[str, list[int]]:
    k = _contraction_k(op)
    gpu = limits.device_type == "gpu"
    return {
        "stage": [0, 1, 2, SPLIT_STAGE] if gpu else [0, 1],
        "block_m": list(_BLOCKS),
        "block_n": list(_BLOCKS),
        "tile_k": list(_TILE_K),
        # K-slices: on GPUs, where few blocks leave SMs idle; each slice keeps >= 2 K tiles
        "split_k": [s for s in _SPLIT_K if s == 1 or (gpu and k >= 2 * s * min(_TILE_K))],
        # stage 3's threads per output group: on GPUs, each thread's slice keeps >= 4 elements
        "threads_k": [t for t in _THREADS_K if t == 1 or (gpu and k >= 4 * t)],
    }


def _conv2d(op: VisionOp, limits: DeviceLimits) -> dict[str, list[int]]:
    from visc.passes.lowering.conv import flattenable

    _, _, oh, ow = shape_of(op.dests[0])
    og = shape_of(op.ins[1])[0] // get_int(op, "groups", 1)
    cg = shape_of(op.ins[1])[1]
    flat = flattenable(op)
    width = oh * ow if flat else ow
    lanes = _lanes(op, limits)
    unroll_k = [1, 2, 4, 8] + ([0] if cg <= 16 else [])
    staged = _staged_choices(op, limits) if get_int(op, "groups", 1) == 1 else {"stage": [0]}
    if staged["stage"] != [0] and 0 not in unroll_k:
        unroll_k.append(0)  # the staged K step fully unrolled (stage 0 keeps 0 for short loops only)
    return {
        **staged,
        "wg": _wg_choices(limits),
        "pack": [0, *(v for v in (4, 8, 16) if og % v == 0 and v * 32 <= limits.vector_bits)]
        if limits.device_type == "cpu" else [0],
        "tile_oc": [d for d in (1, 2, 4, 8, 16, 32, 64) if og % d == 0],
        "tile_ow": list(range(1, min(16, width) + 1)),
        "vec": [v for v in _WIDTHS if v <= min(lanes, width)],
        "flat": [0, 1] if flat else [0],
        "unroll_k": [u for u in unroll_k if u == 0 or u <= cg],
        "unroll_win": [0, 1],
    }


def _matmul(op: VisionOp, limits: DeviceLimits) -> dict[str, list[int]]:
    out = shape_of(op.dests[0])
    m, n = out[-2], out[-1]
    a = shape_of(op.ins[0])
    k = a[-2] if get_int(op, "transpose_a", 0) else a[-1]
    along = k if get_int(op, "transpose_b", 0) else n
    return {
        **_staged_choices(op, limits),
        "wg": _wg_choices(limits),
        "tile_m": [t for t in (1, 2, 4, 8) if t <= m],
        "tile_n": list(range(1, min(8, n) + 1)),
        "vec": [v for v in _WIDTHS if v <= min(_lanes(op, limits), along)],
        "unroll_k": [1, 2, 4, 8, 0],
    }


def _pool2d(op: VisionOp, limits: DeviceLimits) -> dict[str, list[int]]:
    width = shape_of(op.dests[0])[-1]
    return {
        "wg": _wg_choices(limits),
        "vec": [v for v in _WIDTHS if v <= min(_lanes(op, limits), width)],
        "unroll_win": [0, 1],
    }


def _threads(op: VisionOp, sched: dict[str, int]) -> int:
    """Threads the op's kernel launches under `sched` (0: unknown)."""
    if sched.get("stage", 0):
        return 0  # staged: wg is the block's thread count (checked by _staged_constraints)
    if isinstance(op, Conv2dOp):
        n, o, oh, ow = shape_of(op.dests[0])
        if sched.get("flat", 0):
            oh, ow = 1, oh * ow
        if sched.get("pack", 0):
            return n * (o // sched.get("tile_oc", 1)) * oh * _cdiv(ow, sched.get("tile_ow", 1))
        groups = _cdiv(ow, sched.get("vec", 1))
        return n * (o // sched.get("tile_oc", 1)) * oh * _cdiv(groups, sched.get("tile_ow", 1))
    if isinstance(op, MatmulOp):
        out = shape_of(op.dests[0])
        batch, m, n = math.prod(out[:-2]), out[-2], out[-1]
        vec = 1 if get_int(op, "transpose_b", 0) else sched.get("vec", 1)
        return batch * _cdiv(m, sched.get("tile_m", 1)) * _cdiv(_cdiv(n, vec), sched.get("tile_n", 1))
    if isinstance(op, Pool2dOp):
        out = shape_of(op.dests[0])
        return math.prod(out[:-1]) * _cdiv(out[-1], sched.get("vec", 1))
    return 0


def _tile_keys(op: VisionOp) -> tuple[str, str]:
    """The keys of a GEMM lowering's per-thread rows and columns (TM, TN)."""
    return ("tile_oc", "tile_ow") if isinstance(op, Conv2dOp) else ("tile_m", "tile_n")


def _staged_constraints(op: VisionOp, limits: DeviceLimits, sched: dict[str, int]) -> list[str]:
    """Device limits of a staged proposal (the lowering checks the rest)."""
    from visc.passes.lowering.staged_gemm import Tiles, local_bytes

    conv = isinstance(op, Conv2dOp)
    tm_key, tn_key = _tile_keys(op)
    tm, tn = sched.get(tm_key, 1), sched.get(tn_key, 1)
    bm, bn = sched.get("block_m", 64), sched.get("block_n", 64)
    problems = []
    if bm % tm or bn % tn:
        return [f"thread tile {tm}x{tn} does not divide the {bm}x{bn} block"]
    tiles = Tiles(sched["stage"], bm, bn, sched.get("tile_k", 16), tm, tn)
    split = sched.get("split_k", 1)
    if split > 1 and _cdiv(_contraction_k(op), tiles.bk) < 2 * split:
        problems.append(f"split_k={split} leaves K-slices of under two {tiles.bk}-deep tiles")
    if tiles.threads > limits.max_workgroup_size:
        problems.append(f"a {bm}x{bn} block of {tm}x{tn} tiles needs {tiles.threads} threads, more than the "
                        f"device's {limits.max_workgroup_size}")
    a_k_fast = conv or not get_int(op, "transpose_a", 0)
    b_n_fast = conv or not get_int(op, "transpose_b", 0)
    need = local_bytes(tiles, element_type_of(op.dests[0]).bitwidth // 8, a_k_fast, b_n_fast)  # type: ignore[attr-defined]
    if need > limits.local_memory_bytes:
        problems.append(f"staged tiles need {need} bytes of local memory, the device has {limits.local_memory_bytes}")
    if tm * tn > limits.max_accumulators:
        problems.append(f"register tile {tm}x{tn} exceeds {limits.max_accumulators} accumulators")
    if sched.get("stage") == 2 and limits.device_type != "gpu":
        problems.append("stage=2 keeps per-thread arrays across barriers: GPU devices only")
    return problems


def _contraction(op: VisionOp) -> int:
    """The loop unroll_k unrolls in the unstaged lowerings (conv: input channels per group)."""
    if isinstance(op, Conv2dOp):
        return shape_of(op.ins[1])[1]
    a = shape_of(op.ins[0])
    return a[-2] if get_int(op, "transpose_a", 0) else a[-1]


def _contraction_k(op: VisionOp) -> int:
    """K of the op's GEMM (conv: C/groups x KH x KW)."""
    if isinstance(op, Conv2dOp):
        return math.prod(shape_of(op.ins[1])[1:])
    return _contraction(op)


def _split_constraints(op: VisionOp, limits: DeviceLimits, sched: dict[str, int]) -> list[str]:
    """Device limits of a ``stage = 3`` proposal (the lowering checks the rest)."""
    t = split_tiles(Schedule(sched), *_tile_keys(op))
    problems = []
    if t.threads > limits.max_workgroup_size:
        problems.append(f"stage=3 needs {t.threads} threads, more than the device's {limits.max_workgroup_size}")
    need = t.local_elements() * element_type_of(op.dests[0]).bitwidth // 8  # type: ignore[attr-defined]
    if need > limits.local_memory_bytes:
        problems.append(f"partial sums need {need} bytes of local memory, the device has {limits.local_memory_bytes}")
    if t.tm * t.tn > limits.max_accumulators:
        problems.append(f"register tile {t.tm}x{t.tn} exceeds {limits.max_accumulators} accumulators")
    return problems


def _constraints(op: VisionOp, limits: DeviceLimits, sched: dict[str, int]) -> list[str]:
    if sched.get("stage", 0) == SPLIT_STAGE:
        return _split_constraints(op, limits, sched)
    if sched.get("stage", 0):
        return _staged_constraints(op, limits, sched)
    problems = []
    if sched.get("split_k", 1) != 1:
        problems.append("split_k needs a staged schedule (stage >= 1)")
    if isinstance(op, Conv2dOp | MatmulOp) and sched.get("unroll_k", 1) == 0 and _contraction(op) > 16:
        problems.append(f"unroll_k=0 fully unrolls a loop of {_contraction(op)} (only loops up to 16)")
    wg = sched.get("wg", 1)
    if wg > limits.max_workgroup_size:
        problems.append(f"wg={wg} exceeds the device's {limits.max_workgroup_size} work-items")
    threads = _threads(op, sched)
    if threads and wg > max(_next_pow2(threads), 8 if limits.device_type == "gpu" else 1):
        problems.append(f"wg={wg} is larger than the {threads} threads need")
    rows = sched.get("tile_oc", sched.get("tile_m", 1))
    cols = sched.get("tile_ow", sched.get("tile_n", 1))
    pack = sched.get("pack", 0)
    if pack:  # packed conv (conv_packed.py): accumulators, weight vectors and a broadcast in registers
        nvec = max(1, rows // pack)
        if nvec * cols + nvec + 1 > limits.vector_registers:
            problems.append(f"{nvec}x{cols} channel vectors need {nvec * cols + nvec + 1} of the CPU's "
                            f"{limits.vector_registers} vector registers")
        if sched.get("vec", 1) != 1:
            problems.append("vec must be 1 with pack")
        return problems
    if rows * cols > limits.max_accumulators:
        problems.append(f"register tile {rows}x{cols} exceeds {limits.max_accumulators} accumulators")
    vec = sched.get("vec", 1)
    width = None
    if isinstance(op, Conv2dOp):
        _, _, oh, ow = shape_of(op.dests[0])
        width = oh * ow if sched.get("flat", 0) else ow
    elif isinstance(op, MatmulOp) and not get_int(op, "transpose_b", 0):
        width = shape_of(op.dests[0])[-1]
    if width is not None and cols > _cdiv(width, vec):
        problems.append(f"{cols} column groups per thread, but only {_cdiv(width, vec)} groups of {vec}")
    if vec * element_type_of(op.dests[0]).bitwidth > max(limits.vector_bits, 32):  # type: ignore[attr-defined]
        problems.append(f"vec={vec} is wider than the device's {limits.vector_bits}-bit vectors")
    return problems


def search_space(op: VisionOp, limits: DeviceLimits, checked: VisionOp | None = None) -> SearchSpace:
    """The space of `op` (only the keys its lowering reads; others keep their neutral value);
    `checked`: the same op bufferized, for the lowering's legality check."""
    from visc.passes.lowering.vision_to_loops import schedule_keys

    if isinstance(op, Conv2dOp):
        choices = _conv2d(op, limits)
    elif isinstance(op, MatmulOp):
        choices = _matmul(op, limits)
    elif isinstance(op, Pool2dOp):
        choices = _pool2d(op, limits)
    else:
        choices = {"wg": _wg_choices(limits)}
    keys = schedule_keys(op)
    return SearchSpace(op, limits, {k: v for k, v in choices.items() if k in keys}, checked)


def task_op(module: ModuleOp) -> VisionOp:
    """The one compute op of a task's module."""
    ops = [op for op in module.walk() if isinstance(op, VisionOp)]
    if len(ops) != 1:
        raise ValueError(f"a task module holds one vision op, found {len(ops)}")
    return ops[0]


def task_space(module: ModuleOp, limits: DeviceLimits) -> SearchSpace:
    """The space of a task module's op, checked on its bufferized form."""
    from visc.compiler import run_passes

    bufferized = module.clone()
    run_passes(bufferized, ["vision-bufferize"], None)
    space = search_space(task_op(module), limits, task_op(bufferized))
    space.module = bufferized  # keeps the checked op's module alive
    return space


__all__ = ["DeviceLimits", "SearchSpace", "Branch", "branches_of", "ordered_choices", "signature", "search_space",
           "task_space", "task_op"]
