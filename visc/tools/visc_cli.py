"""`visc`: the command-line front door.

    visc import model.onnx                      print the vision IR
    visc compile model.onnx -o model.visc       compile to one deployable file
    visc run model.visc --input x.npy           run it
    visc bench model.onnx                       latency against onnxruntime
    visc devices                                list OpenCL devices
    visc demo                                   ResNet-50 end to end, checked against onnxruntime
    visc tune model.onnx --trials 64            search kernel schedules (records: tuning.db)
    visc records best|export|import             inspect and share tuning records

Errors print as one paragraph (`visc: error: ...`) with exit status 1; `--debug` shows
the traceback for bug reports.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from visc.errors import InputShapeError, ViscError
from visc.runtime.bench import (
    OrtProcess,
    interleaved_medians,
    median_seconds,
    ort_session,
    random_inputs,
)


def parse_input_shapes(items: Sequence[str] | None) -> dict[str, list[int]] | None:
    """`name=1,3,224,224` (or `1,3,224,224` for the first input) -> {name: shape}."""
    if not items:
        return None
    shapes: dict[str, list[int]] = {}
    for item in items:
        name, _, dims = item.rpartition("=")
        try:
            shapes[name or "#0"] = [int(d) for d in dims.replace("x", ",").split(",") if d]
        except ValueError:
            raise InputShapeError(f"bad --input-shape '{item}': expected name=1,3,224,224") from None
    return shapes


def _resolve_first_input(shapes: dict[str, list[int]] | None, model_path: str) -> dict[str, list[int]] | None:
    if not shapes or "#0" not in shapes:
        return shapes
    import onnx

    m = onnx.load(model_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    first = next(i.name for i in m.graph.input if i.name not in inits)
    shapes[first] = shapes.pop("#0")
    return shapes


def _load_inputs(model, items: Sequence[str] | None, seed: int) -> list[np.ndarray]:
    if not items:
        return random_inputs(model.plan.inputs, seed)
    named: dict[str, np.ndarray] = {}
    for i, item in enumerate(items):
        name, sep, path = item.partition("=")
        if not sep:
            name, path = model.input_names[i], item
        if not os.path.exists(path):
            raise InputShapeError(f"input file '{path}' does not exist")
        named[name] = np.load(path)
    return model._normalize_inputs(named)


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max|got - want| / max|want| (the acceptance metric used throughout)."""
    want = np.asarray(want, dtype=np.float64)
    denom = max(float(np.abs(want).max()) if want.size else 0.0, 1e-30)
    return float(np.abs(np.asarray(got, dtype=np.float64) - want).max() / denom) if want.size else 0.0


# --------------------------------------------------------------------------- commands


def cmd_import(args: argparse.Namespace) -> int:
    from visc.frontend.onnx import import_model

    imported = import_model(args.model, _resolve_first_input(parse_input_shapes(args.input_shape), args.model))
    if args.passes:
        from visc.compiler import run_passes

        run_passes(imported.module, [p for p in args.passes.split(",") if p], imported.weights)
    if args.show_placement:
        from visc.passes.placement.report import show_placement

        print(show_placement(imported, args.target, _fallback(args.fallback)))
        return 0
    print(imported.module)
    if args.save_weights:
        imported.weights.save(args.save_weights)
    return 0


def _fallback(text: str | None) -> list[str] | None:
    """`--fallback NonMaxSuppression,TopK` -> op types; None when placement is off."""
    return None if text is None else [t for t in text.split(",") if t]


