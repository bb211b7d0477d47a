"""The PTX target: stage-5 (or llvm-dialect) kernels -> PTX text through LLVM's NVPTX backend
(llvmlite), for one GPU architecture (``sm_80``, ``sm_90``, ...) and PTX ISA version.

    emit_ptx(module, arch="sm_90")      # stage-5 or llvm-dialect module -> PTX text
    visc-opt stage5.mlir -t 'ptx{arch=sm_90}'

Stage-5 `gpu.func` kernels are printed as LLVM IR text by
`visc.backends.llvm_emitter.NVPTXEmitter` (rewriting them through the llvm dialect,
`NVVM_PIPELINE` + `visc.passes.llvm.translate`, takes ~30x longer, for the same PTX); a
module already in the llvm dialect is still translated that way. Kernels become
``ptx_kernel`` functions with ``.reqntid``; calls of libdevice's ``__nv_*`` math functions
are resolved by linking ``libdevice.10.bc`` from the CUDA toolkit, which LLVM then inlines
(and ``__nvvm_reflect`` folds), so the PTX is self-contained. The module is optimized at
-O3 before code generation, like clang's CUDA path. A large module's kernels are compiled
one per unit in the compile processes (`visc.runtime.ptx_codegen`) and their PTX joined:
ResNet-50's PTX took 1.5 s in one LLVM module, 1.7 s of work split over the cores.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from xdsl.context import Context
from xdsl.dialects import gpu, llvm
from xdsl.dialects.builtin import DenseArrayBase, ModuleOp
from xdsl.ir import Operation
from xdsl.utils.target import Target

from visc.errors import CompileError, KernelBuildError
from visc.runtime.cuda import DEFAULT_ARCH, detect_arch
from visc.runtime.ptx_codegen import TRIPLE, binding

PTX_CACHE_KIND = "ptx"  # PTX by LLVM IR, arch and LLVM version in the compile cache
LIBDEVICE_ENV = "VISC_LIBDEVICE"

# the oldest PTX ISA version each architecture needs, and the floor visc uses (7.8: what
# CUDA 11.8 drivers and later accept, and ptxas 13 still assembles for sm_80/sm_90)
_MIN_PTX = {"sm_90a": (8, 0), "sm_100": (8, 6), "sm_100a": (8, 6), "sm_101": (8, 6), "sm_120": (8, 7),
            "sm_120a": (8, 7)}
_PTX_FLOOR = (7, 8)
_ARCH = re.compile(r"^sm_(\d+)([af]?)$")

def llvm_version() -> tuple[int, ...]:
    return tuple(binding().llvm_version_info)


def check_arch(arch: str) -> str:
    if not _ARCH.match(arch):
        raise CompileError(f"'{arch}' is not a CUDA architecture; use the form sm_80, sm_90, sm_90a")
    major = int(_ARCH.match(arch).group(1))  # type: ignore[union-attr]
    if major < 50:
        raise CompileError(f"{arch} is too old: visc's PTX needs sm_50 or newer")
    return arch


def default_ptx_version(arch: str) -> str:
    """The PTX ISA version visc targets for ``arch``: the architecture's minimum, at least 7.8."""
    major, minor = max(_MIN_PTX.get(check_arch(arch), _PTX_FLOOR), _PTX_FLOOR)
    return f"{major}.{minor}"


# -- libdevice ------------------------------------------------------------------------------


def libdevice_candidates() -> list[str]:
    """Where libdevice.10.bc is looked for, in order."""
    paths = []
    if os.environ.get(LIBDEVICE_ENV):
        paths.append(os.environ[LIBDEVICE_ENV])
    for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"):
        if os.environ.get(var):
            paths.append(os.path.join(os.environ[var], "nvvm", "libdevice", "libdevice.10.bc"))
    ptxas = shutil.which("ptxas") or shutil.which("nvcc")
    if ptxas:
        root = os.path.dirname(os.path.dirname(os.path.realpath(ptxas)))
        paths.append(os.path.join(root, "nvvm", "libdevice", "libdevice.10.bc"))
    paths.append("/usr/local/cuda/nvvm/libdevice/libdevice.10.bc")
    paths.extend(sorted(glob.glob("/usr/local/cuda-*/nvvm/libdevice/libdevice.10.bc"), reverse=True))
    try:  # the CUDA toolkit's pip wheels (nvidia-cuda-nvcc-cu12 / -cu13)
        import nvidia

        for root in nvidia.__path__:
            paths.extend(sorted(glob.glob(os.path.join(root, "**", "libdevice.10.bc"), recursive=True)))
    except ImportError:
        pass
    return paths


