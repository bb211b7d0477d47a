"""Checks of what a user typed on the command line, run before any long compile or tune: a
mistake found after minutes of work, or never (an option that silently does nothing), costs
more than one found at once. Each raises a `visc.errors.ViscError` subclass whose message
quotes the option and the value the user gave."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from visc.errors import (
    CompileError,
    DeviceError,
    InputShapeError,
    ModelLoadError,
    OutputPathError,
    UsageError,
    ViscError,
)

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def warn(message: str) -> None:
    """One `visc: warning:` line on stderr: a choice that is legal but probably not meant."""
    print(f"visc: warning: {message}", file=sys.stderr)


def _num(value: float) -> str:
    """A number as the user typed it (argparse made ``--timeout 0`` the float 0.0)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def at_least(option: str, value: float | None, minimum: float, what: str = "") -> None:
    """``option value`` must be at least ``minimum`` (None: the option was not given)."""
    if value is not None and value < minimum:
        meaning = f" ({what})" if what else ""
        raise UsageError(f"{option} {_num(value)}: must be at least {_num(minimum)}{meaning}")


def above(option: str, value: float | None, minimum: float, what: str = "") -> None:
    """``option value`` must be more than ``minimum`` (None: the option was not given)."""
    if value is not None and value <= minimum:
        meaning = f" ({what})" if what else ""
        raise UsageError(f"{option} {_num(value)}: must be more than {_num(minimum)}{meaning}")


# -- files --------------------------------------------------------------------------------


