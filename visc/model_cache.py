"""The model cache of `visc.compile`: a compile whose model, target, device, options and
records an earlier compile had returns that compile's model from the persistent cache
(`visc.runtime.compile_cache`, kind "model") instead of running the passes again.

The key covers what the result depends on: the model's content (weights included), the
target, the device as the compiler sees it (OpenCL: platform, device and driver; CUDA: the
PTX architecture and the GPU, whose shipped records apply; every target: this host's CPU
and its features, which size the CPU kernels), the input shapes, the fallback op types, the
tuning records (their file's bytes, a `RecordBook`'s schedules, or the shipped files), the
libraries that shape the result, and visc's code (`CompileCache.key`). Records at a
database URL are not cached: their content cannot be fingerprinted cheaply.

This module reads the model and looks it up without the compiler (no xDSL), so a hit costs
reading the model and the entry. The entry is the artifact (`visc.runtime.artifact`) with
what a compile says beside its result in its metadata under ``_cache`` (taken out on a hit):
the report's sizes, the warnings the shipped records gave, and what a `RecordBook` applied,
so `visc compile` prints the same lines either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tempfile
import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import onnx

from visc.errors import ViscError

if TYPE_CHECKING:
    from visc.model import CompiledModel
    from visc.runtime.compile_cache import CompileCache
    from visc.runtime.pipeline import Pipeline

KIND = "model"
SIDE = "_cache"  # the metadata key of the entry's own notes
# what a key cannot be made of: the cache is then skipped, and the compile reports any mistake
_UNKEYABLE = (ViscError, OSError, ValueError, TypeError, AttributeError, RuntimeError, ImportError)


def device_identity(target: str, device: str | None, arch: str | None) -> str:
    """What the compiler reads of the device: two OpenCL devices of one name but different
    drivers, or a CPU with other vector features, compile differently."""
    from visc.runtime.cpu import llvm_binding

    binding = llvm_binding()
    parts = [f"host={platform.machine()}:{binding.get_host_cpu_name()}:{binding.get_host_cpu_features().flatten()}"]
    if target == "opencl":
        try:
            from visc.runtime.devices import select_device

            dev = select_device(device or None)
            parts.append("opencl=" + "|".join(str(x).strip() for x in (
                dev.platform.name, dev.platform.version, dev.name, dev.version, dev.driver_version, dev.type,
                dev.mem_base_addr_align)))
        except (ImportError, ViscError):
            parts.append("opencl=none")  # compiles for a generic GPU (see `visc.compiler.device_type_for`)
    elif target == "cuda":
        from visc.runtime.cuda import DEFAULT_ARCH, detect_arch

        parts.append(f"cuda={arch or detect_arch() or DEFAULT_ARCH}:{_cuda_name(device)}")
    return ";".join(parts)


def _cuda_name(device: str | None) -> str:
    """The GPU whose shipped records a compile would apply (`visc.tuner.measure.device_identity`)."""
    try:
        from visc.runtime.cuda import list_cuda_devices

        names = list_cuda_devices()
    except Exception:  # noqa: BLE001 - no driver, no GPU: no GPU records apply
        return "none"
    index = int(device) if device and device.isdigit() else 0
    return names[index].split(": ", 1)[-1] if index < len(names) else "none"


def records_identity(records: object) -> str | None:
    """What the tuning records a compile applies are (the device is keyed apart); None when
    they cannot be fingerprinted (a database URL) or read (the compile reports that)."""
    if records is False:
        return "records=none"
    if records is None or records is True:
        from visc.tuner.shipped import shipped_dir

        folder = shipped_dir()
        h = hashlib.sha256()
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
        except OSError:
            names = []
        for name in names:
            h.update(name.encode() + b"\0")
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
            except OSError as e:
                h.update(str(e).encode())
        return f"records=shipped:{folder}:{h.hexdigest()}"
    if hasattr(records, "schedules") and hasattr(records, "device"):  # a RecordBook
        book: Any = records
        return "records=book:" + json.dumps({"device": book.device, "source": book.source,
                                             "schedules": book.schedules}, sort_keys=True)
    path = os.fspath(records)  # type: ignore[arg-type]
    if "://" in path:
        return None
    with open(path, "rb") as f:
        return f"records=file:{os.path.basename(path)}:{hashlib.sha256(f.read()).hexdigest()}"


def _library_versions() -> str:
    import llvmlite
    import numpy

    try:
        from importlib.metadata import version

        xdsl = version("xdsl")
    except Exception:  # noqa: BLE001 - not installed as a distribution: its code is then unknown
        xdsl = "?"
    return f"onnx={onnx.__version__};xdsl={xdsl};numpy={numpy.__version__};llvmlite={llvmlite.__version__}"


class CacheRequest:
    """One `visc.compile` call's entry: the model already read (``proto``, ``label``), the key,
    and the lookup and store around a compile."""

    def __init__(self, cache: CompileCache, key: str, proto: onnx.ModelProto, label: str, device: str | None,
                 records: object, start: float):
        self.cache, self.key, self.proto, self.label = cache, key, proto, label
        self.device, self.records, self.start = device, records, start
        self._notes: dict[str, Any] = {}
        self._applied_ops = 0

    def lookup(self) -> CompiledModel | Pipeline | None:
        """The model an earlier compile stored under this key (None: a miss), its report
        saying it came from the cache (``report.cached``; ``seconds["cache"]``: reading the
        model, keying and loading the entry). An entry that does not load is dropped."""
        from visc.report import CompileReport
        from visc.runtime.artifact import model_from_bytes

        data = self.cache.get(KIND, self.key)
        if data is None:
            return None
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                is_pipeline = "pipeline.json" in zf.namelist()
            if not is_pipeline:
                result: Any = model_from_bytes(data, device=self.device)
                result.metadata.pop("visc_version", None)  # a fresh compile's metadata has none
                models = [result]
                notes = result.metadata.pop(SIDE)
            else:
                result = _pipeline_from_bytes(data)
                models = list(result.models)
                notes = result.metadata.pop(SIDE)
            fields = notes.get("report", {})
            report = CompileReport(arena_bytes=int(fields.get("arena_bytes", 0)),
                                   arena_naive_bytes=int(fields.get("arena_naive_bytes", 0)),
                                   num_kernels=int(fields.get("num_kernels", 0)),
                                   num_launches=int(fields.get("num_launches", 0)), cached=True)
            problems = [str(m) for m in notes.get("warnings", [])]
            applied = notes.get("records")
        except (ViscError, KeyError, TypeError, ValueError, AttributeError, OSError, zipfile.BadZipFile):
            self.cache.discard(KIND, self.key)
            return None
        if problems:
            from visc.tuner.records import ShippedRecordsWarning

            for message in problems:
                warnings.warn(message, ShippedRecordsWarning, stacklevel=4)
        book: Any = self.records
        if applied and hasattr(book, "applied"):  # what `RecordBook.apply` learnt, for `visc compile`
            book.applied |= set(applied["applied"])
            book.missing |= set(applied["missing"])
            book.applied_ops += int(applied["applied_ops"])
        report.seconds["cache"] = time.perf_counter() - self.start
        models[0].report = report
        return result

    def begin(self, records: object) -> None:
        """Before a compile on a miss: note what `store` needs from before it."""
        self._applied_ops = int(getattr(records, "applied_ops", 0))
        if records is None or records is True:
            from visc.tuner.records import shipped_problems

            self._notes["warnings"] = shipped_problems()

    def store(self, result: CompiledModel | Pipeline) -> None:
        """After a compile on a miss: put its result under the key. A result that cannot be
        stored is a warning: the compile itself succeeded."""
        from visc.model import CompiledModel
        from visc.runtime.artifact import model_bytes

        notes = dict(self._notes)
        book: Any = self.records
        if hasattr(book, "applied"):
            notes["records"] = {"applied": sorted(book.applied), "missing": sorted(book.missing),
                                "applied_ops": book.applied_ops - self._applied_ops}
        first = result if isinstance(result, CompiledModel) else result.models[0]
        report = getattr(first, "report", None)
        if report is not None:
            notes["report"] = {"arena_bytes": report.arena_bytes, "arena_naive_bytes": report.arena_naive_bytes,
                               "num_kernels": report.num_kernels, "num_launches": report.num_launches}
        result.metadata[SIDE] = notes
        try:
            data = model_bytes(result) if isinstance(result, CompiledModel) else _pipeline_bytes(result)
        except (ViscError, TypeError, ValueError, OSError) as e:
            warnings.warn(f"the compiled model was not stored in the compile cache: {e}", RuntimeWarning,
                          stacklevel=4)
            return
        finally:
            result.metadata.pop(SIDE, None)
        self.cache.put(KIND, self.key, data)


def open_request(model: object, target: str, input_shapes: Mapping[str, Sequence[int]] | None,
                 device: str | None, arch: str | None, fallback: Sequence[str] | None,
                 records: object) -> CacheRequest | None:
    """The cache entry of this compile call, its model read; None when the cache is off or
    the call cannot be keyed (any mistake in it is the compile's to report)."""
    from visc.runtime.compile_cache import CompileCache, default_cache

    cache = default_cache()
    if cache is None:
        return None
    start = time.perf_counter()
    try:
        from visc.frontend.model_file import read_model

        records_text = records_identity(records)
        if records_text is None:
            return None
        proto, label, digest = read_model(model)  # type: ignore[arg-type]
        shapes = json.dumps(sorted((str(k), [int(d) for d in v]) for k, v in (input_shapes or {}).items()))
        fallback_text = "none" if fallback is None or target == "cpu" else json.dumps(sorted(fallback))
        key = CompileCache.key(KIND, f"model={digest}", f"target={target}", device_identity(target, device, arch),
                               f"shapes={shapes}", f"fallback={fallback_text}", records_text, _library_versions())
    except _UNKEYABLE:
        return None
    return CacheRequest(cache, key, proto, label, device, records, start)


# -- pipelines (a model with data-dependent shapes) go through a file ---------------------------


def _pipeline_bytes(pipe: Pipeline) -> bytes:
    from visc.runtime.artifact import save_pipeline

    fd, path = tempfile.mkstemp(prefix="visc-", suffix=".visc")
    os.close(fd)
    try:
        save_pipeline(pipe, path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def _pipeline_from_bytes(data: bytes) -> Pipeline:
    from visc.runtime.artifact import load_artifact

    fd, path = tempfile.mkstemp(prefix="visc-", suffix=".visc")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        pipe = load_artifact(path)
    finally:
        os.unlink(path)
    if not hasattr(pipe, "stages"):
        raise ValueError("a cached pipeline holds a single model")
    return pipe  # type: ignore[return-value]


__all__ = ["KIND", "CacheRequest", "open_request", "device_identity", "records_identity"]
