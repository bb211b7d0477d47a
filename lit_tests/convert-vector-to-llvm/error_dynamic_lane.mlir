// RUN: not visc-opt %s -p convert-vector-to-llvm 2>&1 | filecheck %s

// CHECK: error: kernel 'k': cannot lower vector.extract to the llvm dialect: dynamic positions are not supported
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (vector<4xf32>, index) -> (), kernel}> ({
    ^bb0(%v: vector<4xf32>, %i: index):
      %e = vector.extract %v[%i] : f32 from vector<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
