// RUN: not visc-opt %s -p convert-math-to-llvm 2>&1 | filecheck %s

// Float math on a non-float element type is reported with its kernel.
// CHECK: error: kernel 'k': cannot lower math.absf to the llvm dialect: element type bf16 is not f16, f32 or f64
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (bf16) -> (), kernel}> ({
    ^bb0(%x: bf16):
      %a = math.absf %x : bf16
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
