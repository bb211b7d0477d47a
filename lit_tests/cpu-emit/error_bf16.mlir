// RUN: not visc-opt %s -t cpu 2>&1 | filecheck %s

// bf16 has no lowering (nor had it in the llvm-dialect conversions).
// CHECK: error: cpu target: kernel 'cpu_bf16': cannot emit memref.load as LLVM IR: type bf16 has no LLVM equivalent here
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<4xbf16>, index, index) -> ()}> ({
    ^bb0(%m: memref<4xbf16>, %begin: index, %end: index):
      %x = memref.load %m[%begin] : memref<4xbf16>
      %a = math.absf %x : bf16
      memref.store %a, %m[%begin] : memref<4xbf16>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_bf16"} : () -> ()
  }) : () -> ()
}