def find_libdevice() -> str | None:
    for path in libdevice_candidates():
        if os.path.isfile(path):
            return path
    return None


_libdevice_bytes: bytes | None = None


def _libdevice() -> bytes:
    global _libdevice_bytes
    if _libdevice_bytes is None:
        path = find_libdevice()
        if path is None:
            raise CompileError(
                "the kernels call CUDA math functions (exp, tanh, erf, pow, ...) that come from NVIDIA's "
                "libdevice.10.bc, which was not found; install the CUDA toolkit (or `pip install "
                f"nvidia-cuda-nvcc-cu12`) or set {LIBDEVICE_ENV}=/path/to/libdevice.10.bc")
        with open(path, "rb") as f:
            _libdevice_bytes = f.read()
    return _libdevice_bytes


# -- emission -------------------------------------------------------------------------------


def _kernel_modules(module: Operation) -> list[gpu.ModuleOp]:
    return [op for op in module.walk() if isinstance(op, gpu.ModuleOp)]


def _stage5_functions(module: ModuleOp) -> list[gpu.FuncOp]:
    """The `gpu.func`s of ``module``'s kernel modules (none once lowered to the llvm
    dialect); a module mixing both forms is refused."""
    functions: list[gpu.FuncOp] = []
    lowered = False
    for m in _kernel_modules(module):
        for op in m.body.block.ops:
            if isinstance(op, gpu.FuncOp):
                functions.append(op)
            elif isinstance(op, llvm.FuncOp | llvm.GlobalOp):
                lowered = True
    if functions and lowered:
        raise CompileError("the PTX target takes kernels either all as gpu.func (stage 5) or all in the llvm "
                           "dialect, not both")
    return functions


def _llvm_ops(module: ModuleOp) -> list[Operation]:
    kernels = _kernel_modules(module)
    ops: list[Operation] = []
    if kernels:
        for m in kernels:
            ops.extend(m.body.block.ops)
    else:  # a bare module of llvm functions (or a model whose plan launches no kernel)
        ops = [op for op in module.ops if isinstance(op, llvm.FuncOp | llvm.GlobalOp)]
    left = sorted({op.name for op in ops if not isinstance(op, llvm.FuncOp | llvm.GlobalOp)}
                  | {inner.name for op in ops for inner in op.walk() if not inner.name.startswith("llvm.")
                     and inner is not op})
    if left:
        raise CompileError("the PTX target needs kernels in the llvm dialect; left unlowered: " + ", ".join(left))
    return ops


def _annotate(ir_module: Any, ops: list[Operation]) -> list[str]:
    """Kernel calling convention and launch bounds on the llvmlite module; returns kernel names."""
    import llvmlite.ir as ir

    kernels = []
    annotations = None
    for op in ops:
        if not isinstance(op, llvm.FuncOp) or "nvvm.kernel" not in op.attributes:
            continue
        name = op.sym_name.data
        kernels.append(name)
        fn = ir_module.get_global(name)
        entries: list[tuple[str, int]] = []
        if llvm_version() >= (20,):
            fn.calling_convention = "ptx_kernel"
        else:
            entries.append(("kernel", 1))
        reqntid = op.attributes.get("nvvm.reqntid")
        if isinstance(reqntid, DenseArrayBase):
            for axis, size in zip("xyz", reqntid.get_values(), strict=False):
                entries.append((f"reqntid{axis}", int(size)))
        if entries:
            if annotations is None:
                annotations = ir_module.add_named_metadata("nvvm.annotations")
            for key, value in entries:
                annotations.add(ir_module.add_metadata([fn, ir.MetaDataString(ir_module, key),
                                                        ir.Constant(ir.IntType(32), value)]))
    return kernels


def emit_ptx(module: ModuleOp, arch: str = DEFAULT_ARCH, ptx_version: str | None = None,
             opt_level: int = 3, jobs: int | None = None) -> str:
    """PTX text for every kernel of ``module`` (stage 5, or already in the llvm dialect).
    A large stage-5 module's kernels are compiled apart, in up to ``jobs`` compile processes
    (default: VISC_COMPILE_JOBS, else the usable cores), and their PTX joined."""
    from visc.runtime.ptx_codegen import target_machine

    check_arch(arch)
    version = ptx_version or default_ptx_version(arch)
    if not re.match(r"^\d+\.\d+$", version):
        raise CompileError(f"PTX version '{version}' should look like 7.8")
    machine = target_machine(arch, version, opt_level)
    functions = _stage5_functions(module)
    if functions:  # stage 5: printed straight to LLVM IR text
        from visc.backends.llvm_emitter import NVPTXEmitter

        emitter = NVPTXEmitter(TRIPLE, str(machine.target_data), calling_convention=llvm_version() >= (20,))
        text = emitter.emit(module, functions)
        kernels = emitter.kernels
    else:  # already in the llvm dialect (`NVVM_PIPELINE` run on it, e.g. with visc-opt)
        from visc.passes.llvm.translate import translate

        ops = _llvm_ops(module)
        ir_module = translate(ops, TRIPLE, str(machine.target_data))
        kernels = _annotate(ir_module, ops)
        text = str(ir_module)
    cache, key = _ptx_cache(text, arch, version, opt_level)
    if cache is not None:
        hit = cache.get(PTX_CACHE_KIND, key)
        if hit is not None:
            return hit.decode()
    ptx = _codegen(text, kernels, arch, version, opt_level, jobs)
    if cache is not None:
        cache.put(PTX_CACHE_KIND, key, ptx.encode())
    return ptx


