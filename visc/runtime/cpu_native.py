"""Native object code for the CPU kernels: compiled ahead of time, stored in the artifact,
linked at load without running LLVM's optimizer.

    native = build_native(llvm_ir)          # NativeCode: one object per kernel, this host's CPU
    blob = native.to_bytes()                # what the artifact stores (`native/cpu.bin`)
    engine = link(NativeCode.from_bytes(blob))

The LLVM IR text of `visc.backends.cpu.emit_cpu` is a header (triple, data layout,
declarations) and then one self-contained ``define`` per kernel, so each kernel (with its
``.packed`` entry, `cpu_workers.packed_wrappers`) is a unit compiled apart at -O3: units
whose object is in the compile cache (kind "cpu-obj", keyed by the unit's text and the
host CPU) are not compiled again, and the others compile in parallel worker processes
(llvmlite serializes its calls with one process-wide lock, so threads would not overlap;
the processes stay for the next compile of this process).

An object holds instructions of the CPU it was built for: `NativeCode.signature` records
the triple, CPU name, features and LLVM version, and `missing_features` says what a loading
host lacks, so the executor can rebuild from the IR instead of crashing on an illegal
instruction.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from visc.errors import ArtifactError, KernelBuildError
from visc.runtime.cpu_workers import packed_wrappers

OBJECT_KIND = "cpu-obj"  # compile-cache kind of one unit's object code
FORMAT = "visc-cpu-native"
FORMAT_VERSION = 1
OPT_LEVEL = 3
# the optimizer's level for kernels visc vectorized itself: -O1 keeps what they need (SROA
# of the lane buffers, full unrolling, LICM, instcombine) and runs in 40% of -O3's time;
# the code ran as fast (Zen 1: DenseNet-121, ResNet-50, MobileNetV2 within 3%, outputs
# bitwise equal), DenseNet-121's cpu cold compile 17.2 -> 14.8 s
VECTOR_OPT_LEVEL = 1
JOBS_ENV = "VISC_COMPILE_JOBS"  # worker processes for cold object compiles (default: the usable cores)
# below this much uncached IR (characters), compiling in this process beats starting workers
# (~0.3 s each): ResNet-50's kernels are ~2 MB, a small MLP's a few kB
POOL_MIN_CHARS = 150_000
_MAGIC = b"VISCNAT1"
_VECTOR_TYPE = re.compile(r"<\d+ x (?:float|half|double|i\d+)>")
_LENGTH = struct.Struct("<Q")


@dataclass(frozen=True)
class HostSignature:
    """What object code depends on: the triple, the CPU it was tuned for, the features its
    instructions may use, and the LLVM that made it."""

    triple: str
    cpu: str
    features: tuple[str, ...]  # enabled features, without the "+"
    llvm: str

    def to_json(self) -> dict[str, Any]:
        return {"triple": self.triple, "cpu": self.cpu, "features": list(self.features), "llvm": self.llvm}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostSignature:
        return cls(str(data["triple"]), str(data["cpu"]), tuple(str(f) for f in data["features"]), str(data["llvm"]))

    def feature_string(self) -> str:
        return ",".join(f"+{f}" for f in self.features)


def host_signature() -> HostSignature:
    """This process's host: the triple, CPU name and enabled features LLVM detects."""
    from visc.runtime.cpu import llvm_binding

    binding = llvm_binding()
    flat = binding.get_host_cpu_features().flatten()
    enabled = sorted(f[1:] for f in flat.split(",") if f.startswith("+"))
    llvm = ".".join(map(str, binding.llvm_version_info))
    return HostSignature(binding.get_process_triple(), binding.get_host_cpu_name(), tuple(enabled), llvm)


def missing_features(built: HostSignature, host: HostSignature) -> list[str]:
    """Why code built for ``built`` cannot run on ``host``: another architecture, or the
    features its instructions may use that ``host`` lacks (empty: it runs)."""
    arch = built.triple.split("-", 1)[0]
    if arch != host.triple.split("-", 1)[0]:
        return [f"architecture {arch} (this host is {host.triple.split('-', 1)[0]})"]
    return sorted(set(built.features) - set(host.features))


