"""xDSL plugin entry point: makes `xdsl-opt` see the vision dialect and visc's passes."""

from __future__ import annotations

import importlib.util

from xdsl.universe import Universe

from visc.passes import available_passes


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
    return found


VISC_UNIVERSE = Universe(
    all_dialects={"vision": _vision},
    all_passes=available_passes(),
    all_targets=_targets(),
)
