"""The deployable artifact: one zip file holding the plan, kernel sources, weights, the
schedules used and the visc version. Written atomically (temp file + rename), so a crash
mid-save never leaves a half-written model where a good one was."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from visc.errors import ArtifactError
from visc.runtime.plan import Plan
from visc.version import __version__

if TYPE_CHECKING:
    from visc.model import CompiledModel

FORMAT = "visc-artifact"
FORMAT_VERSION = 1


def save_artifact(model: CompiledModel, path: str) -> None:
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "visc_version": __version__,
        "target": model.target,
        "plan": json.loads(model.plan.to_json()),
        "schedules": model.schedules,
        "metadata": model.metadata,
        "sources": sorted(model.sources),
    }
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".visc-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=1))
            for target, source in model.sources.items():
                zf.writestr(f"kernels/{target}.txt", source)
            buf = io.BytesIO()
            np.savez(buf, **model.weights)
            zf.writestr("weights.npz", buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_artifact(path: str, device: str | None = None) -> CompiledModel:
    from visc.model import CompiledModel

    if not os.path.exists(path):
        raise ArtifactError(f"no compiled model at '{path}'")
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            if manifest.get("format") != FORMAT:
                raise ArtifactError(f"'{path}' is not a visc compiled model")
            if manifest.get("format_version") != FORMAT_VERSION:
                raise ArtifactError(
                    f"'{path}' has artifact format {manifest.get('format_version')}, this visc reads "
                    f"{FORMAT_VERSION}; recompile it with visc {__version__}"
                )
            sources = {t: zf.read(f"kernels/{t}.txt").decode() for t in manifest["sources"]}
            with np.load(io.BytesIO(zf.read("weights.npz")), allow_pickle=False) as data:
                weights = {k: data[k] for k in data.files}
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, ValueError, OSError) as e:
        raise ArtifactError(f"'{path}' is not a readable visc compiled model ({e})") from e
    return CompiledModel(
        plan=Plan.from_json(json.dumps(manifest["plan"])),
        sources=sources,
        weights=weights,
        target=manifest["target"],
        device=device,
        schedules=manifest.get("schedules", {}),
        metadata={**manifest.get("metadata", {}), "visc_version": manifest["visc_version"]},
    )