@dataclass
class NativeCode:
    """Object files of the CPU kernels (one per unit) and the host they were built for."""

    signature: HostSignature
    objects: list[bytes]
    opt_level: int = OPT_LEVEL

    def to_bytes(self) -> bytes:
        header = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "opt_level": self.opt_level,
                             "signature": self.signature.to_json(),
                             "sizes": [len(o) for o in self.objects]}).encode()
        return b"".join([_MAGIC, _LENGTH.pack(len(header)), header, *self.objects])

    @classmethod
    def from_bytes(cls, data: bytes) -> NativeCode:
        """Parse `to_bytes`'s layout; a damaged blob is an `ArtifactError`."""
        try:
            if data[:8] != _MAGIC:
                raise ValueError("not visc native code")
            (length,) = _LENGTH.unpack_from(data, 8)
            start = 8 + _LENGTH.size
            header = json.loads(data[start:start + length])
            if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format {header.get('format')} v{header.get('format_version')}")
            objects, at = [], start + length
            for size in header["sizes"]:
                if at + size > len(data):
                    raise ValueError("truncated")
                objects.append(bytes(data[at:at + size]))
                at += size
            if at != len(data):
                raise ValueError("trailing bytes")
            return cls(HostSignature.from_json(header["signature"]), objects, int(header["opt_level"]))
        except (ValueError, KeyError, TypeError, struct.error) as e:
            raise ArtifactError(f"the CPU object code is damaged ({e}); compile the model again") from None


def split_units(llvm_ir: str) -> tuple[str, list[str]]:
    """The module's header (everything before the first ``define``) and its functions, one
    text each: the layout `visc.backends.llvm_emitter` guarantees."""
    head, sep, rest = llvm_ir.partition("\ndefine ")
    if not sep:
        return llvm_ir, []
    return head + "\n", ["define " + body for body in rest.split("\ndefine ")]


def _unit_key(header: str, body: str, signature: HostSignature, opt_level: int) -> str:
    from visc.runtime.compile_cache import CompileCache

    # the declarations a unit needs are fixed by its body; only the target lines key it
    target = "\n".join(line for line in header.splitlines() if line.startswith(("target ", "source_filename")))
    return CompileCache.key(OBJECT_KIND, f"native-{FORMAT_VERSION}", target, body, signature.triple,
                            signature.cpu, signature.feature_string(), signature.llvm, f"O{opt_level}")


def compile_unit(header: str, body: str, signature: HostSignature, opt_level: int = OPT_LEVEL) -> bytes:
    """One unit (``header`` + one function) -> an object file for ``signature``'s CPU, with a
    ``.packed`` entry for it if it is a kernel (pointers, then the i32 range)."""
    from visc.runtime.cpu import llvm_binding

    binding = llvm_binding()
    machine = binding.Target.from_triple(signature.triple).create_target_machine(
        cpu=signature.cpu, features=signature.feature_string(), opt=opt_level, jit=True)
    try:
        context = binding.create_context()
        module = binding.parse_assembly(header + body, context=context)
        module.triple = signature.triple
        module.data_layout = str(machine.target_data)
        signatures = [(fn.name, [str(a.type) for a in fn.arguments]) for fn in module.functions
                      if not fn.is_declaration]
        kernels = [(name, types) for name, types in signatures if _is_kernel(types)]
        if kernels:
            wrappers = binding.parse_assembly(packed_wrappers(kernels), context=context)
            wrappers.triple, wrappers.data_layout = module.triple, module.data_layout
            module.link_in(wrappers)
        module.verify()
    except RuntimeError as e:
        name = body.split("(", 1)[0].removeprefix("define ").strip()
        raise KernelBuildError(f"LLVM rejected the CPU kernel {name}: {e}") from e
    if opt_level > 0:
        # a kernel the compiler vectorized itself (`<16 x float>` register tiles) gains nothing
        # from LLVM's vectorizers, which cost a quarter of ResNet-50's -O3 time, nor from -O3
        # over -O1 (`VECTOR_OPT_LEVEL`); scalar loops (pools, elementwise tails) get them
        scalar = _VECTOR_TYPE.search(body) is None
        tuning = binding.create_pipeline_tuning_options(
            speed_level=opt_level if scalar else min(opt_level, VECTOR_OPT_LEVEL))
        tuning.loop_vectorization = scalar
        tuning.slp_vectorization = scalar
        builder = binding.create_pass_builder(machine, tuning)
        builder.getModulePassManager().run(module, builder)
    return bytes(machine.emit_object(module))


