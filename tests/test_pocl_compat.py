"""The PoCL work-around for CPUs LLVM 14 cannot name (visc/runtime/pocl_compat.py)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from visc.runtime import pocl_compat as pc


def cpuinfo(vendor: str, family: int, model: int, flags: str = "sse2 avx2") -> str:
    block = (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\n"
             f"model\t\t: {model}\nflags\t\t: {flags}\n\n")
    return block + block.replace("processor\t: 0", "processor\t: 1")


V4_FLAGS = " ".join(sorted(pc.LEVEL_CPUS[0][0]))
V3_FLAGS = " ".join(sorted(pc.LEVEL_CPUS[1][0]))


def test_detection() -> None:
    assert not pc.needs_patch(cpuinfo("AuthenticAMD", 25, 0x11))  # Zen 4: LLVM 14 says znver3
    assert pc.needs_patch(cpuinfo("AuthenticAMD", 26, 2))  # Zen 5: "generic"
    assert not pc.needs_patch(cpuinfo("GenuineIntel", 6, 0x8F))  # Sapphire Rapids
    assert not pc.needs_patch(cpuinfo("GenuineIntel", 6, 0xCF))  # unknown model: guessed
    assert pc.needs_patch(cpuinfo("GenuineIntel", 19, 1))  # a family LLVM 14 has no case for
    assert not pc.needs_patch("processor\t: 0\nBogoMIPS\t: 50.00\n")  # not x86


def test_target_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISC_POCL_CPU", raising=False)
    assert pc.target_cpu(pc.parse_cpuinfo(cpuinfo("AuthenticAMD", 26, 2, V4_FLAGS))[2]) \
        == "x86-64-v4"
    assert pc.target_cpu(frozenset(V3_FLAGS.split())) == "x86-64-v3"
    assert pc.target_cpu(frozenset({"sse2", "avx"})) is None
    monkeypatch.setenv("VISC_POCL_CPU", "haswell")
    assert pc.target_cpu(frozenset()) == "haswell"
    monkeypatch.setenv("VISC_POCL_CPU", "znver5")  # LLVM 14 does not know it
    assert pc.target_cpu(frozenset()) is None


def test_known_cpu_does_nothing(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCL_ICD_VENDORS", raising=False)
    monkeypatch.delenv("VISC_POCL_COMPAT", raising=False)
    (tmp_path / "cpuinfo").write_text(cpuinfo("AuthenticAMD", 25, 0x11, V4_FLAGS))
    assert pc.ensure_pocl_cpu(str(tmp_path / "cpuinfo")) is None
    assert "OCL_ICD_VENDORS" not in os.environ


def _libpocl() -> pathlib.Path:
    paths = pc._pocl_paths()
    if paths is None or not paths[0].is_file() or paths[0].stat().st_size != pc.KNOWN_SIZE:
        pytest.skip("no pocl-binary-distribution 3.0 libpocl")
    return paths[0]


def test_patch_checks_bytes() -> None:
    data = bytearray(_libpocl().read_bytes())
    func = pc._file_offset(pc._segments(data), pc._dynamic_symbol(data, pc.SYMBOL))
    bad = bytearray(data)
    bad[func + pc.FALLBACK_AT] ^= 0xFF  # not the expected `mov edi, 8`
    with pytest.raises(pc.PoclPatchError):
        pc.patch_image(bad, "x86-64-v4")
    assert bad[func + pc.CALL_AT] == 0xE8  # refused before changing anything
    with pytest.raises(pc.PoclPatchError):
        pc.patch_image(bytearray(data), "no-such-cpu")
    pc.patch_image(data, "x86-64-v4")
    assert data[func + pc.CALL_AT:func + pc.CALL_AT + 5] == pc.FORCE_FALLBACK
    with pytest.raises(pc.PoclPatchError):  # already patched: no longer the expected bytes
        pc.patch_image(data, "x86-64-v4")


def test_build_refuses_other_file(tmp_path: pathlib.Path) -> None:
    lib = tmp_path / pc.KNOWN_LIB
    lib.write_bytes(b"\x7fELF\x02\x01" + bytes(100))
    with pytest.raises(pc.PoclPatchError):
        pc.build_patched(lib, tmp_path, tmp_path / "out", "x86-64-v4")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo")
                    or not pc.needs_patch(pathlib.Path("/proc/cpuinfo").read_text()),
                    reason="the host CPU is one PoCL's LLVM 14 knows")
def test_kernel_builds_after_import(tmp_path: pathlib.Path) -> None:
    _libpocl()
    env = {k: v for k, v in os.environ.items()
           if k not in ("OCL_ICD_VENDORS", "VISC_POCL_COMPAT", "VISC_POCL_CPU")}
    env["VISC_CACHE_DIR"] = str(tmp_path)
    code = ("import os, visc, pyopencl as cl\n"
            "ctx = cl.create_some_context(interactive=False)\n"
            "cl.Program(ctx, '__kernel void k(__global float*a){a[0]=exp(a[1]);}').build()\n"
            "print(len(cl.get_platforms()), os.environ['OCL_ICD_VENDORS'])\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    count, icd = out.stdout.split()
    assert count == "1" and icd.startswith(str(tmp_path))