def writable_output(path: str, option: str) -> str:
    """Fail now if ``path`` cannot be written: a directory, a missing or read-only folder, a
    read-only file. Returns the path."""
    where = f"{option} {path}" if option else f"'{path}'"
    if not path:
        raise OutputPathError(f"{option or 'the output'}: give a file name")
    if os.path.isdir(path):
        raise OutputPathError(f"{where}: '{path}' is a directory; give a file name inside it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputPathError(f"{where}: the folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{where}: the folder '{folder}' is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputPathError(f"{where}: '{path}' exists and is read-only")
    return path


def readable_file(path: str, what: str) -> None:
    """``path`` must be a file this process can read (``what`` names it in the message)."""
    if os.path.isdir(path):
        raise UsageError(f"{what} '{path}' is a directory, not a file")
    if not os.path.exists(path):
        raise UsageError(f"{what} '{path}' does not exist")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{what} '{path}' is not readable")


def load_npy(path: str, given: str) -> np.ndarray:
    """The array of a numpy .npy file; ``given`` is the user's ``--input`` text. Object arrays
    (pickles) are refused: loading them runs code from the file."""
    readable_file(path, f"--input {given}: the file")
    with open(path, "rb") as f:
        head = f.read(len(NPY_MAGIC))
    if head.startswith(ZIP_MAGIC):
        raise UsageError(f"--input {given}: '{path}' is a .npz archive; give each input as its own .npy file "
                         "(numpy.save)")
    if head != NPY_MAGIC:
        raise UsageError(f"--input {given}: '{path}' is not a numpy .npy file (write one with numpy.save)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        reason = "it holds Python objects, not numbers" if "pickle" in str(e) else str(e)
        raise UsageError(f"--input {given}: cannot read '{path}' as a numpy array: {reason}") from None
    except (OSError, EOFError) as e:
        raise UsageError(f"--input {given}: cannot read '{path}' (truncated?): {e}") from None


# -- the model's inputs and ops ----------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _onnx_graph(path: str) -> Any:
    """The graph of the ONNX file (weights left on disk), read once per command."""
    import onnx
    from google.protobuf.message import DecodeError

    if os.path.isdir(path):
        raise ModelLoadError(f"'{path}' is a directory, not an ONNX model file")
    if not os.path.exists(path):
        raise ModelLoadError(f"no ONNX model at '{path}': the file does not exist")
    try:
        return onnx.load(path, load_external_data=False).graph
    except (DecodeError, OSError, ValueError) as e:
        raise ModelLoadError(f"cannot read ONNX model '{path}': the file is truncated or corrupt ({e})") from None


def _declared(vi: Any) -> list[int | None]:
    """An input's declared dims: an int where static, None where dynamic (a name or unknown)."""
    dims = vi.type.tensor_type.shape.dim
    return [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]


def graph_inputs(path: str) -> dict[str, list[int | None] | None]:
    """The model's inputs (initializers left out), in order, with their declared dims (None:
    no shape declared)."""
    graph = _onnx_graph(path)
    inits = {i.name for i in graph.initializer}
    return {vi.name: (_declared(vi) if vi.type.tensor_type.HasField("shape") else None)
            for vi in graph.input if vi.name not in inits}


def _fmt(dims: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def check_static_shapes(shapes: dict[str, list[int]] | None, path: str,
                        texts: dict[str, str] | None = None) -> None:
    """``--input-shape`` may set an input's dynamic dimensions only: changing a static one
    compiles a different model than the file declares (the frontend would accept it and fail
    at some node, or worse, not fail). ``texts``: the option text the user gave per input."""
    inputs = graph_inputs(path) if shapes else {}
    for name, given in (shapes or {}).items():
        declared = inputs.get(name)
        if declared is None or len(declared) != len(given):
            continue  # an unknown name or another rank: the importer names those
        bad = [i for i, (d, g) in enumerate(zip(declared, given, strict=True)) if d is not None and d != g]
        if bad:
            text = (texts or {}).get(name) or f"{name}={','.join(str(g) for g in given)}"
            kind = "static shape" if None not in declared else "shape"
            dims = f"dimension {bad[0]} is" if len(bad) == 1 else f"dimensions {', '.join(map(str, bad))} are"
            raise InputShapeError(
                f"--input-shape {text}: the model's input '{name}' has {kind} {_fmt(declared)}, and its {dims} "
                "fixed; --input-shape can set only dynamic dimensions (?)")


def model_op_types(path: str) -> set[str]:
    return {node.op_type for node in _onnx_graph(path).node}


def fallback_ops(text: str | None, model_path: str | None) -> list[str] | None:
    """``--fallback A,B`` as op types, each one visc imports (`visc.compiler.check_fallback`);
    an op type the model lacks is a warning: it places nothing on the CPU."""
    from visc.compiler import check_fallback

    if text is None:
        return None
    ops = [t.strip() for t in text.split(",") if t.strip()]
    try:
        check_fallback(ops)
    except CompileError as e:
        raise UsageError(f"--fallback {text}: {e}") from None
    if model_path is not None and not model_path.endswith(".visc"):
        present = model_op_types(model_path)
        absent = [op for op in ops if op not in present]
        if absent:
            warn(f"--fallback {text}: the model has no {', '.join(absent)} node, so "
                 f"{'it places' if len(absent) == 1 else 'they place'} nothing on the CPU")
    return ops


# -- devices and architectures -------------------------------------------------------------


def check_device(target: str, device: str | None) -> None:
    """The ``--device`` a compile names must exist now (else the compile succeeds and `visc run`
    fails later); the error lists the devices found."""
    if not device or target == "cpu":
        return
    if target == "opencl":
        from visc.runtime.devices import select_device

        select_device(device)
        return
    from visc.runtime.cuda import device_index, list_cuda_devices

    try:
        index = device_index(device)
    except DeviceError as e:
        raise DeviceError(f"--device {device}: {e}") from None
    try:
        found = list_cuda_devices()
    except ViscError as e:
        raise DeviceError(f"--device {device}: no CUDA device can be found here ({e}); leave --device out to "
                          "compile PTX for --arch without a GPU") from None
    if index >= len(found):
        listing = "; ".join(found) if found else "none"
        raise DeviceError(f"--device {device}: no CUDA device {index} (devices found: {listing})")


_LLVM_CPUS = (
    "import llvmlite.binding as b\n"
    "b.initialize_all_targets(); b.initialize_all_asmprinters()\n"
    "b.Target.from_triple('nvptx64-nvidia-cuda').create_target_machine(cpu='help')\n"
)


@functools.lru_cache(maxsize=1)
def llvm_cuda_archs() -> tuple[str, ...]:
    """The sm_XY processors the NVPTX backend of this llvmlite knows, sm_50 and newer (what
    visc's PTX needs). LLVM lists them for ``cpu='help'`` on stderr, so ask in a child process."""
    proc = subprocess.run([sys.executable, "-c", _LLVM_CPUS], capture_output=True, text=True, timeout=60)
    names = re.findall(r"^\s+(sm_\d+[a-z]?)\s+-", proc.stderr, flags=re.M)
    return tuple(sorted({n for n in names if int(re.match(r"sm_(\d+)", n).group(1)) >= 50},  # type: ignore[union-attr]
                        key=lambda n: (int(re.match(r"sm_(\d+)", n).group(1)), n)))  # type: ignore[union-attr]


def check_arch(arch: str | None, target: str) -> None:
    """``--arch`` must be an sm_XY architecture the PTX emitter (LLVM) knows; LLVM alone would
    only warn and emit PTX for a default processor."""
    if arch is None:
        return
    if target != "cuda":
        raise UsageError(f"--arch {arch}: only --target cuda has architectures (the target is {target})")
    from visc.backends.ptx import check_arch as check_form

    try:
        check_form(arch)
    except CompileError as e:
        raise UsageError(f"--arch {arch}: {e}") from None
    known = llvm_cuda_archs()
    if known and arch not in known:
        raise UsageError(f"--arch {arch}: LLVM's PTX backend does not know {arch}; it knows {', '.join(known)}")


__all__ = ["at_least", "above", "writable_output", "readable_file", "load_npy", "graph_inputs",
           "check_static_shapes", "fallback_ops", "check_device", "check_arch",
           "llvm_cuda_archs", "warn"]
