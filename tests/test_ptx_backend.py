"""The CUDA PTX backend without a GPU.

* PTX is generated for every light model and every supported ONNX node-test case and
  assembled by NVIDIA's ptxas for sm_80 and sm_90 (skipped only where ptxas is absent).
* The lowering to the llvm dialect is checked numerically on the CPU: the same pipeline
  with libm instead of libdevice, translated for the host and JIT-compiled by llvmlite,
  runs each kernel once per GPU thread (the NVVM special registers read emulator
  globals), and the results are compared with onnxruntime / the ONNX reference outputs.
* Emitter details (architectures, PTX versions, libdevice, errors), the artifact and the CLI.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper, numpy_helper
from onnx_node_cases import skip_reason, supported_cases

import visc
from visc.backends.plan_extract import extract_plan
from visc.backends.ptx import (
    DEFAULT_ARCH,
    assemble,
    check_arch,
    default_ptx_version,
    emit_ptx,
    find_libdevice,
    ptx_kernel_names,
)
from visc.compiler import compile_model, default_pipeline, run_passes
from visc.errors import CompileError, DeviceError
from visc.frontend.onnx import import_model
from visc.frontend.specialize import bind_inputs, graph_parameter_inputs
from visc.runtime.plan import Plan
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.visc_cli import random_inputs, rel_error

PTXAS = shutil.which("ptxas")
ARCHES = ("sm_80", "sm_90")
needs_libdevice = pytest.mark.skipif(find_libdevice() is None, reason="libdevice.10.bc (CUDA toolkit) not found")

NODE_CASES = [c for c in supported_cases() if not skip_reason(c.name)]


def _assemble_all(ptx: str, arches: tuple[str, ...] = ARCHES) -> None:
    if PTXAS is None:
        return
    for arch in arches:
        assemble(ptx, arch)


def _array(value: object) -> np.ndarray:
    return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(value)


def _specialize(case) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[np.ndarray]]:
    """The case's model with parameter inputs bound to its first data set's values, the
    remaining inputs, and the expected outputs."""
    inputs, outputs = case.data_sets[0]
    inits = {i.name for i in case.model.graph.initializer}
    names = [vi.name for vi in case.model.graph.input if vi.name not in inits]
    named = {n: _array(v) for n, v in zip(names, inputs, strict=False)}
    params = set(graph_parameter_inputs(case.model))
    model = bind_inputs(case.model, {n: a for n, a in named.items() if n in params})
    return model, {n: a for n, a in named.items() if n not in params}, [_array(v) for v in outputs]


# -- PTX for every light model and node case, assembled by ptxas ----------------------------


@needs_libdevice
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_ptx_assembles(name: str) -> None:
    model = visc.compile(load_light_model(name, seed=3), target="cuda", arch="sm_80")
    assert model.metadata["cuda_arch"] == "sm_80" and model.metadata["ptx_version"] == "7.8"
    entries = ptx_kernel_names(model.source)
    assert set(entries) == {launch.kernel for launch in model.plan.launches}
    assert ".extern" not in model.source  # libdevice is linked in
    _assemble_all(model.source)


@needs_libdevice
@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_node_case_ptx_assembles(case) -> None:
    model, feeds, _ = _specialize(case)
    compiled = compile_model(model, target="cuda", arch="sm_80",
                             input_shapes={n: a.shape for n, a in feeds.items()})
    assert set(ptx_kernel_names(compiled.source)) == {launch.kernel for launch in compiled.plan.launches}
    _assemble_all(compiled.source)


# -- the lowering, run on the CPU --------------------------------------------------------------

_SREGS = ("tid.x", "ctaid.x", "ntid.x", "nctaid.x")
_REG_FN = ctypes.CFUNCTYPE(ctypes.c_int32)
_BARRIER_FN = ctypes.CFUNCTYPE(None)


class HostEmulator:
    """Runs the llvm-dialect kernels of a lowered module on the host. The NVVM special
    registers and the barrier call back into Python: a block's threads run one after
    another, or, for kernels with barriers, as one OS thread each meeting at a
    `threading.Barrier` (shared memory is then simply a global of the JIT module)."""

    def __init__(self, module, plan: Plan, weights) -> None:
        import threading

        import llvmlite.binding as llvm

        from visc.passes.llvm.translate import translate
        from visc.runtime.device import weight_bytes

        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        # the host CPU's features: f16 conversions then need no compiler-rt helpers
        machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten())
        ops = [op for m in module.walk() if m.name == "gpu.module" for op in m.body.block.ops]
        text = str(translate(ops, llvm.get_default_triple(), str(machine.target_data)))
        self._local = threading.local()
        self._barrier: threading.Barrier | None = None
        self._callbacks = {"emu_" + reg.replace(".", "_"): _REG_FN(lambda reg=reg: getattr(self._local, reg, 0))
                           for reg in _SREGS}
        self._callbacks["emu_barrier"] = _BARRIER_FN(self._wait)
        for name, callback in self._callbacks.items():
            llvm.add_symbol(name, ctypes.cast(callback, ctypes.c_void_p).value)
        for reg in _SREGS:
            text = text.replace(f'@"llvm.nvvm.read.ptx.sreg.{reg}"', "@emu_" + reg.replace(".", "_"))
        self.barriers = "llvm.nvvm.barrier0" in text
        text = text.replace('@"llvm.nvvm.barrier0"', "@emu_barrier")
        self._module = llvm.parse_assembly(text)
        self._module.verify()
        self._engine = llvm.create_mcjit_compiler(self._module, machine)
        self._engine.finalize_object()
        self.plan = plan
        self._weights = {n: weight_bytes(n, weights[n], s.shape, s.dtype)
                         for n, s in plan.weight_specs.items()}

    def _wait(self) -> None:
        assert self._barrier is not None
        self._barrier.wait(timeout=30)

    def _thread(self, fn, args: list[int], block: int, thread: int, grid: int, size: int) -> None:
        local = self._local
        local.__dict__.update({"tid.x": thread, "ctaid.x": block, "ntid.x": size, "nctaid.x": grid})
        fn(*args)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        import threading

        plan = self.plan
        arena = np.zeros(plan.arena_size + 64, dtype=np.uint8)
        outputs = [np.zeros(s.shape, dtype=s.dtype) for s in plan.outputs]
        arrays = [np.ascontiguousarray(x, dtype=s.dtype) for x, s in zip(inputs, plan.inputs, strict=True)]
        pointers: list[int] = []
        counts = {i: np.zeros(spec.shape, np.int64) for i, spec in enumerate(plan.buffers)
                  if spec.kind in ("count", "status")}
        for i, spec in enumerate(plan.buffers):
            if spec.kind == "arena":
                pointers.append(arena.ctypes.data + (spec.offset or 0))
            elif spec.kind == "weight":
                pointers.append(self._weights[spec.name].ctypes.data)  # type: ignore[index]
            elif spec.kind == "input":
                pointers.append(arrays[spec.index].ctypes.data)  # type: ignore[index]
            elif spec.kind == "output":
                pointers.append(outputs[spec.index].ctypes.data)  # type: ignore[index]
            elif spec.kind in ("count", "status"):
                pointers.append(counts[i].ctypes.data)
            else:
                pointers.append(pointers[spec.base])  # type: ignore[index]
        for launch in plan.launches:
            fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * len(launch.args))(
                self._engine.get_function_address(launch.kernel))
            args = [pointers[a] for a in launch.args]
            grid, size = launch.grid[0], launch.block[0]
            for b in range(grid):
                if not self.barriers:
                    for t in range(size):
                        self._thread(fn, args, b, t, grid, size)
                    continue
                self._barrier = threading.Barrier(size)
                threads = [threading.Thread(target=self._thread, args=(fn, args, b, t, grid, size))
                           for t in range(size)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
        plan.check_status(counts.__getitem__, lambda b: counts[b].fill(0))
        return plan.trimmed(outputs, lambda b: int(counts[b][0]))


def lower_for_host(model: onnx.ModelProto, shapes=None) -> HostEmulator:
    """The CUDA pipeline with libm for libdevice, run on the CPU."""
    imported = import_model(model, shapes)
    from visc.passes.llvm import NVVM_PIPELINE

    specs = [*default_pipeline("cuda"), *(s.replace("library=libdevice", "library=libm") for s in NVVM_PIPELINE)]
    run_passes(imported.module, specs, imported.weights)
    return HostEmulator(imported.module, extract_plan(imported.module), imported.weights)


def test_small_cnn_on_host_matches_onnxruntime() -> None:
    rng = np.random.default_rng(5)
    inits = {
        "w1": rng.standard_normal((6, 3, 3, 3)).astype(np.float32), "b1": rng.standard_normal(6).astype(np.float32),
        "w2": rng.standard_normal((10, 6 * 4 * 4)).astype(np.float32), "b2": rng.standard_normal(10).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["g"], transB=1, name="fc"),
        helper.make_node("Sigmoid", ["g"], ["s"], name="sig"),
        helper.make_node("Softmax", ["s"], ["y"], axis=1, name="softmax"),
    ]
    model = make_model(nodes, {"x": ((2, 3, 8, 8), np.float32)}, ["y"], inits)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    got = lower_for_host(model).run([x])
    want = run_onnxruntime(model, {"x": x})
    assert rel_error(got[0], want[0]) <= 1e-5


# a spread of ops and element types (int, bool, f16, f64 casts), run through the host lowering
HOST_CASES = [c for c in NODE_CASES if re.search(
    r"^test_(abs|add_bcast|argmax_default_axis_example|averagepool_2d_pads|cast_FLOAT_to_INT32|cast_FLOAT16_to_FLOAT"
    r"|cast_DOUBLE_to_FLOAT$|clip_example|concat_2d_axis_1|conv_with_strides_padding|convtranspose$|cumsum_1d"
    r"|div_uint8|elu$|equal_bcast|erf|exp$|gather_1$|gather_elements_negative_indices|gathernd_example_int32_batch_dim1"
    r"|scatternd_multiply|scatternd_max_with_element_indices|gemm_broadcast|globalaveragepool$|hardswish$|leakyrelu$"
    r"|log$|logsoftmax_axis_1$|lrn$|matmul_3d|max_int32|maxpool_2d_pads|mean_example|min_uint8|mod_mixed_sign_int32"
    r"|mul_bcast|neg$|pow$|pow_types_int32_int32|prelu_broadcast|reduce_mean_default_axes_keepdims_random"
    r"|reduce_sum_keepdims_random|resize_upsample_scales_linear$|selu$|slice$|softplus$|sqrt$|sub_uint8"
    r"|tanh$|topk$|transpose_all_permutations_0|where_example|nonmaxsuppression_suppress_by_IOU$"
    r"|resize_upsample_sizes_nearest$)", c.name)]


@pytest.mark.parametrize("case", HOST_CASES, ids=[c.name for c in HOST_CASES])
def test_node_case_on_host(case) -> None:
    model, feeds, want = _specialize(case)
    emulator = lower_for_host(model, {n: a.shape for n, a in feeds.items()})
    got = emulator.run([feeds[s.name] for s in emulator.plan.inputs])
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        if w.dtype.kind in "fc":
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=max(case.rtol, 1e-5),
                                       atol=max(case.atol, 1e-6), equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)


def test_host_cases_cover_the_ops() -> None:
    assert len(HOST_CASES) >= 40


# -- the emitter -------------------------------------------------------------------------------


def test_architectures_and_ptx_versions() -> None:
    assert default_ptx_version("sm_80") == "7.8"
    assert default_ptx_version("sm_90") == "7.8"
    assert default_ptx_version("sm_90a") == "8.0"
    assert default_ptx_version("sm_120") == "8.7"
    assert DEFAULT_ARCH == "sm_80"
    with pytest.raises(CompileError, match="not a CUDA architecture"):
        check_arch("compute_90")
    with pytest.raises(CompileError, match="too old"):
        check_arch("sm_35")


@needs_libdevice
def test_ptx_for_chosen_arch_and_version() -> None:
    model = make_model([helper.make_node("Tanh", ["x"], ["y"], name="t")], {"x": ((4, 5), np.float32)}, ["y"])
    compiled = compile_model(model, target="cuda", arch="sm_90")
    assert ".target sm_90" in compiled.source and ".version 7.8" in compiled.source
    imported = import_model(model)
    run_passes(imported.module, list(default_pipeline("cuda")), imported.weights)
    ptx = emit_ptx(imported.module, "sm_90a", "8.1")
    assert ".target sm_90a" in ptx and ".version 8.1" in ptx
    _assemble_all(compiled.source, ("sm_90",))
    _assemble_all(ptx, ("sm_90a",))


@needs_libdevice
def test_emitter_gives_the_ptx_of_the_llvm_dialect_path(rng) -> None:
    """Stage-5 kernels printed by NVPTXEmitter and the same kernels rewritten through the
    llvm dialect (`NVVM_PIPELINE` + translate) assemble to the same PTX: noalias and the
    non-coherent loads, libdevice math, shared memory, barriers, launch bounds."""
    from visc.passes.llvm import NVVM_PIPELINE

    inits = {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "e": np.array(3.0, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Tanh", ["c"], ["t"]), helper.make_node("Pow", ["t", "e"], ["p"]),
             helper.make_node("Erf", ["p"], ["f"]), helper.make_node("Softmax", ["f"], ["s"], axis=1),
             helper.make_node("GlobalAveragePool", ["s"], ["y"])]
    imported = import_model(make_model(nodes, {"x": ((1, 3, 8, 8), np.float32)}, ["y"], inits))
    run_passes(imported.module, list(default_pipeline("cuda")), imported.weights)
    lowered = imported.module.clone()
    run_passes(lowered, list(NVVM_PIPELINE), None)
    ptx = emit_ptx(imported.module, "sm_90")
    assert ptx == emit_ptx(lowered, "sm_90")
    assert ".extern" not in ptx and "ld.global.nc" in ptx
    _assemble_all(ptx, ("sm_90",))


def _entries(ptx: str) -> dict[str, str]:
    """Each ``.entry`` of a PTX module: its text up to the closing brace, with the function's
    index taken out of its block labels (``$L__BB2_1``: labels are local to a function)."""
    found = {}
    for m in re.finditer(r"^\.visible \.entry (\w+)\(.*?^\}", ptx, re.MULTILINE | re.DOTALL):
        found[m.group(1)] = re.sub(r"\$L__BB\d+_", "$L__BB_", m.group(0))
    return found


@needs_libdevice
def test_kernels_compiled_apart_join_into_the_same_ptx(rng, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module's kernels compiled to PTX one by one in compile processes and joined: every
    kernel's PTX is the whole-module compile's (but for the function number in its block
    labels), declarations appear once, ptxas takes it."""
    import visc.runtime.cpu_native as cpu_native
    from visc.runtime.compile_cache import bypassed

    inits = {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Tanh", ["c"], ["t"]), helper.make_node("Erf", ["t"], ["f"]),
             helper.make_node("Softmax", ["f"], ["s"], axis=1), helper.make_node("GlobalAveragePool", ["s"], ["y"])]
    imported = import_model(make_model(nodes, {"x": ((1, 3, 8, 8), np.float32)}, ["y"], inits))
    run_passes(imported.module, list(default_pipeline("cuda")), imported.weights)
    monkeypatch.setattr(cpu_native, "POOL_MIN_CHARS", 0)
    with bypassed():
        whole = emit_ptx(imported.module, "sm_90", jobs=1)
        joined = emit_ptx(imported.module, "sm_90", jobs=2)
    assert joined != whole  # really compiled apart (the order of declarations differs)
    kernels = _entries(whole)
    assert len(kernels) >= 3 and _entries(joined) == kernels
    assert joined.count(".target sm_90") == 1 and joined.count(".address_size 64") == 1
    _assemble_all(joined, ("sm_90",))


