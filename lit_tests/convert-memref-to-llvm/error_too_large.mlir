// RUN: not visc-opt %s -p convert-memref-to-llvm 2>&1 | filecheck %s

// 32-bit indices address at most 2**31 - 1 elements; the error says what to do.
// CHECK: error: kernel 'k': cannot lower memref.load to the llvm dialect: memref<65536x65536xf32> has more elements than 32-bit indices address (lower with a wider index-bitwidth)
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<65536x65536xf32>, index) -> (), kernel}> ({
    ^bb0(%x: memref<65536x65536xf32>, %i: index):
      %v = memref.load %x[%i, %i] : memref<65536x65536xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
