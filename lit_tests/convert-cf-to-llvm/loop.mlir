// RUN: visc-opt %s -p convert-scf-to-cf,convert-arith-to-llvm,convert-cf-to-llvm | filecheck %s
// RUN: visc-opt %s -p convert-scf-to-cf,convert-arith-to-llvm,convert-cf-to-llvm | visc-opt | filecheck %s

// After convert-scf-to-cf a loop is blocks and branches; here its counter becomes an i32
// block argument (a phi) and the carried f32 value rides along.

// CHECK:      ^bb0(%x: f32, %out: memref<1xf32>):
// CHECK:        llvm.br ^[[HEAD:.*]](%{{.*}}, %x : i32, f32)
// CHECK:      ^[[HEAD]](%[[I:.*]]: i32, %[[ACC:.*]]: f32):
// CHECK-NEXT:   %[[C:.*]] = llvm.icmp "slt" %[[I]], %{{.*}} : i32
// CHECK-NEXT:   llvm.cond_br %[[C]], ^[[BODY:.*]], ^[[EXIT:.*]]
// CHECK:      ^[[BODY]]:
// CHECK-NEXT:   %[[N:.*]] = llvm.fadd %[[ACC]], %x : f32
// CHECK-NEXT:   %[[NEXT:.*]] = llvm.add %[[I]], %{{.*}} : i32
// CHECK-NEXT:   llvm.br ^[[HEAD]](%[[NEXT]], %[[N]] : i32, f32)
// CHECK:      ^[[EXIT]]:
// CHECK-NEXT:   memref.store %[[ACC]], %out[%{{.*}}] : memref<1xf32>
// CHECK-NOT:  cf.
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (f32, memref<1xf32>) -> (), kernel}> ({
    ^bb0(%x: f32, %out: memref<1xf32>):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %s = scf.for %i = %c0 to %c4 step %c1 iter_args(%acc = %x) -> (f32) {
        %n = arith.addf %acc, %x : f32
        scf.yield %n : f32
      }
      memref.store %s, %out[%c0] : memref<1xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