def test_ptx_join_refuses_conflicting_declarations() -> None:
    from visc.runtime.ptx_codegen import join_ptx

    head = ".version 7.8\n.target sm_90\n.address_size 64\n"
    a = head + ".global .align 4 .b8 table[4] = {1, 2, 3, 4};\n.visible .entry a()\n{\n\tret;\n}\n"
    b = head + ".global .align 4 .b8 table[4] = {1, 2, 3, 4};\n.visible .entry b()\n{\n\tret;\n}\n"
    c = head + ".global .align 4 .b8 table[4] = {9, 9, 9, 9};\n.visible .entry c()\n{\n\tret;\n}\n"
    joined = join_ptx([a, b])
    assert joined is not None and joined.count("table[4]") == 1 and ".entry a()" in joined and ".entry b()" in joined
    assert join_ptx([a, c]) is None


def test_emitter_annotates_kernels() -> None:
    """Kernels take the ptx_kernel calling convention (an nvvm.annotations ``kernel`` entry
    for LLVM before 20) and their block size as reqntid; other functions neither."""
    from xdsl.parser import Parser

    from visc.backends.llvm_emitter import NVPTXEmitter
    from visc.backends.ptx import TRIPLE
    from visc.dialects import make_context

    module = Parser(make_context(), """
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<4xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<4xf32>):
      %t = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
      "gpu.barrier"() : () -> ()
      %v = memref.load %x[%t] : memref<4xf32>
      %r = math.rsqrt %v : f32
      memref.store %r, %x[%t] : memref<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k", gpu.known_block_size = array<i32: 1, 4>} : () -> ()
    "gpu.func"() <{function_type = (memref<4xf32>) -> ()}> ({
    ^bb0(%x: memref<4xf32>):
      "gpu.return"() : () -> ()
    }) {sym_name = "helper"} : () -> ()
  }) : () -> ()
}""").parse_module()
    emitter = NVPTXEmitter(TRIPLE)
    text = emitter.emit(module)
    assert emitter.kernels == ["k"]
    assert 'define ptx_kernel void @"k"(ptr noalias %a0)' in text and 'define void @"helper"' in text
    assert '@"llvm.nvvm.read.ptx.sreg.tid.y"()' in text and '@"llvm.nvvm.barrier0"()' in text
    assert '@"__nv_rsqrtf"' in text
    assert text.endswith('!nvvm.annotations = !{!0, !1, !2}\n!0 = !{ptr @"k", !"reqntidx", i32 1}\n'
                         '!1 = !{ptr @"k", !"reqntidy", i32 4}\n!2 = !{ptr @"k", !"reqntidz", i32 1}\n')
    old = NVPTXEmitter(TRIPLE, calling_convention=False).emit(module)
    assert "ptx_kernel" not in old and '!0 = !{ptr @"k", !"kernel", i32 1}' in old
    import llvmlite.binding as binding

    for ir in (text, old):
        binding.parse_assembly(ir).verify()


