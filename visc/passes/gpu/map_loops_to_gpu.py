"""`map-loops-to-gpu`: stage 4 (top-level `scf.parallel` loops) -> stage 5 (`gpu.func`
kernels in `gpu.module @kernels`, launched from the host function); see docs/ir.md.

Two loop forms are mapped:

* flat (the stage-4 contract): the iteration space is flattened row-major onto
  ``block_id.x * workgroup_size + thread_id.x``; a bounds check guards the tail block.
* block/thread (for schedules that stage tiles in local memory): a top-level loop whose
  body contains nested ``scf.parallel`` loops. The outer space maps onto ``block_id.x``
  (one work-group per point); every nested loop maps onto ``thread_id.x`` (its size must
  not exceed ``workgroup_size``; smaller ones are guarded). Ops between nested loops run
  redundantly in every thread of the group, so they must be uniform: `gpu.barrier`,
  `scf.for` over tiles, index arithmetic. A `memref.alloca` in memory space 3 (workgroup)
  is shared by the group; other allocas there are private per thread, which is only valid
  when each nested-loop iteration reads back the elements that same iteration wrote.
  Barriers are explicit in the IR: this pass inserts none.

Kernels that print the same once their names are removed (same body, argument types
and work-group size) are emitted once and launched several times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import arith, func, gpu, scf
from xdsl.dialects.builtin import (
    FunctionType,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    UnitAttr,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass

from visc.dialects.vision import VisionOp
from visc.errors import CompileError
from visc.passes.gpu.iteration_space import (
    IterationSpace,
    constant_index,
    delinearize,
    describe_loop,
)

KERNEL_MODULE = "kernels"

# Names a kernel may not take in OpenCL C / CUDA C: keywords and common built-in functions.
_RESERVED = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef union
    unsigned void volatile bool half kernel global local constant private read_only write_only
    main exp exp2 exp10 log log2 log10 sqrt rsqrt pow pown powr sin cos tan tanh erf erfc fabs abs
    floor ceil round rint trunc fma mad min max fmin fmax clamp mix step sign select dot cross
    barrier vload vstore""".split()
)


def _kernel_identifier(name: str) -> str:
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name) or "kernel"
    if ident[0].isdigit():
        ident = "k_" + ident
    if ident in _RESERVED or ident.startswith("get_") or ident.startswith("__"):
        ident = "k_" + ident.lstrip("_")
    return ident


def _str_attr(op: Operation, key: str) -> str | None:
    attr = op.attributes.get(key)
    return attr.data if isinstance(attr, StringAttr) else None


@dataclass
class _Captures:
    """Values a loop body uses but does not define: memrefs become kernel arguments (in
    first-use order), constants are re-materialized inside the kernel."""

    memrefs: list[SSAValue] = field(default_factory=list)
    constants: list[arith.ConstantOp] = field(default_factory=list)

    @staticmethod
    def of(loop: scf.ParallelOp) -> _Captures:
        caps = _Captures()
        ops = list(loop.body.walk())
        seen: set[SSAValue] = set(loop.body.block.args)
        for op in ops:  # values defined inside the loop
            seen.update(op.results)
            for reg in op.regions:
                for blk in reg.blocks:
                    seen.update(blk.args)
        for op in ops:
            for value in op.operands:
                if value in seen:
                    continue
                seen.add(value)
                if isinstance(value.type, MemRefType):
                    caps.memrefs.append(value)
                elif isinstance(value.owner, arith.ConstantOp):
                    caps.constants.append(value.owner)
                else:
                    raise CompileError(
                        f"{describe_loop(loop)}: its body uses {value.type} value defined outside "
                        f"the loop by {_owner_name(value)}; only memrefs and constants may cross "
                        "into a kernel")
        return caps


def _owner_name(value: SSAValue) -> str:
    owner = value.owner
    return owner.name if isinstance(owner, Operation) else "a block argument"


def _index_const(block: Block, value: int, name: str | None = None) -> SSAValue:
    op = arith.ConstantOp(IntegerAttr(value, IndexType()))
    if name:
        op.result.name_hint = name
    block.add_op(op)
    return op.result


def _map_space(block: Block, ids: SSAValue, space: IterationSpace, body: Block, guarded: bool) -> None:
    """Move ``body`` (minus its terminator) to the end of ``block``, its induction variables
    computed from ``ids`` (optionally under ``if ids < total``)."""
    dest = block
    if guarded:
        total = _index_const(block, space.total, "total")
        inside = arith.CmpiOp(ids, total, "ult")
        inside.result.name_hint = "inside"
        dest = Block()
        block.add_ops([inside, scf.IfOp(inside.result, [], Region(dest))])
    names = [arg.name_hint for arg in body.args]
    indices = delinearize(dest, ids, space.extents, names)
    for op in list(body.ops):
        if op is not body.last_op or not isinstance(op, scf.ReduceOp):
            op.detach()
            dest.add_op(op)
    for arg, index in zip(body.args, indices, strict=True):
        arg.replace_all_uses_with(index)
    if guarded:
        dest.add_op(scf.YieldOp())


