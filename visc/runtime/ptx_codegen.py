"""LLVM IR -> PTX with llvmlite's NVPTX backend, for one kernel or a whole module.

This is the part of the PTX target that needs only llvmlite, so the compile processes of
`visc.runtime.cpu_native` can run it for one kernel each (visc/backends/ptx.py cuts the
module, hands the kernels out and joins their PTX). A unit's PTX is what the same kernel
becomes in a whole-module compile: the kernels share nothing but declarations, libdevice is
linked into each unit that calls it and inlined, and code generation works per function.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from visc.errors import CompileError

TRIPLE = "nvptx64-nvidia-cuda"

_CALLS_LIBDEVICE = re.compile(r'call [^@\n]*@"?__nv_')
_lock = threading.Lock()
_ready = False
_libdevice: dict[str, bytes] = {}


def binding() -> Any:
    """llvmlite's binding with every target initialized (once per process)."""
    global _ready
    try:
        import llvmlite.binding as llvm
    except ImportError as e:  # pragma: no cover - llvmlite is a dependency
        raise CompileError(f"the CUDA target needs llvmlite ({e}); `pip install llvmlite`") from e
    with _lock:
        if not _ready:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
            _ready = True
    return llvm


def target_machine(arch: str, ptx_version: str, opt_level: int) -> Any:
    try:
        target = binding().Target.from_triple(TRIPLE)
        return target.create_target_machine(cpu=arch, features=f"+ptx{ptx_version.replace('.', '')}", opt=opt_level)
    except RuntimeError as e:
        raise CompileError(f"LLVM cannot target {arch} with PTX {ptx_version}: {e}") from e


def _libdevice_bitcode(path: str) -> bytes:
    with _lock:
        if path not in _libdevice:
            with open(path, "rb") as f:
                _libdevice[path] = f.read()
        return _libdevice[path]


def compile_ptx(text: str, kernels: list[str], arch: str, ptx_version: str, opt_level: int,
                libdevice: str | None) -> bytes:
    """PTX (bytes) of LLVM IR ``text``: libdevice (the file at ``libdevice``) linked if the
    IR calls it, every function but ``kernels`` internal, optimized at ``opt_level``."""
    llvm = binding()
    machine = target_machine(arch, ptx_version, opt_level)
    try:
        parsed = llvm.parse_assembly(text)
        # linked only where a function calls it (a unit's header declares every kernel's
        # math functions; linking libdevice into each unit would cost 0.1 s apiece)
        if _CALLS_LIBDEVICE.search(text):
            if libdevice is None:
                raise CompileError("the kernels call libdevice's math functions, but libdevice.10.bc was not found")
            parsed.link_in(llvm.parse_bitcode(_libdevice_bitcode(libdevice)))
        for fn in parsed.functions:
            if not fn.is_declaration and fn.name not in kernels:
                fn.linkage = "internal"
        parsed.data_layout = str(machine.target_data)
        parsed.triple = TRIPLE
        parsed.verify()
    except RuntimeError as e:
        raise CompileError(f"LLVM rejected the kernels' IR: {e}") from e
    if opt_level > 0:
        tuning = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        builder = llvm.create_pass_builder(machine, tuning)
        builder.getModulePassManager().run(parsed, builder)
    return str(machine.emit_assembly(parsed)).encode()


# -- cutting a module into kernels and joining their PTX ----------------------------------

_META_ENTRY = re.compile(r'^!(\d+) = !\{ptr @"?([^",]+)"?, (.*)\}$')


def split_kernels(text: str, kernels: list[str]) -> list[tuple[str, str]] | None:
    """(unit text, kernel) for every kernel of a module printed by `NVPTXEmitter` (header,
    then one ``define`` per kernel, then ``nvvm.annotations``), each unit the header, its
    kernel and that kernel's annotations; None where the module is not of that shape."""
    head, sep, rest = text.partition("\ndefine ")
    if not sep:
        return None
    bodies = ["define " + b for b in rest.split("\ndefine ")]
    last = bodies[-1]
    end = last.rfind("\n}\n")
    if end < 0:
        end = last.rfind("\n}")
        if end < 0 or last[end + 2:].strip():
            return None
    bodies[-1], tail = last[:end + 2] + "\n", last[end + 3:]
    notes: dict[str, list[str]] = {}
    for line in tail.splitlines():
        if not line.strip() or line.startswith("!nvvm.annotations"):
            continue
        m = _META_ENTRY.match(line)
        if m is None:
            return None  # other module metadata: keep the whole-module path
        notes.setdefault(m.group(2), []).append(m.group(3))
    units = []
    for body in bodies:
        m = re.match(r'define [^@]*@"?([^"(]+)"?\(', body)
        if m is None or m.group(1) not in kernels:
            return None  # a helper function shared by kernels: not cut
        name = m.group(1)
        entries = notes.get(name, [])
        meta = ""
        if entries:
            ids = ", ".join(f"!{i}" for i in range(len(entries)))
            meta = f"\n!nvvm.annotations = !{{{ids}}}\n" + "".join(
                f'!{i} = !{{ptr @"{name}", {e}}}\n' for i, e in enumerate(entries))
        units.append((head + "\n" + body + meta, name))
    return units


_DECL = re.compile(r"^\.(?:global|shared|const|extern|weak|visible \.global)\b.*?([A-Za-z_$][\w$]*)\s*(?:\[|;| =)")


def join_ptx(parts: list[str]) -> str | None:
    """One PTX module of per-kernel PTX texts: the first's preamble (.version, .target,
    .address_size), then every part's declarations and functions; a module-scope symbol
    two parts declare alike is kept once. None where two parts declare one symbol
    differently (the caller then compiles the whole module at once)."""
    preamble: list[str] = []
    declared: dict[str, str] = {}
    out: list[str] = []
    for i, ptx in enumerate(parts):
        lines = ptx.splitlines()
        at = next((j for j, line in enumerate(lines) if line.startswith(".address_size")), None)
        if at is None:
            return None
        if i == 0:
            preamble = lines[:at + 1]
        elif [ln for ln in lines[:at + 1] if ln.startswith(".")] != [ln for ln in preamble if ln.startswith(".")]:
            return None
        depth = 0
        for line in lines[at + 1:]:
            if depth == 0:
                m = _DECL.match(line)
                if m is not None:
                    name = m.group(1)
                    if name in declared:
                        if declared[name] != line:
                            return None
                        continue
                    declared[name] = line
            depth += line.count("{") - line.count("}")
            out.append(line)
    return "\n".join(preamble + out) + "\n"