def test_missing_libdevice_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import visc.backends.ptx as ptx

    monkeypatch.setattr(ptx, "find_libdevice", lambda: None)
    monkeypatch.setattr(ptx, "_libdevice_bytes", None)
    model = make_model([helper.make_node("Exp", ["x"], ["y"], name="e")], {"x": ((3,), np.float32)}, ["y"])
    with pytest.raises(CompileError, match="libdevice.10.bc.*VISC_LIBDEVICE"):
        compile_model(model, target="cuda", arch="sm_80")
    # kernels without libdevice calls need no libdevice
    relu = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ((3,), np.float32)}, ["y"])
    assert ".entry" in compile_model(relu, target="cuda", arch="sm_80").source


def test_unknown_target_and_bad_arch() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ((3,), np.float32)}, ["y"])
    with pytest.raises(CompileError, match="unknown target 'rocm'"):
        compile_model(model, target="rocm")
    with pytest.raises(CompileError, match="'sm90' is not a CUDA architecture"):
        compile_model(model, target="cuda", arch="sm90")


@pytest.mark.skipif(PTXAS is None, reason="ptxas not on PATH")
def test_ptxas_errors_are_reported() -> None:
    from visc.errors import KernelBuildError

    with pytest.raises(KernelBuildError, match="ptxas -arch=sm_80 rejected the PTX"):
        assemble(".version 7.8\n.target sm_80\n.address_size 64\n.visible .entry k() { bogus; }\n", "sm_80")


