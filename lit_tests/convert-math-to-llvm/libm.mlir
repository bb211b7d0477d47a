// RUN: visc-opt %s -p 'convert-math-to-llvm{library=libm}' | filecheck %s

// For host code the same ops call the C library; libm has no rsqrt (1/sqrt instead).
// CHECK-DAG:  llvm.func @expf(f32) -> f32
// CHECK:      %e = llvm.call @expf(%x) : (f32) -> f32
// CHECK-NEXT: %[[S:.*]] = llvm.call_intrinsic "llvm.sqrt.f32"(%x) : (f32) -> f32
// CHECK-NEXT: %[[ONE:.*]] = llvm.mlir.constant(1.000000e+00 : f32) : f32
// CHECK-NEXT: %{{.*}} = llvm.fdiv %[[ONE]], %[[S]] : f32
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (f32) -> (), kernel}> ({
    ^bb0(%x: f32):
      %e = math.exp %x : f32
      %r = math.rsqrt %x : f32
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
