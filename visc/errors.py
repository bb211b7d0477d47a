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


class InputTypeError(InputShapeError):
    """An input array's dtype is not the model's (onnxruntime rejects these too), or converting
    it with ``cast=True`` would lose what it means (complex to real, 2.7 to an integer index).
    A kind of `InputShapeError`, so code that catches a misfit input catches this one too."""


class CompileError(ViscError):
    """A pass or code generator failed on a model that imported cleanly."""


class KernelBuildError(ViscError):
    """A device compiler (OpenCL driver, ptxas, LLVM) rejected generated code."""


class RuntimeCheckError(ViscError):
    """A kernel found its input data invalid (an index out of range); names the ONNX node."""


class DeviceError(ViscError):
    """No usable device, or a missing driver/package for the requested target."""


class ArtifactError(ViscError):
    """A compiled-model file is missing, corrupt or from an incompatible visc version."""


class UsageError(ViscError):
    """A command-line option has a value visc cannot use (a count below its minimum, an
    unknown name, an input file given twice): found before any long compile or tune."""


class OutputPathError(ViscError):
    """A file the user asked visc to write cannot be written there (a missing or read-only
    folder, a directory): checked before the work whose result it would hold."""


class RecordsError(ViscError):
    """Tuning records that cannot be read or written (missing, read-only, not a database)."""


class PipelineError(ViscError):
    """A stage of the dataflow engine failed on a frame; chains the stage's own exception."""

    def __init__(self, message: str, stage: str = "", frame: int = -1, node: str | None = None):
        super().__init__(message)
        self.stage, self.frame, self.node = stage, frame, node
