// RUN: visc-opt %s -p convert-arith-to-llvm | filecheck %s

// floordivsi rounds toward -inf: the truncating quotient minus one when the remainder is
// non-zero and its sign differs from the divisor's. ceildivui adds one for a remainder.
// 64-bit uitofp halves values with the top bit set (keeping the low bit sticky).

// CHECK:      %[[ZERO:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-NEXT: %[[Q:.*]] = llvm.sdiv %a, %b : i32
// CHECK-NEXT: %[[R:.*]] = llvm.srem %a, %b : i32
// CHECK-NEXT: %[[NZ:.*]] = llvm.icmp "ne" %[[R]], %[[ZERO]] : i32
// CHECK-NEXT: %[[RN:.*]] = llvm.icmp "slt" %[[R]], %[[ZERO]] : i32
// CHECK-NEXT: %[[BN:.*]] = llvm.icmp "slt" %b, %[[ZERO]] : i32
// CHECK-NEXT: %[[DIFF:.*]] = llvm.xor %[[RN]], %[[BN]] : i1
// CHECK-NEXT: %[[ADJ:.*]] = llvm.and %[[NZ]], %[[DIFF]] : i1
// CHECK-NEXT: %[[ONE:.*]] = llvm.zext %[[ADJ]] : i1 to i32
// CHECK-NEXT: %{{.*}} = llvm.sub %[[Q]], %[[ONE]] : i32
// CHECK:      %[[UQ:.*]] = llvm.udiv %a, %b : i32
// CHECK-NEXT: %[[UR:.*]] = llvm.urem %a, %b : i32
// CHECK-NEXT: %[[UNZ:.*]] = llvm.icmp "ne" %[[UR]], %{{.*}} : i32
// CHECK-NEXT: %[[UADJ:.*]] = llvm.zext %[[UNZ]] : i1 to i32
// CHECK-NEXT: %{{.*}} = llvm.add %[[UQ]], %[[UADJ]] : i32
// CHECK:      %[[HALF:.*]] = llvm.lshr %big, %{{.*}} : i64
// CHECK:      %[[NEG:.*]] = llvm.icmp "slt" %big, %{{.*}} : i64
// CHECK-NEXT: %[[SMALL:.*]] = llvm.sitofp %big : i64 to f32
// CHECK-NEXT: %[[H:.*]] = llvm.sitofp %{{.*}} : i64 to f32
// CHECK-NEXT: %[[TWICE:.*]] = llvm.fadd %[[H]], %[[H]] : f32
// CHECK-NEXT: %{{.*}} = llvm.select %[[NEG]], %[[TWICE]], %[[SMALL]] : i1, f32
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (i32, i32, i64) -> (), kernel}> ({
    ^bb0(%a: i32, %b: i32, %big: i64):
      %f = arith.floordivsi %a, %b : i32
      %c = arith.ceildivui %a, %b : i32
      %u = arith.uitofp %big : i64 to f32
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
