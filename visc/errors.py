"""User-facing errors. Each renders as one paragraph naming the model's own nodes and ops;
the command-line tools print `str(error)` and exit non-zero, never a traceback."""

from __future__ import annotations


class ViscError(Exception):
    """Base of every error visc reports to a user."""


class ModelLoadError(ViscError):
    """The ONNX file cannot be read or is not a valid model."""


class UnsupportedModelError(ViscError):
    """One or more nodes cannot be imported; lists every problem at once."""

    def __init__(self, problems: list[str], header: str = "the model cannot be compiled"):
        self.problems = problems
        super().__init__(f"{header}: " + "; ".join(problems) + ".")


class InputShapeError(ViscError):
    """A given input shape or array does not fit the model."""


class CompileError(ViscError):
    """A pass or code generator failed on a model that imported cleanly."""


class KernelBuildError(ViscError):
    """A device compiler (OpenCL driver, ptxas, LLVM) rejected generated code."""


class DeviceError(ViscError):
    """No usable device, or a missing driver/package for the requested target."""


class ArtifactError(ViscError):
    """A compiled-model file is missing, corrupt or from an incompatible visc version."""


class PipelineError(ViscError):
    """A stage of the dataflow engine failed on a frame; chains the stage's own exception."""

    def __init__(self, message: str, stage: str = "", frame: int = -1, node: str | None = None):
        super().__init__(message)
        self.stage, self.frame, self.node = stage, frame, node
