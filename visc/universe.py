"""xDSL plugin entry point: makes `xdsl-opt` see the vision dialect and visc's passes."""

from __future__ import annotations

import importlib.util

from xdsl.universe import Universe

from visc.passes import PASS_MODULES, available_passes


def _vision():
    from visc.dialects.vision import Vision

    return Vision


def _targets():
    found = {}
    if importlib.util.find_spec("visc.backends.opencl") is not None:

        def opencl():
            from visc.backends.opencl import OpenCLTarget

            return OpenCLTarget

        found["opencl"] = opencl
    if importlib.util.find_spec("visc.backends.ptx") is not None:

        def ptx():
            from visc.backends.ptx import PTXTarget

            return PTXTarget

        found["ptx"] = ptx
    if importlib.util.find_spec("llvmlite") is not None:

        def cpu():
            from visc.backends.cpu import CpuTarget

            return CpuTarget

        found["cpu"] = cpu
    return found


VISC_UNIVERSE = Universe(
    all_dialects={"vision": _vision},
    # upstream xDSL passes that visc's pipelines name (convert-scf-to-cf, ...) are xDSL's own entries
    all_passes={k: v for k, v in available_passes().items() if not PASS_MODULES[k][0].startswith("xdsl.")},
    all_targets=_targets(),
)