def test_artifact_keeps_the_ptx(tmp_path) -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ((2, 3), np.float32)}, ["y"])
    compiled = compile_model(model, target="cuda", arch="sm_86")
    path = str(tmp_path / "relu.visc")
    compiled.save(path)
    loaded = visc.load(path)
    assert loaded.target == "cuda" and loaded.source == compiled.source
    assert loaded.metadata["cuda_arch"] == "sm_86"
    assert ".target sm_86" in loaded.source


def test_cli_compiles_for_cuda(tmp_path) -> None:
    model = make_model([helper.make_node("Sigmoid", ["x"], ["y"], name="s")], {"x": ((2, 8), np.float32)}, ["y"])
    src = tmp_path / "sig.onnx"
    onnx.save(model, str(src))
    out = tmp_path / "sig.visc"
    proc = subprocess.run([sys.executable, "-m", "visc.tools.visc_cli", "compile", str(src), "--target", "cuda",
                           "--arch", "sm_90", "-o", str(out)], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr
    assert "for cuda (sm_90)" in proc.stdout
    assert ".target sm_90" in visc.load(str(out)).source


def test_without_pycuda_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("pycuda"):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    model = compile_model(make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ((3,), np.float32)}, ["y"]),
                          target="cuda", arch="sm_80")
    with pytest.raises(DeviceError, match="pip install pycuda"):
        model.run(random_inputs(model.plan.inputs))
