// RUN: visc-opt %s -p convert-memref-to-llvm | filecheck %s
// RUN: visc-opt %s -p convert-memref-to-llvm | visc-opt | filecheck %s

// A memref is a pointer to its first element; indices are linearized with the static
// row-major strides (nsw index arithmetic, constants folded) into one inbounds GEP. i1
// elements are bytes: loads compare with 0, stores zero-extend. A strided layout uses its
// strides and offset.

// CHECK:      %[[P:.*]] = builtin.unrealized_conversion_cast %x : memref<2x3x4xf32> to !llvm.ptr
// CHECK-NEXT: %[[I:.*]] = builtin.unrealized_conversion_cast %i : index to i32
// CHECK-NEXT: %[[S:.*]] = llvm.mlir.constant(12 : i32) : i32
// CHECK-NEXT: %[[IS:.*]] = llvm.mul %[[I]], %[[S]] overflow<nsw> : i32
// CHECK-NEXT: %[[J:.*]] = builtin.unrealized_conversion_cast %j : index to i32
// CHECK-NEXT: %[[C:.*]] = llvm.mlir.constant(8 : i32) : i32
// CHECK-NEXT: %[[A:.*]] = llvm.add %[[IS]], %[[J]] overflow<nsw> : i32
// CHECK-NEXT: %[[L:.*]] = llvm.add %[[A]], %[[C]] overflow<nsw> : i32
// CHECK-NEXT: %[[G:.*]] = llvm.getelementptr inbounds %[[P]][%[[L]]] : (!llvm.ptr, i32) -> !llvm.ptr, f32
// CHECK-NEXT: %[[V:.*]] = llvm.load %[[G]] {alignment = 4 : i64} : !llvm.ptr -> f32
// CHECK:      %[[B:.*]] = llvm.load %{{.*}} {alignment = 1 : i64} : !llvm.ptr -> i8
// CHECK-NEXT: %[[Z:.*]] = llvm.mlir.constant(0 : i8) : i8
// CHECK-NEXT: %{{.*}} = llvm.icmp "ne" %[[B]], %[[Z]] : i8
// CHECK:      %[[BYTE:.*]] = llvm.zext %{{.*}} : i1 to i8
// CHECK:      llvm.store %[[BYTE]], %{{.*}} {alignment = 1 : i64} : i8, !llvm.ptr
// CHECK:      %[[SP:.*]] = builtin.unrealized_conversion_cast %s : memref<4x4xf32, strided<[8, 2], offset: 1>> to !llvm.ptr
// CHECK-NEXT: %[[SO:.*]] = llvm.mlir.constant(19 : i32) : i32
// CHECK-NEXT: %[[SG:.*]] = llvm.getelementptr inbounds %[[SP]][%[[SO]]] : (!llvm.ptr, i32) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.store %[[V]], %[[SG]] {alignment = 4 : i64} : f32, !llvm.ptr
// CHECK:      %[[VG:.*]] = llvm.getelementptr inbounds %{{.*}}[%{{.*}}] : (!llvm.ptr, i32) -> !llvm.ptr, f32
// CHECK-NEXT: %{{.*}} = llvm.load %[[VG]] {alignment = 4 : i64} : !llvm.ptr -> vector<4xf32>
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<2x3x4xf32>, memref<4xi1>, memref<4x4xf32, strided<[8, 2], offset: 1>>, index, index) -> (), kernel}> ({
    ^bb0(%x: memref<2x3x4xf32>, %m: memref<4xi1>, %s: memref<4x4xf32, strided<[8, 2], offset: 1>>, %i: index, %j: index):
      %c2 = arith.constant 2 : index
      %v = memref.load %x[%i, %c2, %j] : memref<2x3x4xf32>
      %b = memref.load %m[%j] : memref<4xi1>
      memref.store %b, %m[%i] : memref<4xi1>
      %c1 = arith.constant 1 : index
      memref.store %v, %s[%c2, %c1] : memref<4x4xf32, strided<[8, 2], offset: 1>>
      %w = vector.load %x[%i, %c2, %c1] : memref<2x3x4xf32>, vector<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
