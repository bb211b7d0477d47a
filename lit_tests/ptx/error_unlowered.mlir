// RUN: not visc-opt %s -t ptx 2>&1 | filecheck %s

// Only kernels the llvm lowering understands reach PTX; others are named with their kernel.
// CHECK: error: kernel 'k': cannot lower memref.alloc to the llvm dialect: no lowering is implemented for it
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = () -> (), kernel}> ({
      %m = memref.alloc() : memref<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
