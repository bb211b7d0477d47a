// RUN: not visc-opt %s -p convert-memref-to-llvm 2>&1 | filecheck %s

// CHECK: error: kernel 'k': cannot lower memref.load to the llvm dialect: dynamic memref shapes are not supported: memref<?xf32>
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<?xf32>, index) -> (), kernel}> ({
    ^bb0(%x: memref<?xf32>, %i: index):
      %v = memref.load %x[%i] : memref<?xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