def _map_inner_loop(loop: scf.ParallelOp, tid: SSAValue, workgroup_size: int, where: str) -> None:
    """Replace a nested (thread-level) loop, already inside the kernel, by its body run
    once per thread id."""
    space = IterationSpace.of(loop)
    if space.total > workgroup_size:
        raise CompileError(f"{where}: a nested scf.parallel has {space.total} iterations, more than "
                           f"the workgroup_size {workgroup_size}")
    if any(isinstance(op, scf.ParallelOp) for op in loop.body.walk()):
        raise CompileError(f"{where}: scf.parallel nests at most two levels (blocks, threads)")
    staging = Block()
    _map_space(staging, tid, space, loop.body.block, guarded=space.total < workgroup_size)
    parent = loop.parent_block()
    assert parent is not None
    for op in list(staging.ops):
        op.detach()
        parent.insert_op_before(op, loop)
    parent.erase_op(loop)


def outline_kernel(loop: scf.ParallelOp, name: str) -> tuple[gpu.FuncOp, list[SSAValue], int]:
    """Build the `gpu.func` for one top-level loop: (kernel, host arguments, grid size).
    The loop's body moves into the kernel; the caller replaces the (emptied) loop."""
    where = describe_loop(loop)
    wg_attr = loop.attributes.get("workgroup_size")
    if not isinstance(wg_attr, IntegerAttr) or int(wg_attr.value.data) <= 0:
        raise CompileError(f"{where}: needs a positive `workgroup_size` attribute (the schedule's "
                           "threads per work-group)")
    wg = int(wg_attr.value.data)
    space = IterationSpace.of(loop)
    nested = any(isinstance(op, scf.ParallelOp) for op in loop.body.walk())
    caps = _Captures.of(loop)

    block = Block(arg_types=[v.type for v in caps.memrefs])
    mapping: dict[SSAValue, SSAValue] = {}
    for value, arg in zip(caps.memrefs, block.args, strict=True):
        mapping[value] = arg
        arg.name_hint = value.name_hint
    for const in caps.constants:
        block.add_op(const.clone(mapping))

    bid = gpu.BlockIdOp(gpu.DimensionAttr(gpu.DimensionEnum.X))
    tid = gpu.ThreadIdOp(gpu.DimensionAttr(gpu.DimensionEnum.X))
    bid.result.name_hint, tid.result.name_hint = "bid", "tid"
    block.add_ops([bid, tid])
    if nested:
        grid = space.total
        _map_space(block, bid.result, space, loop.body.block, guarded=False)
    else:
        grid = -(-space.total // wg)
        size = _index_const(block, wg, "wg")
        base = arith.MuliOp(bid.result, size)
        flat = arith.AddiOp(base.result, tid.result)
        flat.result.name_hint = "flat"
        block.add_ops([base, flat])
        _map_space(block, flat.result, space, loop.body.block, guarded=grid * wg != space.total)
    # the moved ops still refer to host values: point them at the arguments and constants
    for op in block.walk():
        if any(v in mapping for v in op.operands):
            op.operands = tuple(mapping.get(v, v) for v in op.operands)
    if nested:
        for inner in [op for op in block.walk() if isinstance(op, scf.ParallelOp)]:
            _map_inner_loop(inner, tid.result, wg, where)
    block.add_op(gpu.ReturnOp([]))
    _drop_dead_constants(block)

    kernel = gpu.FuncOp(name, FunctionType.from_lists([v.type for v in caps.memrefs], []),
                        Region(block), kernel=True, known_block_size=[wg, 1, 1])
    return kernel, caps.memrefs, grid


def _structure_key(kernel: gpu.FuncOp) -> tuple[object, ...]:
    """What the kernel's printed text would show with its name and SSA names removed (op
    names, operands by position, types, attributes, region nesting), without printing."""
    numbers: dict[SSAValue, int] = {}
    key: list[object] = [kernel.function_type,
                         tuple(sorted((k, v) for k, v in kernel.attributes.items() if k != "sym_name"))]

    def region(reg: Region) -> None:
        key.append(len(reg.blocks))
        for blk in reg.blocks:
            for arg in blk.args:
                numbers[arg] = len(numbers)
            key.append(tuple(arg.type for arg in blk.args))
            for op in blk.ops:
                key.append((op.name, tuple(numbers.get(v, -1) for v in op.operands),
                            tuple(r.type for r in op.results),
                            tuple(sorted(op.properties.items())), tuple(sorted(op.attributes.items())),
                            len(op.regions)))
                for r in op.results:
                    numbers[r] = len(numbers)
                for inner in op.regions:
                    region(inner)

    region(kernel.body)
    return tuple(key)


@dataclass
class KernelTable:
    """The `gpu.module` being filled, with structural de-duplication and unique names."""

    module: gpu.ModuleOp
    by_key: dict[tuple[object, ...], str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for op in self.module.body.block.ops:
            if isinstance(op, gpu.FuncOp):
                self.names.add(op.sym_name.data)
                self.by_key[_structure_key(op)] = op.sym_name.data

    def add(self, kernel: gpu.FuncOp) -> str:
        key = _structure_key(kernel)
        if key in self.by_key:
            kernel.erase()
            return self.by_key[key]
        base = name = kernel.sym_name.data
        i = 0
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        kernel.sym_name = StringAttr(name)
        self.names.add(name)
        self.by_key[key] = name
        self.module.body.block.add_op(kernel)
        return name


def kernel_module(module: ModuleOp, name: str = KERNEL_MODULE) -> gpu.ModuleOp:
    """The `gpu.module @name` holding outlined kernels, created at the top of `module` if absent."""
    for op in module.ops:
        if isinstance(op, gpu.ModuleOp) and op.sym_name.data == name:
            return op
    kernels = gpu.ModuleOp(StringAttr(name), Region(Block()))  # type: ignore[arg-type]
    first = module.body.block.first_op
    if first is None:
        module.body.block.add_op(kernels)
    else:
        module.body.block.insert_op_before(kernels, first)
    return kernels


class _HostConstants:
    """Index constants for launch sizes, created once per function and reused."""

    def __init__(self) -> None:
        self._values: dict[int, SSAValue] = {}

    def get(self, value: int, before: Operation) -> SSAValue:
        if value not in self._values:
            op = arith.ConstantOp(IntegerAttr(value, IndexType()))
            op.result.name_hint = f"c{value}"
            block = before.parent_block()
            assert block is not None
            block.insert_op_before(op, before)
            self._values[value] = op.result
        return self._values[value]


def _check_no_unlowered(fn: func.FuncOp) -> None:
    problems = []
    for op in fn.body.walk():
        if isinstance(op, VisionOp) and not op.IS_VIEW:
            node = _str_attr(op, "onnx_node")
            problems.append(f"{op.name}" + (f" (ONNX node '{node}')" if node else ""))
    if problems:
        raise CompileError("map-loops-to-gpu: ops not lowered to loops (run lower-vision-to-loops "
                           "first): " + "; ".join(problems))


def _launch_attributes(loop: scf.ParallelOp) -> dict[str, Attribute]:
    return {k: v for k, v in loop.attributes.items() if k not in ("kernel_name", "workgroup_size")}


@dataclass(frozen=True)
class MapLoopsToGpuPass(ModulePass):
    """Outline every top-level `scf.parallel` into a kernel and launch it from the host."""

    name = "map-loops-to-gpu"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        funcs = [f for f in op.ops if isinstance(f, func.FuncOp) and f.body.blocks]
        table: KernelTable | None = None
        for fn in funcs:
            _check_no_unlowered(fn)
            for loop in fn.body.walk():
                parent = loop.parent_op()
                if isinstance(loop, scf.ParallelOp) and parent is not fn and not _inside_parallel(loop):
                    raise CompileError(f"{describe_loop(loop)}: kernels must be direct children of the "
                                       f"function body, found one inside {parent.name if parent else '?'}")
            loops = [o for o in fn.body.block.ops if isinstance(o, scf.ParallelOp)]
            if not loops:
                continue
            if table is None:
                table = KernelTable(kernel_module(op))
            consts = _HostConstants()
            for loop in loops:
                name = _kernel_identifier(_str_attr(loop, "kernel_name") or "kernel")
                kernel, args, grid = outline_kernel(loop, name)
                symbol = table.add(kernel)
                wg = int(kernel.known_block_size.get_values()[0])  # type: ignore[union-attr]
                one = consts.get(1, loop)
                launch = gpu.LaunchFuncOp(
                    SymbolRefAttr(KERNEL_MODULE, [symbol]),
                    [consts.get(grid, loop), one, one],
                    [consts.get(wg, loop), one, one],
                    kernelOperands=args,
                )
                launch.attributes.update(_launch_attributes(loop))
                fn.body.block.insert_op_before(launch, loop)
                fn.body.block.erase_op(loop)
            _drop_dead_constants(fn.body.block)
        if table is not None:
            op.attributes["gpu.container_module"] = UnitAttr()


def _inside_parallel(op: Operation) -> bool:
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, scf.ParallelOp):
            return True
        parent = parent.parent_op()
    return False


def _drop_dead_constants(block: Block) -> None:
    """Erase unused `arith.constant`s in ``block`` and the blocks nested in it."""
    for op in list(block.walk()):
        if isinstance(op, arith.ConstantOp) and not op.result.uses:
            parent = op.parent_block()
            assert parent is not None
            parent.erase_op(op)


__all__ = ["MapLoopsToGpuPass", "outline_kernel", "kernel_module", "KERNEL_MODULE", "constant_index"]
