// RUN: not visc-opt %s -t cpu 2>&1 | filecheck %s

// Memref shapes must be static (accesses are linearized at compile time).
// CHECK: error: cpu target: kernel 'cpu_dyn': cannot emit gpu.func as LLVM IR: dynamic memref shapes are not supported: memref<?xf32>
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<?xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<?xf32>, %begin: index, %end: index):
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_dyn"} : () -> ()
  }) : () -> ()
}
