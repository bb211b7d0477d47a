// RUN: not visc-opt %s -t cpu 2>&1 | filecheck %s

// A host function has no GPU thread ids (lower-loops-to-cpu never leaves any).
// CHECK: error: cpu target: kernel 'cpu_tid': cannot emit gpu.thread_id as LLVM IR: CPUEmitter has no GPU thread ids
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<4xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<4xf32>, %begin: index, %end: index):
      %t = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %v = memref.load %x[%t] : memref<4xf32>
      memref.store %v, %x[%begin] : memref<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_tid"} : () -> ()
  }) : () -> ()
}
