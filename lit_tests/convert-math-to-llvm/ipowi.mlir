// RUN: visc-opt %s -p convert-math-to-llvm | filecheck %s

// Integer powers call an internal helper (exponentiation by squaring), built once per type.
// CHECK:      llvm.func internal @__visc_ipowi_i32(%{{.*}}: i32, %{{.*}}: i32) -> i32
// CHECK:        llvm.mul
// CHECK:        llvm.ashr
// CHECK:        llvm.return
// CHECK-NOT:  llvm.func internal @__visc_ipowi_i32
// CHECK:      %p = llvm.call @__visc_ipowi_i32(%b, %e) : (i32, i32) -> i32
// CHECK-NEXT: %q = llvm.call @__visc_ipowi_i32(%p, %e) : (i32, i32) -> i32
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (i32, i32) -> (), kernel}> ({
    ^bb0(%b: i32, %e: i32):
      %p = math.ipowi %b, %e : i32
      %q = math.ipowi %p, %e : i32
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
