// RUN: not visc-opt %s -t ptx 2>&1 | filecheck %s

// Only kernels the LLVM IR emitter understands reach PTX; others are named with their kernel.
// CHECK: error: kernel 'k': cannot emit memref.alloc as LLVM IR: no LLVM lowering for this op
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = () -> (), kernel}> ({
      %m = memref.alloc() : memref<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
