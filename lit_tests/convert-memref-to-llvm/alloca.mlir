// RUN: visc-opt %s -p convert-memref-to-llvm | filecheck %s
// RUN: visc-opt %s -p convert-memref-to-llvm | visc-opt | filecheck %s

// A private alloca (even one inside a branch) becomes an array alloca at the top of the
// entry block, where LLVM promotes it to registers. Workgroup memory (space 3) becomes an
// internal addrspace(3) global of the kernel module, shared by the block.

// CHECK:      llvm.mlir.global internal @__shared_k_0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<64 x f32>
// CHECK:      "gpu.func"()
// CHECK-NEXT: ^bb0(%x: memref<64xf32>, %c: i1):
// CHECK-NEXT:   %[[ONE:.*]] = llvm.mlir.constant(1 : i32) : i32
// CHECK-NEXT:   %[[A:.*]] = llvm.alloca %[[ONE]] x !llvm.array<4 x f32> {alignment = 4 : i64} : (i32) -> !llvm.ptr
// CHECK:        %[[T:.*]] = llvm.mlir.addressof @__shared_k_0 : !llvm.ptr<3>
// CHECK:        %[[TG:.*]] = llvm.getelementptr inbounds %[[T]][%{{.*}}] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, f32
// CHECK-NEXT:   llvm.store %{{.*}}, %[[TG]] {alignment = 4 : i64} : f32, !llvm.ptr<3>
// CHECK:        scf.if %c {
// CHECK:          %[[AG:.*]] = llvm.getelementptr inbounds %[[A]][%{{.*}}] : (!llvm.ptr, i32) -> !llvm.ptr, f32
// CHECK-NEXT:     llvm.store %{{.*}}, %[[AG]]
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<64xf32>, i1) -> (), kernel}> ({
    ^bb0(%x: memref<64xf32>, %c: i1):
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %tile = memref.alloca() : memref<64xf32, 3>
      %v = memref.load %x[%tid] : memref<64xf32>
      memref.store %v, %tile[%tid] : memref<64xf32, 3>
      scf.if %c {
        %acc = memref.alloca() : memref<4xf32>
        %c1 = arith.constant 1 : index
        memref.store %v, %acc[%c1] : memref<4xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
