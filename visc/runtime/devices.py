"""OpenCL device selection.

Default: the first GPU of any platform, else the first CPU device (PoCL on a machine with
no GPU driver). A spec string picks explicitly: ``"P:D"`` (platform and device indices, as
`visc devices` lists them) or a case-insensitive substring of the device or platform
name. ``VISC_OPENCL_DEVICE`` in the environment is the spec used when none is given.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from visc.errors import DeviceError

ENV_VAR = "VISC_OPENCL_DEVICE"


@dataclass(frozen=True)
class DeviceInfo:
    platform_index: int
    device_index: int
    platform: str
    name: str
    kind: str  # "GPU", "CPU", "ACCELERATOR", ...

    @property
    def spec(self) -> str:
        return f"{self.platform_index}:{self.device_index}"

    def __str__(self) -> str:
        return f"{self.spec}  {self.name} [{self.kind}] ({self.platform})"


def _cl() -> Any:
    try:
        import pyopencl
    except ImportError as e:  # pragma: no cover - pyopencl is a dependency
        raise DeviceError(f"pyopencl is not installed ({e}); `pip install pyopencl pocl-binary-distribution`") from e
    return pyopencl


def _devices() -> list[tuple[DeviceInfo, Any]]:
    cl = _cl()
    try:
        platforms = cl.get_platforms()
    except (cl.LogicError, cl.RuntimeError) as e:
        raise DeviceError(
            f"no OpenCL platform found ({e}); install a GPU driver's OpenCL ICD or the "
            "`pocl-binary-distribution` package for a CPU device") from e
    found = []
    for p, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except (cl.LogicError, cl.RuntimeError):
            continue
        for d, device in enumerate(devices):
            kind = _kind(cl, int(device.type))
            found.append((DeviceInfo(p, d, platform.name.strip(), device.name.strip(), kind), device))
    return found


def _kind(cl: Any, bits: int) -> str:
    for flag, name in ((cl.device_type.GPU, "GPU"), (cl.device_type.CPU, "CPU"),
                       (cl.device_type.ACCELERATOR, "ACCELERATOR")):
        if bits & int(flag):
            return name
    return "OTHER"


def list_devices() -> list[DeviceInfo]:
    """Every OpenCL device of every platform, in (platform, device) order."""
    return [info for info, _ in _devices()]


def default_target() -> str:
    """The target for a user who names none: ``cuda`` where visc can drive an NVIDIA GPU
    (pycuda and a device), else ``opencl`` on an OpenCL GPU, else the CPU backend, which
    beats an OpenCL CPU driver (ResNet-50 on 2 cores: 24 ms against PoCL's 61)."""
    from visc.runtime.cuda import detect_arch

    if detect_arch() is not None:
        try:
            import pycuda.driver  # noqa: F401 - the cuda target runs through pycuda
        except ImportError:
            pass
        else:
            return "cuda"
    try:
        if any(info.kind == "GPU" for info in list_devices()):
            return "opencl"
    except DeviceError:
        pass
    return "cpu"


def _listing(devices: list[tuple[DeviceInfo, Any]]) -> str:
    if not devices:
        return "no OpenCL devices are available"
    return "available devices: " + "; ".join(str(info) for info, _ in devices)


def select_device(spec: str | None = None) -> Any:
    """The `pyopencl.Device` that ``spec`` names (see the module docstring)."""
    return _select(spec)[1]


def _select(spec: str | None) -> tuple[DeviceInfo, Any]:
    spec = spec if spec is not None else os.environ.get(ENV_VAR) or None
    devices = _devices()
    if not devices:
        raise DeviceError("no OpenCL device found on any platform; install a GPU driver's OpenCL ICD "
                          "or the `pocl-binary-distribution` package")
    if spec is None or not spec.strip():
        gpus = [d for d in devices if d[0].kind == "GPU"]
        cpus = [d for d in devices if d[0].kind == "CPU"]
        return (gpus or cpus or devices)[0]
    spec = spec.strip()
    m = re.fullmatch(r"(\d+):(\d+)", spec)
    if m:
        p, d = int(m.group(1)), int(m.group(2))
        for info, dev in devices:
            if (info.platform_index, info.device_index) == (p, d):
                return info, dev
        raise DeviceError(f"no OpenCL device {spec}; {_listing(devices)}")
    needle = spec.lower()
    for info, dev in devices:
        if needle in info.name.lower() or needle in info.platform.lower() or needle == info.kind.lower():
            return info, dev
    raise DeviceError(f"no OpenCL device matches '{spec}'; {_listing(devices)}")


def describe_devices() -> str:
    """One line per device, the default one marked with `*` (for `visc devices`)."""
    try:
        devices = _devices()
    except DeviceError as e:
        return str(e)
    if not devices:
        return "no OpenCL devices are available"
    note = f"(* = default; choose with --device P:D or a name substring, or ${ENV_VAR})"
    try:
        default = _select(None)[0]
    except DeviceError as e:
        default, note = None, f"${ENV_VAR}: {e}"
    lines = [f"{'*' if info == default else ' '} {info}" for info, _ in devices]
    return "\n".join([*lines, note])


_CONTEXTS: dict[str, tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def get_context(spec: str | None = None) -> tuple[Any, Any]:
    """(context, device) for ``spec``; one context per device per process, so many executors
    share it (creating PoCL contexts is not free)."""
    info, device = _select(spec)
    with _LOCK:
        if info.spec not in _CONTEXTS:
            _CONTEXTS[info.spec] = (_cl().Context([device]), device)
        return _CONTEXTS[info.spec]


__all__ = ["DeviceInfo", "list_devices", "select_device", "describe_devices", "get_context", "ENV_VAR"]
