"""Make the pip-installed PoCL build kernels on x86 CPUs its LLVM 14 cannot name.

`pocl-binary-distribution==3.0` (the PoCL that the pyopencl wheel loads) asks LLVM 14's
``sys::getHostCPUName()`` for the ``-target-cpu`` of every kernel build. On a CPU newer than
LLVM 14 (AMD Zen 5, cpuid family 0x1A, or any unknown x86 family/vendor) that gives "generic",
which clang rejects ("unknown target CPU 'generic'"), so every program build fails. PoCL has no
variable or build option to override the CPU, and the call is internal (no PLT to interpose).

So, only on such a CPU and only for the known libpocl build, `ensure_pocl_cpu` writes a copy of
libpocl whose ``pocl_get_llvm_cpu_name`` returns the x86-64 level the host has ("x86-64-v4"
with AVX-512, else "x86-64-v3"), a name LLVM 14 knows and a feature subset of the host, and
points the ICD loader at it through ``OCL_ICD_VENDORS``. ``VISC_POCL_COMPAT=0`` turns it off,
``=1`` forces it on any x86 CPU (to test it); ``VISC_POCL_CPU`` picks another name that LLVM 14
knows. Only the standard library is used: this runs when `visc` is imported, before pyopencl.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
import shutil
import struct
import tempfile
import warnings

# The one libpocl build this patch is for (pocl-binary-distribution 3.0, PoCL 3.0-rc2, LLVM 14).
KNOWN_LIB = "libpocl-21062cec.so"
KNOWN_SHA256 = "d214aece60df73c75d8a678d33e4a51f4e5b594772dc74891b5451f909db6025"
KNOWN_SIZE = 108_599_272
SYMBOL = "pocl_get_llvm_cpu_name"
# Offsets in pocl_get_llvm_cpu_name: the call to getHostCPUName (e8 rel32), then
# `test rdx,rdx; je fallback`; the fallback `mov edi,8; mov ebx,7; lea rbp,[rip+"generic"]`.
CALL_AT, CALL_TAIL = 6, bytes.fromhex("4885d27430")
FALLBACK_AT = 0x40
FALLBACK = bytes.fromhex("bf08000000bb07000000488d2d")  # then the lea's rel32
FORCE_FALLBACK = bytes.fromhex("31d2909090")  # xor edx,edx: "the host name is empty"

# The -target-cpu to use, best first, each with the /proc/cpuinfo flags it needs: the x86-64
# micro-architecture levels, a strict feature subset of the host (a named CPU such as
# "skylake-avx512" would also assume e.g. rdseed and pku, which VMs often hide). PoCL still
# picks its kernel library variant (avx512, avx2, ...) from cpuid, independently of this name;
# on a Zen 5 VM kernels ran as fast as with "skylake-avx512", the avx512 variant's own CPU.
_V2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
_V3 = _V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_V4 = _V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
LEVEL_CPUS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset(_V4), "x86-64-v4"), (frozenset(_V3), "x86-64-v3"))
# x86-64 CPU names LLVM 14 accepts that we allow as a VISC_POCL_CPU override.
LLVM14_CPUS = frozenset({"skylake-avx512", "haswell", "x86-64-v2", "x86-64-v3", "x86-64-v4",
                         "icelake-server", "tigerlake", "sapphirerapids", "znver1", "znver2",
                         "znver3"})
# cpuid families LLVM 14's getHostCPUName maps to a name (others give "generic").
LLVM14_FAMILIES = {"GenuineIntel": frozenset({3, 4, 5, 6, 15}),
                   "AuthenticAMD": frozenset({4, 5, 6, 15, 16, 20, 21, 22, 23, 25})}


class PoCLCompatWarning(UserWarning):
    """The host CPU is unknown to PoCL's LLVM and visc could not work around it."""


class PoclPatchError(RuntimeError):
    """The library is not the build the patch was written for: leave it alone."""


def parse_cpuinfo(text: str) -> tuple[str, int | None, frozenset[str]]:
    """(vendor_id, cpu family, flags) of the first processor in a /proc/cpuinfo text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    family = fields.get("cpu family", "")
    return (fields.get("vendor_id", ""), int(family) if family.isdigit() else None,
            frozenset(fields.get("flags", "").split()))


def llvm14_knows(vendor: str, family: int | None) -> bool:
    """Whether LLVM 14 names this x86 CPU (Intel family 6 models it does not know it still
    guesses from features, so only the vendor and family matter)."""
    return family is not None and family in LLVM14_FAMILIES.get(vendor, frozenset())


def needs_patch(cpuinfo: str) -> bool:
    """Whether PoCL's LLVM 14 would call this (x86) CPU "generic" and fail every build."""
    vendor, family, _ = parse_cpuinfo(cpuinfo)
    return bool(vendor) and not llvm14_knows(vendor, family)


