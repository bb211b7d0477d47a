// RUN: visc-opt %s -p convert-arith-to-llvm | filecheck %s
// RUN: visc-opt %s -p convert-arith-to-llvm | visc-opt | filecheck %s

// Index arithmetic becomes i32 (the OpenCL backend's `int`); values still used by
// unconverted ops (memref.load, gpu ids) are bridged with unrealized casts. IEEE maximum
// keeps NaN (llvm.maximum); float -> int saturates like the hardware's cvt.rzi.

// CHECK:      "gpu.func"()
// CHECK:        %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
// CHECK-NEXT:   %c3 = llvm.mlir.constant(3 : i32) : i32
// CHECK-NEXT:   %[[T:.*]] = builtin.unrealized_conversion_cast %tid : index to i32
// CHECK-NEXT:   %[[I:.*]] = llvm.add %[[T]], %c3 : i32
// CHECK-NEXT:   %[[IDX:.*]] = builtin.unrealized_conversion_cast %[[I]] : i32 to index
// CHECK-NEXT:   %x = memref.load %a[%[[IDX]]] : memref<8xf32>
// CHECK-NEXT:   %zero = llvm.mlir.constant(0.000000e+00 : f32) : f32
// CHECK-NEXT:   %relu = llvm.call_intrinsic "llvm.maximum.f32"(%x, %zero) : (f32, f32) -> f32
// CHECK-NEXT:   %n = llvm.fneg %relu : f32
// CHECK-NEXT:   %q = llvm.fdiv %n, %x : f32
// CHECK-NEXT:   %k = llvm.call_intrinsic "llvm.fptosi.sat.i32.f32"(%q) : (f32) -> i32
// CHECK-NEXT:   %[[WIDE:.*]] = llvm.zext %k : i32 to i64
// CHECK-NEXT:   %[[U:.*]] = llvm.sitofp %[[WIDE]] : i64 to f32
// CHECK-NEXT:   %m = llvm.call_intrinsic "llvm.smin.i32"(%k, %[[I]]) : (i32, i32) -> i32
// CHECK-NEXT:   %lt = llvm.fcmp "olt" %[[U]], %x : f32
// CHECK-NEXT:   %s = llvm.select %lt, %m, %k : i1, i32
// CHECK-NEXT:   %w = llvm.sext %s : i32 to i64
// CHECK-NEXT:   %b = llvm.icmp "ult" %s, %k : i32
// CHECK-NEXT:   %e = llvm.zext %b : i1 to i8
// CHECK-NEXT:   "gpu.return"() : () -> ()
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<8xf32>) -> (), kernel}> ({
    ^bb0(%a: memref<8xf32>):
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %c3 = arith.constant 3 : index
      %I = arith.addi %tid, %c3 : index
      %x = memref.load %a[%I] : memref<8xf32>
      %zero = arith.constant 0.0 : f32
      %relu = arith.maximumf %x, %zero : f32
      %n = arith.negf %relu : f32
      %q = arith.divf %n, %x : f32
      %k = arith.fptosi %q : f32 to i32
      %u = arith.uitofp %k : i32 to f32
      %ii = arith.index_cast %I : index to i32
      %m = arith.minsi %k, %ii : i32
      %lt = arith.cmpf olt, %u, %x : f32
      %s = arith.select %lt, %m, %k : i32
      %w = arith.extsi %s : i32 to i64
      %b = arith.cmpi ult, %s, %k : i32
      %e = arith.extui %b : i1 to i8
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
