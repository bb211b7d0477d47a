"""The deployable artifact: one zip file holding the plan, kernel sources, weights, the
schedules used and the visc version (a pipeline: one such set per stage under `stage<i>/`, and
`pipeline.json` saying how the stages connect). Written atomically (temp file + rename), so a crash
mid-save never leaves a half-written model where a good one was."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from visc.errors import ArtifactError
from visc.runtime.plan import CPU_DEVICE, PLAN_VERSION, Plan
from visc.version import __version__

if TYPE_CHECKING:
    from visc.model import CompiledModel
    from visc.runtime.pipeline import Pipeline

FORMAT = "visc-artifact"
FORMAT_VERSION = 1


PIPELINE_FORMAT = "visc-pipeline"


def _manifest(model: CompiledModel) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "visc_version": __version__,
        "target": model.target,
        "plan": json.loads(model.plan.to_json()),
        "schedules": model.schedules,
        "metadata": model.metadata,
        "sources": sorted(model.sources),
        "native": sorted(model.native),
    }


def _write_model(zf: zipfile.ZipFile, model: CompiledModel, prefix: str = "") -> None:
    """One compiled model's entries (manifest, kernels, weights) under ``prefix``."""
    zf.writestr(f"{prefix}manifest.json", json.dumps(_manifest(model), indent=1))
    for target, source in model.sources.items():
        zf.writestr(f"{prefix}kernels/{target}.txt", source)
    for target, code in model.native.items():
        zf.writestr(f"{prefix}native/{target}.bin", code)
    buf = io.BytesIO()
    np.savez(buf, **model.weights)
    zf.writestr(f"{prefix}weights.npz", buf.getvalue())


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (setting it to read
    it back would race with threads creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomically(path: str, write: Callable[[zipfile.ZipFile], None]) -> None:
    """Write the zip to a temporary file beside ``path`` and rename it over ``path``, so an
    interrupted save never leaves a half-written file where a good one was."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".visc-", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make the model private to its writer
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
            write(zf)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _save(path: str, write: Callable[[zipfile.ZipFile], None]) -> None:
    """`_write_atomically`, with a path that cannot be written (a directory, a missing folder, a
    full disk) reported as an `ArtifactError` naming it; the temporary file is gone by then."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ArtifactError(f"cannot save to '{path}': it is a directory; give a file name such as "
                            f"'{os.path.join(path, 'model.visc')}'")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ArtifactError(f"cannot save to '{path}': the folder '{folder}' does not exist")
    try:
        _write_atomically(path, write)
    except OSError as e:
        raise ArtifactError(f"cannot save to '{path}': {e.strerror or e}; nothing was written") from e


def save_artifact(model: CompiledModel, path: str) -> None:
    _save(path, lambda zf: _write_model(zf, model))


def save_pipeline(pipeline: Pipeline, path: str) -> None:
    """A pipeline: its description (`pipeline.json`) and each stage's model under `stage<i>/`."""

    def write(zf: zipfile.ZipFile) -> None:
        zf.writestr("pipeline.json", json.dumps({"format": PIPELINE_FORMAT, "format_version": FORMAT_VERSION,
                                                 "visc_version": __version__, **pipeline.description()}, indent=1))
        for i, model in enumerate(pipeline.models):
            _write_model(zf, model, f"stage{i}/")

    _save(path, write)


def _read_model(zf: zipfile.ZipFile, path: str, device: str | None, prefix: str = "") -> CompiledModel:
    from visc.model import CompiledModel

    manifest = json.loads(zf.read(f"{prefix}manifest.json"))
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"'{path}' is not a visc compiled model")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"'{path}' has artifact format {manifest.get('format_version')}, this visc reads "
            f"{FORMAT_VERSION}; recompile it with visc {__version__}"
        )
    sources = {t: zf.read(f"{prefix}kernels/{t}.txt").decode() for t in manifest["sources"]}
    native = {t: zf.read(f"{prefix}native/{t}.bin") for t in manifest.get("native", [])}
    with np.load(io.BytesIO(zf.read(f"{prefix}weights.npz")), allow_pickle=False) as data:
        weights = {k: data[k] for k in data.files}
    metadata = manifest.get("metadata", {})
    return CompiledModel(
        plan=upgrade_plan(Plan.from_json(json.dumps(manifest["plan"])), manifest["target"], metadata),
        sources=sources,
        weights=weights,
        target=manifest["target"],
        device=device,
        schedules=manifest.get("schedules", {}),
        metadata={**metadata, "visc_version": manifest["visc_version"]},
        native=native,
    )


