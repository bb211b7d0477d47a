"""The LLVM IR printer of host functions (visc/backends/llvm_emitter.py): the module cuts into
self-contained functions, and the control flow the llvm-dialect conversions never lowered
(scf.while) or lowered through a helper function (math.ipowi) computes the right values."""

from __future__ import annotations

import ctypes

import numpy as np
from conftest import make_model
from onnx import helper
from xdsl.parser import Parser

import visc
from visc.backends.cpu import emit_cpu
from visc.dialects import make_context
from visc.runtime.cpu import CompiledFunctions


def _cut(text: str) -> tuple[str, list[str]]:
    """The head (everything before the first ``define``) and each function's text, with the
    metadata nodes its loops name, which follow its closing brace."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("define "))
    functions: list[list[str]] = []
    current: list[str] | None = None
    for line in lines[first:]:
        if line.startswith("define "):
            assert current is None
            current = [line]
        elif current is not None:
            current.append(line)
            if line == "}":
                functions.append(current)
                current = None
        elif line.startswith("!") and functions:
            functions[-1].append(line)
        else:
            assert not line.strip(), f"text between functions: {line!r}"
    assert current is None
    return "\n".join(lines[:first]), ["\n".join(f) for f in functions]


def test_functions_compile_apart(rng) -> None:
    """Every declaration comes before the first function, and each function compiles with
    that head alone (what a compiler splitting the module per function relies on)."""
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Tanh", ["c"], ["t"]),
             helper.make_node("Softmax", ["t"], ["y"], axis=1)]
    model = visc.compile(make_model(nodes, {"x": ([1, 3, 8, 8], np.float32)}, ["y"], {"w": w}), target="cpu")
    head, functions = _cut(model.sources["cpu"])
    assert len(functions) >= 2 and "declare" in head and "tanhf" in head
    assert all("declare" not in f for f in functions)
    assert any("!llvm.loop" in f for f in functions)  # loop hints: their nodes travel with the function
    for function in functions:
        CompiledFunctions(head + "\n" + function + "\n")


_CONTROL_FLOW = """
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<8xi32>, memref<8xi32>, memref<8xf32>, index, index) -> ()}> ({
    ^bb0(%base: memref<8xi32>, %exp: memref<8xi32>, %out: memref<8xf32>, %begin: index, %end: index):
      %c1 = arith.constant 1 : index
      %limit = arith.constant 1000 : i32
      %two = arith.constant 2 : i32
      scf.for %i = %begin to %end step %c1 {
        %b = memref.load %base[%i] : memref<8xi32>
        %e = memref.load %exp[%i] : memref<8xi32>
        %p = math.ipowi %b, %e : i32
        %doubled = scf.while (%a = %p) : (i32) -> i32 {
          %small = arith.cmpi slt, %a, %limit : i32
          %nonzero = arith.cmpi ne, %a, %limit : i32
          %go = arith.andi %small, %nonzero : i1
          %positive = arith.cmpi sgt, %a, %two : i32
          %both = arith.andi %go, %positive : i1
          scf.condition(%both) %a : i32
        } do {
        ^bb1(%x: i32):
          %y = arith.muli %x, %two : i32
          scf.yield %y : i32
        }
        %negative = arith.cmpi slt, %doubled, %two : i32
        %r = scf.if %negative -> (f32) {
          %f = arith.sitofp %doubled : i32 to f32
          %n = arith.negf %f : f32
          scf.yield %n : f32
        } else {
          %f = arith.sitofp %doubled : i32 to f32
          scf.yield %f : f32
        }
        memref.store %r, %out[%i] : memref<8xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_flow"} : () -> ()
  }) : () -> ()
}
"""


def _control_flow_reference(base: int, exp: int) -> float:
    if exp < 0:
        p = 1 if base == 1 else ((-1 if exp % 2 else 1) if base == -1 else 0)
    else:
        p = int(np.int32(base) ** np.int32(exp))
    while p < 1000 and p != 1000 and p > 2:
        p *= 2
    return float(-p if p < 2 else p)


def test_while_if_and_integer_power_run() -> None:
    module = Parser(make_context(), _CONTROL_FLOW).parse_module()
    text = emit_cpu(module)
    compiled = CompiledFunctions(text)
    signature = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                                 ctypes.c_int32)
    function = signature(compiled.address("cpu_flow"))
    base = np.array([3, 2, -1, -1, 1, 5, 0, 7], np.int32)
    exp = np.array([2, 0, -3, -2, -5, -1, 3, 1], np.int32)
    out = np.full(8, np.nan, np.float32)
    function(base.ctypes.data, exp.ctypes.data, out.ctypes.data, 1, 8)  # [1, 8): element 0 untouched
    want = [_control_flow_reference(int(b), int(e)) for b, e in zip(base, exp, strict=True)]
    assert np.isnan(out[0])
    np.testing.assert_array_equal(out[1:], np.array(want[1:], np.float32))
