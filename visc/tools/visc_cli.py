"""`visc`: the command-line front door.

    visc import model.onnx                      print the vision IR
    visc compile model.onnx -o model.visc       compile to one deployable file
    visc run model.visc --input x.npy           run it
    visc bench model.onnx                       latency against onnxruntime
    visc devices                                list OpenCL devices
    visc demo                                   ResNet-50 end to end on the default device, checked against onnxruntime
    visc tune model.onnx --trials 64            search kernel schedules (records: tuning.db)
    visc records best|export|import             inspect and share tuning records
    visc cache info|clear                       the persistent compile cache

Errors print as one paragraph (`visc: error: ...`) with exit status 1; `--debug` shows
the traceback for bug reports.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, cast

import numpy as np

from visc.errors import InputShapeError, ModelLoadError, OutputPathError, UsageError, ViscError
from visc.runtime.bench import (
    OrtProcess,
    interleaved_medians,
    median_seconds,
    ort_session,
    random_inputs,
)

if TYPE_CHECKING:
    from visc.model import CompiledModel
    from visc.tuner.records import RecordBook


def parse_input_shapes(items: Sequence[str] | None) -> dict[str, list[int]] | None:
    """`name=1,3,224,224` (or `1,3,224,224` for the first input) -> {name: shape}."""
    if not items:
        return None
    shapes: dict[str, list[int]] = {}
    for item in items:
        name, _, dims = item.rpartition("=")
        if (name or "#0") in shapes:
            what = f"input '{name}'" if name else "the first input (no name)"
            raise UsageError(f"--input-shape {item}: {what} is given a shape twice")
        try:
            shapes[name or "#0"] = [int(d) for d in dims.replace("x", ",").split(",") if d]
        except ValueError:
            raise InputShapeError(f"bad --input-shape '{item}': expected name=1,3,224,224") from None
    return shapes


def _resolve_first_input(shapes: dict[str, list[int]] | None, model_path: str) -> dict[str, list[int]] | None:
    if not shapes or "#0" not in shapes:
        return shapes
    from visc.tools.checks import graph_inputs

    names = list(graph_inputs(model_path))
    if not names:
        raise InputShapeError(f"'{model_path}' has no inputs to give --input-shape {shapes['#0']} to")
    if names[0] in shapes:
        raise UsageError(f"--input-shape gives input '{names[0]}' twice (once by name, once as the first input)")
    shapes[names[0]] = shapes.pop("#0")
    return shapes


def model_input_shapes(items: Sequence[str] | None, model_path: str) -> dict[str, list[int]] | None:
    """``--input-shape`` items for ``model_path``: parsed, the unnamed one given to the first
    input, and none changing a static dimension of the model."""
    from visc.tools.checks import check_static_shapes, graph_inputs

    shapes = _resolve_first_input(parse_input_shapes(items), model_path)
    if shapes:
        first = next(iter(graph_inputs(model_path)), "")
        texts = {(item.rpartition("=")[0] or first): item for item in items or ()}  # the user's words
        check_static_shapes(shapes, model_path, texts)
    return shapes


def _load_inputs(model: CompiledModel, items: Sequence[str] | None, seed: int, cast: bool = False) -> list[np.ndarray]:
    """``--input`` items (``name=file.npy``, or ``file.npy`` for the next input in order) as
    the model's inputs; each input once, each file a real .npy."""
    from visc.tools.checks import load_npy

    if not items:
        return random_inputs(model.plan.inputs, seed)
    names = model.input_names
    named: dict[str, np.ndarray] = {}
    given: dict[str, str] = {}
    for i, item in enumerate(items):
        name, sep, path = item.partition("=")
        if not sep:
            if i >= len(names):
                raise UsageError(f"--input {item}: the model takes {len(names)} input{'s' if len(names) > 1 else ''} "
                                 f"({', '.join(repr(n) for n in names)}), and {len(items)} were given")
            name, path = names[i], item
        if name in given:
            raise UsageError(f"input '{name}' is given twice (--input {given[name]} and --input {item})")
        given[name] = item
        named[name] = load_npy(path, item)
    return model._normalize_inputs(named, cast)