def model_bytes(model: CompiledModel) -> bytes:
    """The model's artifact as bytes (what a Ray stage actor receives through the object store)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        _write_model(zf, model)
    return buf.getvalue()


def model_from_bytes(data: bytes, device: str | None = None) -> CompiledModel:
    """The model `model_bytes` wrote."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _read_model(zf, "<artifact bytes>", device)
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, KeyError, TypeError, json.JSONDecodeError, ValueError) as e:
        raise ArtifactError(f"not a readable visc compiled model ({e})") from e


def load_artifact(path: str, device: str | None = None) -> CompiledModel | Pipeline:
    """A compiled model, or a pipeline (a file saved by `Pipeline.save`): ``device``, if
    given, applies to a model; a pipeline's stages keep the devices they were built for."""
    if not os.path.exists(path):
        raise ArtifactError(f"no compiled model at '{path}'")
    _check_is_zip(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if "pipeline.json" not in zf.namelist():
                return _read_model(zf, path, device)
            from visc.runtime.pipeline import Pipeline

            data = json.loads(zf.read("pipeline.json"))
            if data.get("format") != PIPELINE_FORMAT or data.get("format_version") != FORMAT_VERSION:
                raise ArtifactError(f"'{path}' has pipeline format {data.get('format')} "
                                    f"{data.get('format_version')}; this visc reads {PIPELINE_FORMAT} "
                                    f"{FORMAT_VERSION}: recompile it with visc {__version__}")
            models = [_read_model(zf, path, info.get("device"), f"stage{i}/")
                      for i, info in enumerate(data["stages"])]
            return Pipeline.from_description(data, models)
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, KeyError, TypeError, json.JSONDecodeError, ValueError, OSError) as e:
        raise ArtifactError(f"'{path}' is not a readable visc compiled model ({e})") from e


def _check_is_zip(path: str) -> None:
    """A clear error for the files `visc.load` is most often given by mistake: a directory, or
    the ONNX model itself (a protobuf, whose first byte is field 1's tag, 0x08)."""
    if os.path.isdir(path):
        raise ArtifactError(f"'{path}' is a directory, not a compiled model file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise ArtifactError(f"cannot read '{path}': {e.strerror or e}") from e
    if head == b"PK\x03\x04":
        return
    if path.endswith(".onnx") or head[:1] == b"\x08":
        raise ArtifactError(f"'{path}' is an ONNX model, not a compiled one: compile it with "
                            f"visc.compile('{path}') (or `visc compile`), then save and load the result")
    raise ArtifactError(f"'{path}' is not a visc compiled model (not a file written by save or `visc compile`)")


def upgrade_plan(plan: Plan, target: str, metadata: dict[str, Any]) -> Plan:
    """A version-1 plan (launches without device and writes) completed from the artifact's
    metadata of that time: ``cpu_kernels`` (the CPU launches of a mixed plan) and
    ``launch_writes`` (per launch, the arguments it writes); all launches of a "cpu" target
    plan are CPU launches. Unknown writes stay None: all arguments."""
    if plan.version >= PLAN_VERSION:
        return plan
    cpu_kernels = set(metadata.get("cpu_kernels") or ())
    writes = metadata.get("launch_writes")
    if not isinstance(writes, list) or len(writes) != len(plan.launches):
        writes = [None] * len(plan.launches)
    for launch, written in zip(plan.launches, writes, strict=True):
        if target == "cpu" or launch.kernel in cpu_kernels:
            launch.device = CPU_DEVICE
        launch.writes = None if written is None else [int(i) for i in written]
    plan.version = PLAN_VERSION
    return plan