def cmd_compile(args: argparse.Namespace) -> int:
    import visc
    from visc.compiler import compile_model

    printer = None
    if args.print_ir_after_all:

        def printer(spec, module):
            print(f"// -----// IR after {spec} //----- //", file=sys.stderr)
            print(module, file=sys.stderr)

    shapes = _resolve_first_input(parse_input_shapes(args.input_shape), args.model)
    model = compile_model(args.model, target=args.target, input_shapes=shapes, device=args.device,
                          print_ir_after=printer, arch=args.arch, fallback=_fallback(args.fallback),
                          records=args.records)
    out = args.output or os.path.splitext(os.path.basename(args.model))[0] + ".visc"
    model.metadata["source_model"] = os.path.basename(args.model)
    model.save(out)
    r = model.report
    built_for = f"{args.target} ({model.metadata['cuda_arch']})" if args.target == "cuda" else args.target
    print(f"compiled {args.model} for {built_for} in {r.total_seconds:.2f} s: {r.num_kernels} kernels, "
          f"{r.num_launches} launches, arena {r.arena_bytes / 2**20:.1f} MiB -> {out}")
    if args.verbose:
        for stage, secs in r.seconds.items():
            print(f"  {stage:<28} {secs:8.3f} s")
    del visc
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import visc

    model = visc.load(args.model, device=args.device)
    if hasattr(model, "stages"):
        raise InputShapeError(f"'{args.model}' holds a pipeline of {len(model.stages)} stages: stream frames "
                              f"through it with `visc pipeline {args.model}`")
    inputs = _load_inputs(model, args.input, args.seed)
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
        np.savez(args.output, **dict(zip(model.output_names, outputs, strict=True)))
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
    }


def print_table(rows: list[dict], columns: Sequence[tuple[str, str, str]]) -> None:
    """Print rows as an aligned table; columns are (key, header, format)."""
    cells = [[h for _, h, _ in columns]] + [[format(r[k], f) if f else str(r[k]) for k, _, f in columns] for r in rows]
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


def cmd_bench(args: argparse.Namespace) -> int:
    rows = [bench_one(p, args.device, args.repeat, args.threads,
                      input_shapes=_resolve_first_input(parse_input_shapes(args.input_shape), p),
                      target=args.target)
            for p in args.models]
    print(f"device: {rows[0]['device']}")
    print_table(rows, BENCH_COLUMNS)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from visc.runtime.devices import describe_devices

    print(describe_devices())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from visc.compiler import compile_model
    from visc.tools.model_zoo import light_model_path, load_light_model

    path = light_model_path(args.model)
    onnx_model = load_light_model(args.model, seed=None if args.original_weights else args.seed)
    print(f"model: {path}" + ("" if args.original_weights else
                             f" (placeholder weights replaced by seeded random ones, seed {args.seed})"))
    start = time.perf_counter()
    model = compile_model(onnx_model, device=args.device)
    print(f"compiled for opencl in {time.perf_counter() - start:.2f} s "
          f"({model.report.num_kernels} kernels, {model.report.num_launches} launches, "
          f"arena {model.report.arena_bytes / 2**20:.1f} MiB)")
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
    s.set_defaults(fn=cmd_compile)

    s = sub.add_parser("run", help="run a compiled .visc model")
    s.add_argument("model")
    s.add_argument("--input", action="append", help="name=file.npy (repeatable); default: seeded random")
    s.add_argument("--device")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--repeat", type=int, default=0, help="also time this many runs")
    s.add_argument("--output", help="save outputs to this .npz")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("bench", help="latency of visc against onnxruntime on the same input")
    s.add_argument("models", nargs="+")
    s.add_argument("--device")
    s.add_argument("--input-shape", action="append", help=shape_help)
    s.add_argument("--repeat", type=int, default=10)
    s.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    s.add_argument("--target", default="opencl", choices=["opencl", "cuda", "cpu"])
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("devices", help="list OpenCL devices")
    s.set_defaults(fn=cmd_devices)

    s = sub.add_parser("demo", help="compile and run a model-zoo CNN shipped with onnx, checked against onnxruntime")
    s.add_argument("--model", default="resnet50", help="light model name (resnet50, squeezenet, ...)")
    s.add_argument("--device")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--repeat", type=int, default=5)
    s.add_argument("--original-weights", action="store_true",
                   help="keep the zoo file's constant placeholder weights (every class ties)")
    s.set_defaults(fn=cmd_demo)

    from visc.tools.pipeline_cli import add_parser as add_pipeline_parser
    from visc.tuner.cli import add_parsers as add_tuner_parsers

    add_pipeline_parser(sub, shape_help)
    add_tuner_parsers(sub, shape_help)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except ViscError as e:
        if args.debug:
            raise
        print(f"visc: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("visc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