def human_bytes(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


def memory_line(model: CompiledModel) -> str:
    """What one run needs on the device: the arena of intermediates, the inputs and outputs,
    the weights (the arena alone can be 0 for a model of one kernel, or a small part)."""
    weights = sum(int(np.asarray(w).nbytes) for w in model.weights.values())
    arena, io = model.plan.arena_size, model.plan.io_bytes()
    return (f"memory: arena {human_bytes(arena)}, inputs/outputs {human_bytes(io)}, "
            f"weights {human_bytes(weights)} (total {human_bytes(arena + io + weights)})")


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> str:
    """Write ``arrays`` as ``path`` (``.npz`` appended when missing, as numpy does) beside
    and then renamed: an interrupted write leaves no half file. Returns the path written."""
    final = path if path.endswith(".npz") else path + ".npz"
    folder = os.path.dirname(os.path.abspath(final))
    tmp = os.path.join(folder, f".{os.path.basename(final)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, final)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OutputPathError(f"cannot write '{final}': {e.strerror or e}") from None
    return final


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max|got - want| / max|want| (the acceptance metric used throughout)."""
    want = np.asarray(want, dtype=np.float64)
    denom = max(float(np.abs(want).max()) if want.size else 0.0, 1e-30)
    return float(np.abs(np.asarray(got, dtype=np.float64) - want).max() / denom) if want.size else 0.0


# --------------------------------------------------------------------------- commands


def cmd_import(args: argparse.Namespace) -> int:
    from visc.frontend.onnx import import_model
    from visc.tools.checks import fallback_ops, writable_output

    if args.save_weights:
        writable_output(args.save_weights, "--save-weights")
    fallback = fallback_ops(args.fallback, args.model)
    imported = import_model(args.model, model_input_shapes(args.input_shape, args.model))
    if args.passes:
        from visc.compiler import run_passes

        run_passes(imported.module, [p for p in args.passes.split(",") if p], imported.weights)
    if args.show_placement:
        from visc.passes.placement.report import show_placement

        print(show_placement(imported, args.target, fallback))
        return 0
    print(imported.module)
    if args.save_weights:
        try:
            imported.weights.save(args.save_weights)
        except OSError as e:
            raise OutputPathError(f"--save-weights {args.save_weights}: {e.strerror or e}") from None
    return 0


def _output_name(args: argparse.Namespace) -> str:
    return args.output or os.path.splitext(os.path.basename(args.model))[0] + ".visc"


def _compile_records(args: argparse.Namespace) -> RecordBook | Literal[False]:
    """The tuning records this compile applies (a `RecordBook`, False: none): read before
    compiling, so a bad records file fails first and the report can count what applied."""
    from visc.compiler import record_book
    from visc.tuner.records import check_records

    if args.records:
        check_records(args.records)
    book = record_book(args.records or None, args.target, args.device)
    return book if book is not None else False


def _records_report(book: RecordBook, source: str | None) -> None:
    """"applied N tuned schedules from R (K tasks of the model had none)"; when none applied
    because the records are another device's, a warning naming the devices they are for."""
    from visc.tools.checks import warn

    applied, missing = len(book.applied), len(book.missing - book.applied)
    if source is None and not applied:
        return  # the shipped records have none for this model: nothing to report
    ops = f" to {book.applied_ops} ops" if book.applied_ops != applied else ""
    print(f"applied {applied} tuned schedule{'s' if applied != 1 else ''}{ops} from {book.source} "
          f"({missing} task{'s' if missing != 1 else ''} of the model had none)")
    if applied or source is None:
        return
    from visc.tuner.records import best_records

    others = sorted({r.device for r in best_records(source)} - {book.device})
    if not book.schedules and others:
        warn(f"--records {source} holds records for {'; '.join(others)}, none for this compile's device "
             f"{book.device}: the default schedules were used")
    elif not book.schedules:
        warn(f"--records {source} holds no records: the default schedules were used")
    else:
        warn(f"none of the {len(book.schedules)} records for {book.device} in {source} matches a task of "
             "this model (other shapes or ops): the default schedules were used")


def cmd_compile(args: argparse.Namespace) -> int:
    from visc.compiler import compile_model
    from visc.tools.checks import check_arch, check_device, fallback_ops, writable_output

    out = writable_output(_output_name(args), "-o" if args.output else "the output")
    check_arch(args.arch, args.target)
    check_device(args.target, args.device)
    fallback = fallback_ops(args.fallback, args.model)
    shapes = model_input_shapes(args.input_shape, args.model)
    book = _compile_records(args)
    printer = None
    if args.print_ir_after_all:

        def printer(spec, module):
            print(f"// -----// IR after {spec} //----- //", file=sys.stderr)
            print(module, file=sys.stderr)

    model = compile_model(args.model, target=args.target, input_shapes=shapes, device=args.device,
                          print_ir_after=printer, arch=args.arch, fallback=fallback, records=book,
                          cache=not args.no_cache)
    model.metadata["source_model"] = os.path.basename(args.model)
    model.save(out)
    r = model.report
    built_for = f"{args.target} ({model.metadata['cuda_arch']})" if args.target == "cuda" else args.target
    origin = " (from the cache)" if r.cached else ""
    print(f"compiled {args.model} for {built_for} in {r.total_seconds:.2f} s{origin}: {r.num_kernels} kernels, "
          f"{r.num_launches} launches -> {out}")
    print(memory_line(model))
    if book is not False:
        _records_report(book, args.records)
    if args.verbose:
        for stage, secs in r.seconds.items():
            print(f"  {stage:<28} {secs:8.3f} s")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import visc
    from visc.tools.checks import at_least, writable_output

    at_least("--repeat", args.repeat, 0, "timed runs; 0: none")
    at_least("--seed", args.seed, 0)
    if args.output:
        writable_output(args.output if args.output.endswith(".npz") else args.output + ".npz", "--output")
    model = visc.load(args.model, device=args.device)
    if hasattr(model, "stages"):
        raise InputShapeError(f"'{args.model}' holds a pipeline of {len(model.stages)} stages: stream frames "
                              f"through it with `visc pipeline {args.model}`")
    inputs = _load_inputs(model, args.input, args.seed, args.cast)
    outputs = model.run(inputs)
    stats = model.benchmark(inputs, warmup=1, repeat=args.repeat) if args.repeat else None
    print(f"device: {model.device_name}")
    for name, out in zip(model.output_names, outputs, strict=True):
        print(f"output '{name}': shape {list(out.shape)} dtype {out.dtype}")
        if out.ndim == 2 and out.shape[1] > 5 and out.dtype.kind == "f":
            top = np.argsort(-out[0])[:5]
            print("  top-5: " + ", ".join(f"{int(c)} ({out[0, c]:.4f})" for c in top))
    if stats:
        print(f"latency: {stats['median'] * 1e3:.2f} ms (median of {args.repeat})")
    if args.output:
        written = save_npz(args.output, dict(zip(model.output_names, outputs, strict=True)))
        print(f"outputs saved to {written}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """`visc cache info`: where the compile cache is, its bound, entries and size per kind;
    `visc cache clear [--kind K]`: empty it (or one kind)."""
    from visc.runtime.compile_cache import CompileCache, cache_max_bytes, cache_root

    root = cache_root()
    if root is None:
        print("the compile cache is off (VISC_CACHE=0, or VISC_CACHE_DIR set empty)")
        return 0
    cache = CompileCache(root, cache_max_bytes())
    if args.action == "clear":
        if args.kind is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", args.kind):
            raise UsageError(f"--kind {args.kind}: not a cache kind (`visc cache info` lists them)")
        try:
            removed = cache.clear(args.kind)
        except OSError as e:
            raise OutputPathError(f"cannot clear the compile cache at '{root}': {e.strerror or e}") from None
        what = f" of kind '{args.kind}'" if args.kind else ""
        print(f"removed {removed} entr{'y' if removed == 1 else 'ies'}{what} from {root}")
        return 0
    if args.kind is not None:
        raise UsageError("--kind is for `visc cache clear`; `visc cache info` shows every kind")
    info = cache.info()
    kinds = cast(dict[str, dict[str, int]], info["kinds"])
    print(f"compile cache: {root}")
    print(f"bound: {human_bytes(cache.max_bytes)} (VISC_CACHE_MAX_BYTES); in use: "
          f"{human_bytes(cast(int, info['bytes']))} in {info['entries']} entries")
    if kinds:
        print_table([{"kind": k, "entries": v["entries"], "mb": v["bytes"] / 2**20} for k, v in sorted(kinds.items())],
                    (("kind", "kind", ""), ("entries", "entries", "d"), ("mb", "MB", ".1f")))
    return 0


def bench_one(model_or_path, device: str | None, repeat: int, threads: int | None, seed: int = 0,
              input_shapes: dict[str, list[int]] | None = None, name: str | None = None,
              target: str = "opencl") -> dict[str, float | int | str]:
    """Compile + run one model and onnxruntime on the same seeded input; one table row."""
    from visc.compiler import compile_model

    if isinstance(model_or_path, str):
        name = name or os.path.basename(model_or_path)
        ort_model: str | bytes = model_or_path
    else:
        name = name or model_or_path.graph.name
        ort_model = model_or_path.SerializeToString()
    start = time.perf_counter()
    model = compile_model(model_or_path, target=target, input_shapes=input_shapes, device=device)
    compile_s = time.perf_counter() - start
    inputs = random_inputs(model.plan.inputs, seed)
    outs = model.run(inputs)
    if isinstance(ort_model, str):
        with open(ort_model, "rb") as f:
            ort_model = f.read()
    # onnxruntime in its own process (the runtimes' thread pools slow each other in one);
    # interleaved: the machine's drifts reach both sides of the ratio alike
    with OrtProcess(ort_model, dict(zip(model.input_names, inputs, strict=True)), threads) as peer:
        ref = peer.outputs()
        visc_s, ort_s = interleaved_medians([model.runner(inputs), peer], 2, repeat)
    return {
        "model": name,
        "device": model.device_name,
        "compile_s": compile_s,
        "import_s": model.report.seconds.get("import", 0.0),
        "arena_bytes": model.report.arena_bytes,
        "arena_naive_bytes": model.report.arena_naive_bytes,
        "kernels": model.report.num_kernels,
        "launches": model.report.num_launches,
        "visc_ms": visc_s * 1e3,
        "ort_ms": ort_s * 1e3,
        "ratio": visc_s / ort_s,
        "max_rel_err": max(rel_error(o, r) for o, r in zip(outs, ref, strict=True)),
        "constant_output": all(o.size and np.all(o == o.flat[0]) for o in outs),
    }


def print_table(rows: list[dict], columns: Sequence[tuple[str, str, str]]) -> None:
    """Print rows as an aligned table; columns are (key, header, format)."""
    cells = [[h for _, h, _ in columns]] + [[format(r[k], f) if f and r[k] is not None else
                                             ("-" if r[k] is None else str(r[k])) for k, _, f in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for j, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


BENCH_COLUMNS = (
    ("model", "model", ""),
    ("compile_s", "compile s", ".2f"),
    ("arena_bytes", "arena bytes", ","),
    ("visc_ms", "visc ms", ".2f"),
    ("ort_ms", "ort ms", ".2f"),
    ("ratio", "visc/ort", ".2f"),
    ("max_rel_err", "max rel err", ".1e"),
)


def zoo_name(path: str) -> str | None:
    """The model-zoo name of ``path`` when it is one of the onnx package's light models (whose
    weights are placeholder constants), else None."""
    from visc.tools.model_zoo import LIGHT_DIR

    base = os.path.basename(path)
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(LIGHT_DIR):
        return None
    if not (base.startswith("light_") and base.endswith(".onnx")):
        return None
    return base[len("light_"):-len(".onnx")]


def _bench_model(path: str, args: argparse.Namespace) -> tuple[object, str]:
    """What `visc bench` compiles for ``path``: a zoo model with its placeholder weights (one
    constant per tensor: every output equal, so any comparison passes) replaced by seeded
    random ones, unless --original-weights; any other model as it is."""
    name = zoo_name(path)
    if name is None or args.original_weights:
        return path, os.path.basename(path)
    from visc.tools.model_zoo import load_light_model

    print(f"{os.path.basename(path)}: placeholder weights replaced by seeded random ones (seed {args.seed}; "
          "--original-weights keeps them)")
    return load_light_model(name, seed=args.seed), os.path.basename(path)


def cmd_bench(args: argparse.Namespace) -> int:
    from visc.tools.checks import at_least, check_device, warn

    at_least("--repeat", args.repeat, 1, "timed runs")
    at_least("--threads", args.threads, 1)
    at_least("--seed", args.seed, 0)
    check_device(args.target, args.device)
    shapes = {p: model_input_shapes(args.input_shape, p) for p in args.models}  # every model read first
    rows = []
    for path in args.models:
        model, name = _bench_model(path, args)
        rows.append(bench_one(model, args.device, args.repeat, args.threads, seed=args.seed, input_shapes=shapes[path],
                              name=name, target=args.target))
        if rows[-1]["constant_output"]:
            warn(f"every output value of {name} is the same: the comparison with onnxruntime checks little "
                 "(placeholder weights?)")
    print(f"device: {rows[0]['device']}")
    print_table(rows, BENCH_COLUMNS)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from visc.runtime.devices import describe_devices

    print(describe_devices())
    return 0


def _demo_model(name: str, seed: int | None) -> tuple[object, str]:
    """The zoo model ``name`` (a light model of the onnx package, or one visc builds) and a
    description of where it came from; an unknown name lists the known ones."""
    from visc.tools.model_zoo import BUILT_MODELS, LIGHT_MODELS, light_model_path, load_model

    if name not in LIGHT_MODELS + BUILT_MODELS:
        raise UsageError(f"--model {name}: no such model-zoo model (known: {', '.join(LIGHT_MODELS + BUILT_MODELS)})")
    if name in BUILT_MODELS:
        return load_model(name, seed), f"{name} (built by visc.tools.model_zoo)"
    try:
        path = light_model_path(name)
    except FileNotFoundError as e:
        raise ModelLoadError(f"--model {name}: {e}") from None
    return load_model(name, seed), path


def cmd_demo(args: argparse.Namespace) -> int:
    from visc.compiler import compile_model
    from visc.tools.checks import at_least, check_device

    at_least("--repeat", args.repeat, 1, "timed runs")
    at_least("--seed", args.seed, 0)
    target = args.target
    if target == "auto":
        from visc.runtime.devices import default_target

        target = "opencl" if args.device else default_target()
    if args.device and target != "opencl":
        raise UsageError(f"--device names an OpenCL device; --target {target} takes none")
    if target == "opencl":
        check_device("opencl", args.device)
    onnx_model, where = _demo_model(args.model, None if args.original_weights else args.seed)
    print(f"model: {where}" + ("" if args.original_weights else
                              f" (placeholder weights replaced by seeded random ones, seed {args.seed})"))
    start = time.perf_counter()
    model = compile_model(onnx_model, target=target, device=args.device)
    print(f"compiled for {target} in {time.perf_counter() - start:.2f} s "
          f"({model.report.num_kernels} kernels, {model.report.num_launches} launches)")
    print(memory_line(model))
    inputs = random_inputs(model.plan.inputs, args.seed)
    outputs = model.run(inputs)
    print(f"device: {model.device_name}")
    stats = model.benchmark(inputs, warmup=1, repeat=args.repeat)
    probs = outputs[0].reshape(outputs[0].shape[0], -1)[0]
    top = np.argsort(-probs, kind="stable")[:5]
    print("top-5 classes: " + ", ".join(f"{int(c)} (p={probs[c]:.4f})" for c in top))
    print(f"visc latency: {stats['median'] * 1e3:.2f} ms (median of {args.repeat})")
    sess = ort_session(onnx_model.SerializeToString())
    feed = dict(zip(model.input_names, inputs, strict=True))
    ref = sess.run(None, feed)
    ort_s = median_seconds(lambda: sess.run(None, feed), 1, args.repeat)
    ort_top = np.argsort(-ref[0].reshape(ref[0].shape[0], -1)[0], kind="stable")[:5]
    print(f"onnxruntime top-5: {', '.join(str(int(c)) for c in ort_top)}; latency {ort_s * 1e3:.2f} ms")
    diff = max(float(np.abs(o.astype(np.float64) - r).max()) for o, r in zip(outputs, ref, strict=True))
    rel = max(rel_error(o, r) for o, r in zip(outputs, ref, strict=True))
    print(f"max |visc - onnxruntime| = {diff:.3e} (relative to max |onnxruntime|: {rel:.3e})")
    if rel > 1e-4:
        print("visc: error: result differs from onnxruntime by more than 1e-4", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- entry


def build_parser() -> argparse.ArgumentParser:
    from visc.version import __version__

    p = argparse.ArgumentParser(prog="visc", description="visc: compile and run ONNX CNNs on OpenCL devices")
    p.add_argument("--version", action="version", version=f"visc {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True)

    shape_help = "input shape, name=1,3,224,224 (repeatable; the name may be left out for the first input)"

    s = sub.add_parser("import", help="import an ONNX model and print its vision IR")
    s.add_argument("model")
    s.add_argument("--input-shape", action="append", help=shape_help)
    s.add_argument("-p", "--passes", help="comma-separated passes to run before printing")
    s.add_argument("--save-weights", help="write the weight store (.npz) for use with visc-opt --weights")
    s.add_argument("--show-placement", action="store_true",
                   help="print where each op runs (ONNX node, op, device) instead of the IR")
    s.add_argument("--target", default="opencl", choices=["opencl", "cuda"], help="GPU target for --show-placement")
    s.add_argument("--fallback", help="comma-separated ONNX op types to run on the CPU (with --show-placement)")
    s.set_defaults(fn=cmd_import)

    s = sub.add_parser("compile", help="compile an ONNX model into one deployable .visc file")
    s.add_argument("model")
    s.add_argument("--target", default="opencl", choices=["opencl", "cuda", "cpu"])
    s.add_argument("--fallback", help="comma-separated ONNX op types to run on the CPU backend beside the GPU "
                   "(e.g. NonMaxSuppression,TopK); ops with no GPU lowering go there too")
    s.add_argument("--arch", help="CUDA architecture of the PTX, e.g. sm_90 (default: the GPU found, else sm_80)")
    s.add_argument("-o", "--output")
    s.add_argument("--input-shape", action="append", help=shape_help)
    s.add_argument("--device", help="OpenCL device: 'P:D' indices or a name substring")
    s.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass (stderr)")
    s.add_argument("-v", "--verbose", action="store_true", help="print time per stage")
    s.add_argument("--records", help="tuning records (from `visc tune`) whose schedules replace the defaults")
    s.add_argument("--no-cache", action="store_true",
                   help="compile from scratch, without reading or filling the compile cache (`visc cache info`)")
    s.set_defaults(fn=cmd_compile)

    s = sub.add_parser("run", help="run a compiled .visc model")
    s.add_argument("model")
    s.add_argument("--input", action="append", help="name=file.npy (repeatable); default: seeded random")
    s.add_argument("--device")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--repeat", type=int, default=0, help="also time this many runs")
    s.add_argument("--output", help="save outputs to this .npz")
    s.add_argument("--cast", action="store_true",
                   help="convert input arrays of another dtype to the model's (default: an error, as in onnxruntime)")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("bench", help="latency of visc against onnxruntime on the same input")
    s.add_argument("models", nargs="+")
    s.add_argument("--device")
    s.add_argument("--input-shape", action="append", help=shape_help)
    s.add_argument("--repeat", type=int, default=10)
    s.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    s.add_argument("--target", default="opencl", choices=["opencl", "cuda", "cpu"])
    s.add_argument("--seed", type=int, default=0, help="seed of the random input (and of zoo models' weights)")
    s.add_argument("--original-weights", action="store_true",
                   help="keep a model-zoo file's constant placeholder weights (every output then ties)")
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("cache", help="the persistent compile cache: where it is and what it holds, or empty it")
    s.add_argument("action", choices=["info", "clear"])
    s.add_argument("--kind", help="with clear: only this kind of entry (model, ptx, opencl, cpu-obj, ...)")
    s.set_defaults(fn=cmd_cache)

    s = sub.add_parser("devices", help="list OpenCL devices")
    s.set_defaults(fn=cmd_devices)

    s = sub.add_parser("demo", help="compile and run a model-zoo CNN shipped with onnx, checked against onnxruntime")
    s.add_argument("--model", default="resnet50", help="light model name (resnet50, squeezenet, ...)")
    s.add_argument("--target", default="auto", choices=["auto", "opencl", "cuda", "cpu"],
                   help="auto: cuda on an NVIDIA GPU, else opencl on an OpenCL GPU, else cpu")
    s.add_argument("--device", help="an OpenCL device (implies --target opencl with auto)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--repeat", type=int, default=5)
    s.add_argument("--original-weights", action="store_true",
                   help="keep the zoo file's constant placeholder weights (every class ties)")
    s.set_defaults(fn=cmd_demo)

    from visc.tools.pipeline_cli import add_parser as add_pipeline_parser
    from visc.tuner.cli import add_parsers as add_tuner_parsers

    add_pipeline_parser(sub, shape_help)
    add_tuner_parsers(sub, shape_help)
    for command in sub.choices.values():  # `visc compile m.onnx --debug` as well as `visc --debug compile`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks for errors")
    return p


def _one_paragraph(error: BaseException) -> str:
    """The error as one paragraph: a driver's or compiler's multi-line log joined with "; "."""
    return "; ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())


def _quiet_broken_pipe() -> int:
    """stdout's reader went away (`visc import m.onnx | head`): stop quietly, as Unix tools do
    (their status: killed by SIGPIPE); stdout goes to /dev/null so the exit flush is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = int(args.fn(args) or 0)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except ViscError as e:
        if args.debug:
            raise
        print(f"visc: error: {_one_paragraph(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("visc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