def target_cpu(flags: frozenset[str]) -> str | None:
    """The x86-64 level (a CPU name LLVM 14 knows) that a host with these flags has, or
    $VISC_POCL_CPU if that is a name LLVM 14 knows; None if neither."""
    override = os.environ.get("VISC_POCL_CPU")
    if override:
        return override if override in LLVM14_CPUS else None
    return next((cpu for need, cpu in LEVEL_CPUS if need <= flags), None)


def _segments(data: bytes | bytearray) -> list[tuple[int, int, int, int]]:
    """(offset, vaddr, filesz, flags) of the PT_LOAD segments of a little-endian ELF64."""
    if data[:6] != b"\x7fELF\x02\x01":
        raise PoclPatchError("not a little-endian ELF64 file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    out = []
    for i in range(phnum):
        p_type, p_flags, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            out.append((p_offset, p_vaddr, p_filesz, p_flags))
    return out


def _dynamic_symbol(data: bytes | bytearray, name: str) -> int:
    """The address (st_value) of a symbol in .dynsym."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    for sh in sections:
        if sh[1] != 11:  # SHT_DYNSYM
            continue
        strtab = sections[sh[6]]
        for off in range(sh[4], sh[4] + sh[5], sh[9]):
            st_name, _, _, _, st_value, _ = struct.unpack_from("<IBBHQQ", data, off)
            start = strtab[4] + st_name
            if data[start:data.index(b"\0", start)] == name.encode():
                return st_value
    raise PoclPatchError(f"no dynamic symbol {name}")


def _file_offset(segments: list[tuple[int, int, int, int]], vaddr: int) -> int:
    for offset, seg_vaddr, filesz, _ in segments:
        if seg_vaddr <= vaddr < seg_vaddr + filesz:
            return offset + vaddr - seg_vaddr
    raise PoclPatchError(f"address {vaddr:#x} is in no loaded segment")


def patch_image(data: bytearray, cpu: str) -> None:
    """Make `pocl_get_llvm_cpu_name` in this libpocl image return `cpu`: skip the call to
    getHostCPUName so its "empty name" fallback runs, and point that fallback (length and
    address) at `cpu`, a string already in the read-only data. Raises PoclPatchError, changing
    nothing, unless every byte it replaces is the one expected."""
    segments = _segments(data)
    func = _dynamic_symbol(data, SYMBOL)
    at = _file_offset(segments, func)
    call, fallback = at + CALL_AT, at + FALLBACK_AT
    lea_end = fallback + len(FALLBACK) + 4
    if (data[call] != 0xE8 or data[call + 5:call + 10] != CALL_TAIL
            or data[fallback:lea_end - 4] != FALLBACK):
        raise PoclPatchError(f"{SYMBOL} does not hold the expected instructions")
    rel, = struct.unpack_from("<i", data, lea_end - 4)
    lea_end_vaddr = func + lea_end - at  # the lea's rel32 counts from its end
    old = _file_offset(segments, lea_end_vaddr + rel)
    if data[old:old + 8] != b"generic\0":
        raise PoclPatchError(f"{SYMBOL}'s fallback is not \"generic\"")
    needle = b"\0" + cpu.encode() + b"\0"
    for offset, vaddr, filesz, flags in segments:
        if flags == 4:  # PF_R only: .rodata
            found = data.find(needle, offset, offset + filesz)
            if found >= 0:
                target = vaddr + found + 1 - offset
                break
    else:
        raise PoclPatchError(f"no string {cpu!r} in the read-only data")
    data[call:call + 5] = FORCE_FALLBACK
    struct.pack_into("<I", data, fallback + 1, len(cpu) + 1)  # malloc(len + 1)
    struct.pack_into("<I", data, fallback + 6, len(cpu))  # strncpy(.., len)
    struct.pack_into("<i", data, lea_end - 4, target - lea_end_vaddr)


def cache_root() -> pathlib.Path:
    """Where the patched copy lives: $VISC_CACHE_DIR/pocl, else ~/.cache/visc/pocl."""
    base = os.environ.get("VISC_CACHE_DIR")
    if base:
        return pathlib.Path(base) / "pocl"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(xdg) / "visc" / "pocl"


def _source_matches(lib: pathlib.Path) -> bool:
    """Cheap check (size and the bytes at the patch sites, no hashing) that `lib` is the
    known build; the full sha256 is checked once, when the copy is made."""
    try:
        if lib.stat().st_size != KNOWN_SIZE:
            return False
        with open(lib, "rb") as f:
            f.seek(0x7DE1B0 + CALL_AT + 5)  # the known build's pocl_get_llvm_cpu_name
            tail = f.read(FALLBACK_AT - CALL_AT - 5 + len(FALLBACK))
    except OSError:
        return False
    return tail.startswith(CALL_TAIL) and tail.endswith(FALLBACK)


def build_patched(lib: pathlib.Path, share_pkg: pathlib.Path, dest: pathlib.Path,
                  cpu: str) -> None:
    """Write `dest`/pyopencl/.libs/{libpocl, pocl.icd} and the symlink
    `dest`/pocl_binary_distribution, so that libpocl's RPATH and its kernel-library path
    ($ORIGIN/../../pocl_binary_distribution/.libs[/share/pocl]) still resolve. Built in a
    temporary directory and renamed into place, so concurrent processes never see half of it."""
    data = bytearray(lib.read_bytes())
    if hashlib.sha256(data).hexdigest() != KNOWN_SHA256:
        raise PoclPatchError(f"{lib} is not the known {KNOWN_LIB} build")
    patch_image(data, cpu)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        libs = tmp / "pyopencl" / ".libs"
        libs.mkdir(parents=True)
        (libs / KNOWN_LIB).write_bytes(data)
        (libs / KNOWN_LIB).chmod(0o755)
        (libs / "pocl.icd").write_text(f"{dest / 'pyopencl' / '.libs' / KNOWN_LIB}\n")
        (tmp / "pocl_binary_distribution").symlink_to(share_pkg, target_is_directory=True)
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / "pyopencl" / ".libs" / "pocl.icd").is_file():  # no other winner
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pocl_paths() -> tuple[pathlib.Path, pathlib.Path] | None:
    """(libpocl of the pyopencl wheel, the pocl_binary_distribution package dir), found
    without importing either."""
    specs = [importlib.util.find_spec(name) for name in ("pyopencl", "pocl_binary_distribution")]
    if any(s is None or not s.submodule_search_locations for s in specs):
        return None
    ocl, share = (pathlib.Path(next(iter(s.submodule_search_locations))) for s in specs)
    return ocl / ".libs" / KNOWN_LIB, share


_warned = False


def _warn(why: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"PoCL's LLVM 14 does not know this CPU, so OpenCL kernel builds will fail "
            f"(\"unknown target CPU 'generic'\"), and visc could not work around it: {why}. "
            "Install a PoCL built with a newer LLVM and point OCL_ICD_VENDORS at it, or use "
            "target='cpu'; VISC_POCL_COMPAT=0 silences this.", PoCLCompatWarning, stacklevel=3)


def ensure_pocl_cpu(cpuinfo_path: str = "/proc/cpuinfo") -> pathlib.Path | None:
    """Point OCL_ICD_VENDORS at a patched libpocl when (and only when) the host CPU is one
    PoCL's LLVM cannot name; return the .icd file used, or None. Must run before pyopencl
    loads the ICD; does nothing but read `cpuinfo_path` on CPUs LLVM 14 knows."""
    mode = os.environ.get("VISC_POCL_COMPAT", "")
    if mode == "0" or os.environ.get("OCL_ICD_VENDORS"):
        return None
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            cpuinfo = f.read()
    except OSError:
        return None
    vendor, _, flags = parse_cpuinfo(cpuinfo)
    if not (needs_patch(cpuinfo) or (mode == "1" and vendor)):
        return None
    paths = _pocl_paths()
    if paths is None:  # no pip PoCL: whatever ICD there is, is not ours to fix
        return None
    lib, share_pkg = paths
    if not lib.is_file():
        return None
    cpu = target_cpu(flags)
    if cpu is None:
        _warn("it lacks AVX2 (x86-64-v3), or VISC_POCL_CPU is not a name LLVM 14 knows")
        return None
    if not _source_matches(lib):
        _warn(f"{lib} is not the pocl-binary-distribution 3.0 build the patch is for")
        return None
    key = hashlib.sha256(str(share_pkg.resolve()).encode()).hexdigest()[:8]
    dest = cache_root() / f"{KNOWN_SHA256[:16]}-{cpu}-{key}"
    icd = dest / "pyopencl" / ".libs" / "pocl.icd"
    if not icd.is_file():
        try:
            build_patched(lib, share_pkg, dest, cpu)
        except (OSError, PoclPatchError) as e:
            _warn(str(e))
            return None
    # A file, not the directory: given a directory, pyopencl's loader also reads its own
    # .libs/pocl.icd and would list the same platform twice.
    os.environ["OCL_ICD_VENDORS"] = str(icd)
    return icd
