// RUN: visc-opt %s -p convert-math-to-llvm | filecheck %s
// RUN: visc-opt %s -p convert-math-to-llvm | visc-opt | filecheck %s

// Functions LLVM's NVPTX backend lowers itself become intrinsics; the rest call
// libdevice's __nv_* functions, declared once in the kernel module. f16 math runs in f32
// and rounds back; f64 uses the double versions.

// CHECK:      "gpu.module"() <{sym_name = "kernels"}> ({
// CHECK-DAG:    llvm.func @__nv_expf(f32) -> f32
// CHECK-DAG:    llvm.func @__nv_tanh(f64) -> f64
// CHECK-DAG:    llvm.func @__nv_powif(f32, i32) -> f32
// CHECK:        "gpu.func"()
// CHECK:          %e = llvm.call @__nv_expf(%x) : (f32) -> f32
// CHECK-NEXT:     %e2 = llvm.call @__nv_expf(%e) : (f32) -> f32
// CHECK-NEXT:     %r = llvm.call_intrinsic "llvm.sqrt.f32"(%e2) : (f32) -> f32
// CHECK-NEXT:     %a = llvm.call_intrinsic "llvm.fabs.f32"(%r) : (f32) -> f32
// CHECK-NEXT:     %t = llvm.call @__nv_tanh(%d) : (f64) -> f64
// CHECK-NEXT:     %[[W:.*]] = llvm.fpext %h : f16 to f32
// CHECK-NEXT:     %[[EH:.*]] = llvm.call @__nv_erff(%[[W]]) : (f32) -> f32
// CHECK-NEXT:     %{{.*}} = llvm.fptrunc %[[EH]] : f32 to f16
// CHECK-NEXT:     %p = llvm.call @__nv_powif(%x, %n) : (f32, i32) -> f32
// CHECK-NEXT:     %[[F:.*]] = llvm.mlir.constant(false) : i1
// CHECK-NEXT:     %{{.*}} = llvm.call_intrinsic "llvm.ctlz.i32"(%n, %[[F]]) : (i32, i1) -> i32
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (f32, f64, f16, i32) -> (), kernel}> ({
    ^bb0(%x: f32, %d: f64, %h: f16, %n: i32):
      %e = math.exp %x : f32
      %e2 = math.exp %e : f32
      %r = math.sqrt %e2 : f32
      %a = math.absf %r : f32
      %t = math.tanh %d : f64
      %eh = math.erf %h : f16
      %p = math.fpowi %x, %n : f32, i32
      %z = math.ctlz %n : i32
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
