"""The compile driver: ONNX model -> vision IR -> passes -> kernels + runtime plan.

The pipeline is a plain list of pass specs, the same text `visc-opt -p` takes, so every
stage a user sees from `visc compile --print-ir-after-all` can be reproduced with visc-opt.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import onnx
from xdsl.dialects.builtin import IntegerAttr, ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.arg_spec import parse_spec
from xdsl.utils.exceptions import DiagnosticException, PassFailedException, VerifyException

from visc.dialects import make_context
from visc.errors import CompileError, InputShapeError, ModelLoadError, ViscError
from visc.passes import all_passes
from visc.passes.graph.concat_in_place import SLAB_ALIGN
from visc.report import CompileReport
from visc.weights import WeightStore, use_weights

if TYPE_CHECKING:
    from visc.model_cache import CacheRequest
    from visc.tuner.records import RecordBook

TARGETS = ("opencl", "cuda", "cpu")
# a CPU or CUDA compile of a model this large starts its compile processes (objects, PTX per
# kernel) at once, so they are up when its kernels are (a small model's kernels compile
# in-process: `cpu_native.POOL_MIN_CHARS`)
PRESTART_MIN_NODES = 40

# Passes on the tensor-level graph, then bufferization, loops and GPU mapping.
GRAPH_PIPELINE = (
    "vision-canonicalize",
    "vision-const-eval",
    "vision-fold-batch-norm",
    "vision-const-eval",
    "vision-fuse-elementwise",
    "vision-canonicalize",
)


def lowering_pipeline(target: str, device_type: str = "gpu", fallback: Sequence[str] | None = None,
                      slab_align: int = SLAB_ALIGN) -> tuple[str, ...]:
    """Bufferization to stage 5. Target "cpu" outlines every loop into a host function; a GPU
    target with placement (``fallback``: ONNX op types for the CPU, possibly empty) tags ops
    first and outlines only the CPU-placed loops before mapping the rest to the GPU.
    ``slab_align``: the byte alignment of concat slabs (see `slab_alignment`)."""
    in_place = f"vision-concat-in-place{{align={slab_align}}}"
    if target == "cpu":
        return (
            "vision-bufferize",
            in_place,
            f"vision-default-schedule{{target={target} device_type={device_type}}}",
            "vision-pack-weights",
            "lower-vision-to-loops",
            "lower-loops-to-cpu",
        )
    if fallback is None:
        return (
            "vision-bufferize",
            in_place,
            f"vision-default-schedule{{target={target} device_type={device_type}}}",
            "vision-pack-weights",
            "lower-vision-to-loops",
            "map-loops-to-gpu",
        )
    from visc.passes.placement import placement_spec

    return (
        placement_spec(target, fallback),
        "vision-insert-copies",
        "vision-bufferize",
        f"vision-default-schedule{{target={target} device_type={device_type}}}",
        "vision-pack-weights",
        "lower-vision-to-loops",
        "lower-loops-to-cpu{placed_only=true}",
        "map-loops-to-gpu",
    )


def default_pipeline(target: str, device_type: str = "gpu", fallback: Sequence[str] | None = None,
                     slab_align: int = SLAB_ALIGN) -> tuple[str, ...]:
    """The whole pipeline; `device_type` ("gpu" | "cpu") picks the default schedules' family;
    ``fallback`` (a GPU target only) turns on placement with these ONNX op types on the CPU."""
    # the kernels stay `gpu.func`s: `emit_ptx` prints them as LLVM IR for NVPTX directly
    # (`visc.backends.llvm_emitter.NVPTXEmitter`; the llvm-dialect passes of `NVVM_PIPELINE`
    # give the same PTX, 2.5x slower on ResNet-50)
    return (*GRAPH_PIPELINE, *lowering_pipeline(target, device_type, fallback, slab_align))


def slab_alignment(target: str, device: str | None) -> int:
    """Byte alignment of concat slabs for `target`: what kernels assume of a buffer's start,
    or more for an OpenCL device whose sub-buffers need it (its CL_DEVICE_MEM_BASE_ADDR_ALIGN)."""
    if target != "opencl":
        return SLAB_ALIGN
    try:
        from visc.runtime.devices import select_device

        bits = int(select_device(device or None).mem_base_addr_align)
    except (ImportError, ViscError):
        return SLAB_ALIGN
    return max(SLAB_ALIGN, bits // 8)


def device_type_for(target: str, device: str | None) -> str:
    """Whether `device` (an OpenCL spec, or the default device) is a CPU or a GPU."""
    if target != "opencl":
        return "cpu" if target == "cpu" else "gpu"
    from visc.passes.lowering.default_schedule import opencl_device_type

    return opencl_device_type(device or "")


def build_passes(specs: Sequence[str]) -> list[ModulePass]:
    """Instantiate passes from `visc-opt`-style specs such as ``name{opt=1}``."""
    registry = all_passes()
    passes: list[ModulePass] = []
    for text in specs:
        spec = parse_spec(text)
        if spec.name not in registry:
            raise CompileError(f"unknown pass '{spec.name}' (known: {', '.join(sorted(registry))})")
        passes.append(registry[spec.name]().from_pass_spec(spec))
    return passes


def _node_of(op: Operation | None) -> str:
    while op is not None:
        node = op.attributes.get("onnx_node")
        if node is not None:
            kind = op.attributes.get("onnx_op")
            kind_txt = f" ({kind.data})" if kind is not None else ""  # type: ignore[attr-defined]
            return f" at ONNX node '{node.data}'{kind_txt}"  # type: ignore[attr-defined]
        op = op.parent_op()
    return ""


def run_passes(
    module: ModuleOp,
    specs: Sequence[str],
    weights: WeightStore | None,
    after_pass: Callable[[str, ModuleOp, float], None] | None = None,
) -> None:
    """Apply passes in order, turning any failure into a CompileError naming the pass."""
    ctx = make_context()
    with use_weights(weights):
        for spec, pass_ in zip(specs, build_passes(specs), strict=True):
            start = time.perf_counter()
            try:
                PassPipeline((pass_,)).apply(ctx, module)
            except ViscError:
                raise
            except (VerifyException, DiagnosticException, PassFailedException, ValueError, KeyError) as e:
                raise CompileError(f"pass '{spec}' failed: {e}") from e
            if after_pass is not None:
                after_pass(spec, module, time.perf_counter() - start)


def _entry(module: ModuleOp):
    from xdsl.dialects import func

    for op in module.ops:
        if isinstance(op, func.FuncOp) and op.sym_name.data == "main":
            return op
    raise CompileError("module has no @main function")


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise CompileError(f"unknown target '{target}' (available: {', '.join(TARGETS)})")


def check_model(model: object) -> None:
    """The mistakes in naming the model that the ONNX reader would report obscurely: a wrong
    kind of argument, a path that is missing or a directory, a compiled .visc file."""
    if isinstance(model, onnx.ModelProto | bytes | bytearray):
        return
    if not isinstance(model, str | os.PathLike):
        raise ModelLoadError(f"the model must be an ONNX file path, its bytes or an onnx.ModelProto, "
                             f"not {type(model).__name__}")
    path = os.fspath(model)
    if os.path.isdir(path):
        inside = sorted(f for f in os.listdir(path) if f.endswith(".onnx"))[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise ModelLoadError(f"'{path}' is a directory, not an ONNX model file{hint}")
    if not os.path.exists(path):
        raise ModelLoadError(f"no ONNX model at '{path}': the file does not exist")
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise ModelLoadError(f"'{path}' is a compiled visc model, not an ONNX file: run it with "
                                 "visc.load(path), or compile the .onnx it came from")


def check_input_shapes(input_shapes: object) -> None:
    if input_shapes is not None and not isinstance(input_shapes, Mapping):
        raise InputShapeError(f"input_shapes must map input names to shapes, e.g. {{'data': (1, 3, 224, 224)}}, "
                              f"not a {type(input_shapes).__name__}")


def check_fallback(fallback: Sequence[str] | None) -> None:
    """Every ``fallback`` entry must be an op type visc imports, spelled as in the ONNX
    standard (case matters: "Conv", not "conv"); an unknown one would otherwise place
    nothing, silently."""
    if fallback is None:
        return
    if isinstance(fallback, str):
        raise CompileError(f"fallback takes a list of ONNX op types, not the string '{fallback}'; "
                           f"pass {[op.strip() for op in fallback.split(',') if op.strip()]}")
    from visc.frontend.registry import load_all

    known = sorted(load_all())
    unknown = [op for op in fallback if not isinstance(op, str) or op not in known]
    if unknown:
        hints = [op_type_hint(op, known) for op in unknown]
        raise CompileError("fallback names no ONNX op type visc imports: " + "; ".join(hints)
                           + " (op types are case-sensitive, as in the ONNX standard)")


def op_type_hint(op: object, known: Sequence[str]) -> str:
    """``'conv' (did you mean 'Conv'?)``: the known op type closest to a misspelt one, or
    the whole list when none is close."""
    import difflib

    same = [n for n in known if n.lower() == str(op).lower()]
    close = same or difflib.get_close_matches(str(op), known, n=1)
    return f"{op!r}" + (f" (did you mean '{close[0]}'?)" if close else f" (visc imports {', '.join(known)})")


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off while compiling. The IR is one large live object
    graph (every op points at its parent and back), so each collection the allocations set
    off walks all of it and frees nothing: a third of ResNet-50's CUDA compile, half of its
    loop lowering. The cycles a compile drops (erased ops) wait for the next collection
    after it; peak memory grows by a few percent (DenseNet-121: 249 -> 263 MB)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def compile_model(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    target: str = "opencl",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    device: str | None = None,
    pipeline: Sequence[str] | None = None,
    print_ir_after: Callable[[str, ModuleOp], None] | None = None,
    arch: str | None = None,
    fallback: Sequence[str] | None = None,
    records: str | os.PathLike[str] | bool | RecordBook | None = None,
    cache: bool | CacheRequest = True,
):
    """Compile an ONNX model for `target`; returns a `visc.CompiledModel`. For "cuda",
    ``arch`` (e.g. "sm_90") picks the GPU architecture; by default the GPU found, else sm_80.
    ``fallback`` (GPU targets): ONNX op types to run on the CPU backend (a mixed plan); ops
    with no GPU lowering go there too. An empty list still places such ops. ``records``: a
    tuning database (Optuna storage file or URL, or an exported .json) whose best schedules
    for this device replace the default ones (see visc.tuner.records), or a `RecordBook`
    already read; None (or True): the records visc ships for this device, if any; False: the
    default heuristic only. ``cache``: reuse (and store) the result of an identical earlier
    compile through the persistent compile cache (`visc.model_cache`; off with VISC_CACHE=0),
    or a `CacheRequest` already opened for this call (a miss `visc.compile` looked up); a
    compile with ``pipeline`` or ``print_ir_after`` never uses the model cache (its kernels'
    objects and PTX still come from and go to the cache unless ``cache`` is False)."""
    check_target(target)
    check_fallback(fallback)
    check_model(model)
    check_input_shapes(input_shapes)
    from visc.frontend.dynamic_split import needs_split
    from visc.frontend.onnx import load_model
    from visc.model_cache import CacheRequest, open_request
    from visc.runtime.compile_cache import bypassed

    # cache=False: no kind of the cache is read or filled (models, objects, PTX, OpenCL binaries)
    with bypassed() if cache is False else contextlib.nullcontext(), paused_gc():
        request = None
        if pipeline is None and print_ir_after is None:
            if isinstance(cache, CacheRequest):
                request = cache
            elif cache:
                request = open_request(model, target, input_shapes, device, arch, fallback, records)
                hit = request.lookup() if request is not None else None
                if hit is not None:
                    return hit
        if request is not None:
            proto, label = request.proto, request.label
            request.begin(records)
        else:
            proto, label = load_model(model)
        if needs_split(proto):  # data-dependent shapes: a device part and a host part (a pipeline)
            from visc.dynamic_models import compile_split, with_input_shapes

            def compile_static(part: onnx.ModelProto) -> Any:
                return _compile_proto(part, label, None, target, device, pipeline, print_ir_after, arch, fallback,
                                      records)

            result = compile_split(with_input_shapes(proto, input_shapes), target, compile_static)
        else:
            result = _compile_proto(proto, label, input_shapes, target, device, pipeline, print_ir_after, arch,
                                    fallback, records)
        if request is not None:
            request.store(result)
        return result


def _compile_proto(proto: onnx.ModelProto, label: str, input_shapes: Mapping[str, Sequence[int]] | None, target: str,
                   device: str | None, pipeline: Sequence[str] | None,
                   print_ir_after: Callable[[str, ModuleOp], None] | None, arch: str | None,
                   fallback: Sequence[str] | None, records: Any) -> Any:
    from visc.frontend.onnx import import_model

    if target in ("cpu", "cuda") and len(proto.graph.node) >= PRESTART_MIN_NODES:  # objects / PTX per kernel
        from visc.runtime.cpu_native import prestart_workers

        prestart_workers()
    report = CompileReport()
    start = time.perf_counter()
    imported = import_model(proto, dict(input_shapes) if input_shapes else None, label=label)
    report.seconds["import"] = time.perf_counter() - start
    return compile_module(imported.module, imported.weights, target, device=device, pipeline=pipeline,
                          print_ir_after=print_ir_after, arch=arch, fallback=fallback, records=records,
                          report=report)


def record_book(records: str | os.PathLike[str] | bool | RecordBook | None, target: str,
                device: str | None) -> RecordBook | None:
    """The tuning records a compile applies (see `compile_model`'s ``records``)."""
    if records is False:
        return None
    from visc.tuner.records import RecordBook

    if isinstance(records, RecordBook):
        return records
    if records is None or records is True:
        return RecordBook.shipped(target, device)  # None: no shipped records for this device
    return RecordBook.load(records, target, device)


@paused_gc()
def compile_module(
    module: ModuleOp,
    weights: WeightStore,
    target: str = "opencl",
    device: str | None = None,
    pipeline: Sequence[str] | None = None,
    print_ir_after: Callable[[str, ModuleOp], None] | None = None,
    arch: str | None = None,
    fallback: Sequence[str] | None = None,
    records: str | os.PathLike[str] | bool | RecordBook | None = None,
    report: CompileReport | None = None,
    graph_passes: bool = True,
):
    """An imported module (vision on tensors, in place) -> `visc.CompiledModel`: the rest of
    `compile_model`, also run on each stage of a cut model (`visc.stages`), whose stages are
    models of their own: ``graph_passes=False`` skips `GRAPH_PIPELINE` for a module that
    went through it whole, so each op keeps the fusion decided for the uncut model."""
    check_target(target)
    report = report if report is not None else CompileReport()
    book = record_book(records, target, device)
    tuned_ops = 0

    def after(spec: str, module: ModuleOp, seconds: float) -> None:
        nonlocal tuned_ops
        name = spec.split("{")[0]
        if book is not None and name == "vision-bufferize":  # tuned schedules before the defaults
            start = time.perf_counter()
            tuned_ops += book.apply(module)
            seconds += time.perf_counter() - start
        report.seconds[name] = report.seconds.get(name, 0.0) + seconds
        if print_ir_after is not None:
            print_ir_after(spec, module)

    device_type = device_type_for(target, device)
    if fallback is not None and target == "cpu":
        fallback = None  # everything runs on the CPU already
    if pipeline is not None:
        specs = list(pipeline)
    else:
        whole = default_pipeline(target, device_type, fallback, slab_alignment(target, device))
        specs = list(whole if graph_passes else whole[len(GRAPH_PIPELINE):])
    run_passes(module, specs, weights, after)
    metadata: dict[str, object] = {"device_type": device_type, "pipeline": specs}
    if book is not None:
        metadata["tuned_ops"] = tuned_ops  # this compile's (a RecordBook may serve several)
        metadata["records"] = book.source
    return finish_module(module, weights, target, device, arch, report, metadata)


def finish_module(
    module: ModuleOp,
    weights: Mapping[str, object],
    target: str,
    device: str | None = None,
    arch: str | None = None,
    report: CompileReport | None = None,
    metadata: dict[str, object] | None = None,
):
    """A module after the whole pipeline -> `visc.CompiledModel` (kernel sources, plan and the
    weights the plan uses). The tuner builds its one-op modules through this too."""
    from visc.backends.opencl import emit_opencl
    from visc.backends.plan_extract import extract_plan, kernel_writes
    from visc.model import CompiledModel

    report = report if report is not None else CompileReport()
    metadata = metadata if metadata is not None else {}
    start = time.perf_counter()
    main = _entry(module)
    for key, attr_name in (("arena_bytes", "vision.arena_size"), ("arena_naive_bytes", "vision.arena_naive_size")):
        attr = main.attributes.get(attr_name)
        if isinstance(attr, IntegerAttr):
            setattr(report, key, int(attr.value.data))
    sources: dict[str, str] = {}
    writes = kernel_writes(module)  # while every kernel is still a gpu.func
    if _cpu_kernel_names(module):
        from visc.backends.cpu import emit_cpu

        sources["cpu"] = emit_cpu(module)
        _drop_cpu_kernels(module)
    if target == "cuda":
        sources["cuda"] = _emit_cuda(module, arch, metadata)
    elif target == "opencl":
        sources["opencl"] = emit_opencl(module)
    elif "cpu" not in sources:
        sources["cpu"] = ""
    plan = extract_plan(module, writes)
    report.num_kernels = len({launch.kernel for launch in plan.launches})
    report.num_launches = len(plan.launches)
    used = {name: weights[name] for name in plan.weights}
    report.seconds["emit"] = time.perf_counter() - start
    native: dict[str, bytes] = {}
    if sources.get("cpu"):  # the host functions as object code for this CPU: the artifact loads without LLVM
        from visc.runtime.cpu_native import build_native

        start = time.perf_counter()
        native["cpu"] = build_native(sources["cpu"]).to_bytes()
        report.seconds["native"] = time.perf_counter() - start
    return CompiledModel(
        plan=plan,
        sources=sources,
        weights=used,
        target=target,
        device=device,
        schedules=_schedules(module),
        report=report,
        metadata=metadata,
        native=native,
    )


def _emit_cuda(module: ModuleOp, arch: str | None, metadata: dict[str, object]) -> str:
    """PTX for ``arch`` (else the GPU present, else sm_80); records what it was built for."""
    from visc.backends.ptx import DEFAULT_ARCH, default_ptx_version, detect_arch, emit_ptx

    chosen = arch or detect_arch() or DEFAULT_ARCH
    version = default_ptx_version(chosen)
    metadata.update({"cuda_arch": chosen, "ptx_version": version})
    return emit_ptx(module, chosen, version)


def _cpu_kernel_names(module: ModuleOp) -> set[str]:
    from xdsl.dialects import gpu

    from visc.passes.cpu import CPU_KERNEL_MODULE

    return {f.sym_name.data for op in module.ops if isinstance(op, gpu.ModuleOp)
            and op.sym_name.data == CPU_KERNEL_MODULE for f in op.body.block.ops if isinstance(f, gpu.FuncOp)}


def _drop_cpu_kernels(module: ModuleOp) -> None:
    """The host functions are compiled already; the GPU emitters print only their kernels."""
    from xdsl.dialects import gpu

    from visc.passes.cpu import CPU_KERNEL_MODULE

    for op in list(module.ops):
        if isinstance(op, gpu.ModuleOp) and op.sym_name.data == CPU_KERNEL_MODULE:
            op.detach()
            op.erase()


def _schedules(module: ModuleOp) -> dict[str, str]:
    """kernel name -> printed schedule attribute, kept in the artifact for inspection."""
    found: dict[str, str] = {}
    for op in module.walk():
        sched = op.attributes.get("schedule")
        name = op.attributes.get("kernel_name")
        if sched is not None and name is not None:
            found[name.data] = str(sched)  # type: ignore[attr-defined]
    return found
