// RUN: not visc-opt %s -t cpu 2>&1 | filecheck %s

// Vector lanes must be static.
// CHECK: error: cpu target: kernel 'cpu_lane': cannot emit vector.extract as LLVM IR: dynamic positions are not supported
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<8xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<8xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %v = vector.load %x[%c0] : memref<8xf32>, vector<4xf32>
      %e = vector.extract %v[%begin] : f32 from vector<4xf32>
      memref.store %e, %x[%c0] : memref<8xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_lane"} : () -> ()
  }) : () -> ()
}