def _is_kernel(types: list[str]) -> bool:
    """A host kernel's signature: pointers, then the i32 range [lo, hi)."""
    return len(types) >= 2 and types[-2:] == ["i32", "i32"] and all(t.startswith("ptr") for t in types[:-2])


def compile_jobs() -> int:
    """Worker processes for cold compiles: VISC_COMPILE_JOBS, else the cores this process may use."""
    value = os.environ.get(JOBS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise KernelBuildError(f"{JOBS_ENV}={value!r}: expected a number of processes") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Worker:
    """One compile process (``python -m visc.runtime.cpu_native``): a request is a pickled
    (task, arguments) on its stdin (tasks: ``object``, one unit's object code; ``ptx``, one
    kernel's PTX), the answer (bytes, or the error message) comes back on its stdout, each
    with a length prefix. A plain subprocess, not multiprocessing: spawning would re-run the
    user's main module, forking a process that runs threads is unsafe."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "visc.runtime.cpu_native"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, close_fds=True)

    def run(self, task: str, args: tuple[Any, ...]) -> bytes:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        _send(self.proc.stdin, pickle.dumps((task, args)))
        ok, payload = pickle.loads(_receive(self.proc.stdout))
        if not ok:
            raise KernelBuildError(payload)
        return payload

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the worker's loop ends at end of input
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _send(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes:
    head = stream.read(_LENGTH.size)
    if len(head) != _LENGTH.size:
        raise EOFError("the compile process ended")
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the compile process ended")
    return data


_pool_lock = threading.Lock()
_idle: list[_Worker] = []  # started workers, kept for the next compile of this process


def prestart_workers(count: int | None = None) -> None:
    """Start the compile processes now, so their start-up (~0.3 s each) overlaps the
    compiler's front end instead of delaying the object compile of a large model."""
    count = compile_jobs() if count is None else count
    if count <= 1:
        return
    with _pool_lock:
        missing = count - len(_idle)
    fresh = [_Worker() for _ in range(max(0, missing))]
    _return_workers(fresh)


def _take_workers(count: int) -> list[_Worker]:
    with _pool_lock:
        taken = [_idle.pop() for _ in range(min(count, len(_idle)))]
    return taken + [_Worker() for _ in range(count - len(taken))]


def _return_workers(workers: list[_Worker]) -> None:
    alive = [w for w in workers if w.proc.poll() is None]
    for dead in (w for w in workers if w not in alive):
        dead.close()
    with _pool_lock:
        _idle.extend(alive)


@atexit.register
def _close_workers() -> None:
    with _pool_lock:
        workers, _idle[:] = list(_idle), []
    for w in workers:
        w.close()


def _task(name: str) -> Callable[..., bytes]:
    """The function a compile-process task runs (the PTX one imported only when asked for)."""
    if name == "object":
        return compile_unit
    if name == "ptx":
        from visc.runtime.ptx_codegen import compile_ptx

        return compile_ptx
    raise KernelBuildError(f"unknown compile task {name!r}")


def run_tasks(task: str, requests: Sequence[tuple[Any, ...]], jobs: int, sizes: Sequence[int]) -> list[bytes]:
    """``task`` over every request, in up to ``jobs`` compile processes (largest `sizes`
    first); in this process where one job is asked for. A process that dies has its
    remaining work done here; the first error is raised once all have stopped."""
    run = _task(task)
    if jobs <= 1 or len(requests) <= 1:
        return [run(*r) for r in requests]
    # largest first, so the long conv kernels don't all land at the end of one queue
    todo = sorted(range(len(requests)), key=lambda i: sizes[i])
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def serve(worker: _Worker | None) -> None:
        while True:
            with lock:
                if not todo or errors:
                    return
                i = todo.pop()
            try:
                if worker is None:
                    out = run(*requests[i])
                else:
                    try:
                        out = worker.run(task, requests[i])
                    except (EOFError, OSError, pickle.UnpicklingError):
                        worker = None  # the process died (killed, out of memory): compile here
                        out = run(*requests[i])
            except BaseException as e:  # noqa: BLE001 - handed to the caller below
                with lock:
                    errors.append(e)
                return
            with lock:
                results[i] = out

    workers = _take_workers(min(jobs, len(requests)))
    threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _return_workers(workers)
    if errors:
        raise errors[0]
    return [results[i] for i in range(len(requests))]


def _compile_all(header: str, bodies: Sequence[str], signature: HostSignature, opt_level: int,
                 jobs: int) -> list[bytes]:
    if sum(map(len, bodies)) < POOL_MIN_CHARS:
        jobs = 1
    return run_tasks("object", [(header, body, signature, opt_level) for body in bodies], jobs,
                     [len(b) for b in bodies])


def _serve_requests() -> None:
    """The compile process's loop (see `_Worker`)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the answer stream
    while True:
        try:
            task, args = pickle.loads(_receive(stdin))
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, _task(task)(*args))
        except Exception as e:  # noqa: BLE001 - sent back, raised in the parent
            answer = (False, str(e))
        _send(stdout, pickle.dumps(answer))


def build_native(llvm_ir: str, opt_level: int = OPT_LEVEL, jobs: int | None = None,
                 signature: HostSignature | None = None, cache: Any = True) -> NativeCode:
    """Object code of every function of ``llvm_ir`` for this host (or ``signature``): from
    the compile cache where it has the unit, else compiled (in ``jobs`` processes) and
    stored there. ``cache``: a `CompileCache`, True for the default one, False for none."""
    from visc.runtime.compile_cache import default_cache

    signature = signature or host_signature()
    store = default_cache() if cache is True else (cache or None)
    header, bodies = split_units(llvm_ir)
    keys = [_unit_key(header, body, signature, opt_level) for body in bodies] if store is not None else []
    objects: list[bytes | None] = [store.get(OBJECT_KIND, k) for k in keys] if store is not None else \
        [None] * len(bodies)
    todo = [i for i, obj in enumerate(objects) if obj is None]
    built = _compile_all(header, [bodies[i] for i in todo], signature, opt_level,
                         compile_jobs() if jobs is None else jobs)
    for i, obj in zip(todo, built, strict=True):
        objects[i] = obj
        if store is not None:
            store.put(OBJECT_KIND, keys[i], obj)
    return NativeCode(signature, [obj for obj in objects if obj is not None], opt_level)


def link(native: NativeCode, extra_ir: str = "") -> tuple[Any, Any]:
    """An MCJIT engine holding ``native``'s objects, and ``extra_ir`` (the worker runtime,
    compiled here: it is small and depends on this host's system calls); returns the engine
    and the parsed ``extra_ir`` module (optimized)."""
    from visc.runtime.cpu import llvm_binding

    binding = llvm_binding()
    sig = native.signature
    machine = binding.Target.from_triple(sig.triple).create_target_machine(
        cpu=sig.cpu, features=sig.feature_string(), opt=native.opt_level, jit=True)
    try:
        module = binding.parse_assembly(extra_ir)
        module.triple = sig.triple
        module.data_layout = str(machine.target_data)
        module.verify()
    except RuntimeError as e:
        raise KernelBuildError(f"LLVM rejected the CPU runtime's IR: {e}") from e
    if native.opt_level > 0 and extra_ir:
        tuning = binding.create_pipeline_tuning_options(speed_level=native.opt_level)
        builder = binding.create_pass_builder(machine, tuning)
        builder.getModulePassManager().run(module, builder)
    engine = binding.create_mcjit_compiler(module, machine)
    for obj in native.objects:
        try:
            engine.add_object_file(binding.ObjectFileRef.from_data(obj))
        except RuntimeError as e:
            raise KernelBuildError(f"the CPU object code cannot be linked: {e}") from e
    engine.finalize_object()
    return engine, module


if __name__ == "__main__":
    _serve_requests()

__all__ = ["HostSignature", "NativeCode", "build_native", "compile_unit", "compile_jobs", "host_signature", "link",
           "run_tasks",
           "missing_features", "prestart_workers", "split_units", "OBJECT_KIND"]