def _ptx_cache(text: str, arch: str, version: str, opt_level: int) -> tuple[Any, str]:
    """The compile cache and the key of the PTX of LLVM IR ``text`` (with the libdevice it
    links, when it calls one); (None, "") when the cache is off."""
    from visc.runtime.compile_cache import CompileCache, default_cache

    cache = default_cache()
    if cache is None:
        return None, ""
    libdevice = _libdevice_digest() if "__nv_" in text else ""
    llvm = ".".join(map(str, llvm_version()))
    return cache, CompileCache.key(PTX_CACHE_KIND, text, arch, version, str(opt_level), f"llvm={llvm}", libdevice)


def _libdevice_digest() -> str:
    import hashlib

    return hashlib.sha256(_libdevice()).hexdigest()


def _codegen(text: str, kernels: list[str], arch: str, version: str, opt_level: int, jobs: int | None) -> str:
    """LLVM IR text -> PTX: per kernel in the compile processes where the module is large
    and cuts cleanly, else as one module (libdevice linked if the kernels call it)."""
    from visc.runtime.cpu_native import POOL_MIN_CHARS, compile_jobs, run_tasks
    from visc.runtime.ptx_codegen import compile_ptx, join_ptx, split_kernels

    libdevice = None
    if "__nv_" in text:
        _libdevice()  # the clear error where it is missing
        libdevice = find_libdevice()
    jobs = compile_jobs() if jobs is None else jobs
    units = split_kernels(text, kernels) if jobs > 1 and len(kernels) > 1 and len(text) >= POOL_MIN_CHARS else None
    if units:
        parts = run_tasks("ptx", [(unit, [name], arch, version, opt_level, libdevice) for unit, name in units], jobs,
                          [len(unit) for unit, _ in units])
        joined = join_ptx([p.decode() for p in parts])
        if joined is not None:
            return joined
    return compile_ptx(text, kernels, arch, version, opt_level, libdevice).decode()


def ptx_kernel_names(ptx: str) -> list[str]:
    """The ``.entry`` names of a PTX module, in order."""
    return re.findall(r"^\.visible \.entry (\w+)\(", ptx, re.MULTILINE)


def assemble(ptx: str, arch: str, ptxas: str | None = None) -> str:
    """Assemble ``ptx`` with NVIDIA's ptxas for ``arch`` (a check: the cubin is discarded);
    returns ptxas's messages. Raises KernelBuildError with its log when it fails."""
    exe = ptxas or shutil.which("ptxas")
    if exe is None:
        raise KernelBuildError("ptxas is not on PATH (it comes with the CUDA toolkit)")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernels.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        proc = subprocess.run([exe, f"-arch={arch}", src, "-o", os.path.join(tmp, "kernels.cubin")],
                              capture_output=True, text=True, check=False)
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise KernelBuildError(f"ptxas -arch={arch} rejected the PTX:\n{log}")
    return log


@dataclass(frozen=True)
class PTXTarget(Target):
    """`visc-opt -t 'ptx{arch=sm_90 ptx_version=7.8}'`: print the kernels of a stage-5 (or
    llvm-dialect) module as PTX."""

    name = "ptx"
    arch: str = DEFAULT_ARCH
    ptx_version: str | float = ""  # `ptx_version=8.0` reaches a target spec as a float
    opt_level: int = 3

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        version = f"{self.ptx_version:.1f}" if isinstance(self.ptx_version, float) else self.ptx_version
        output.write(emit_ptx(module, self.arch, version or None, self.opt_level))


__all__ = ["emit_ptx", "PTXTarget", "assemble", "detect_arch", "default_ptx_version", "find_libdevice",
           "ptx_kernel_names", "DEFAULT_ARCH", "TRIPLE", "check_arch"]
