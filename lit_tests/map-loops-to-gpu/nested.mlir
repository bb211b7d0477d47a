// RUN: visc-opt %s -p map-loops-to-gpu | filecheck %s

// Block/thread form: the outer loop (3 rows) becomes the grid, one work-group of 8 threads
// per row; nested loops map onto thread ids (the 4-iteration one is guarded by tid < 4);
// the workgroup-memory alloca and the barriers stay where they are, for the emitter.

// CHECK:      ^bb0(%x: memref<3x8xf32>, %out0: memref<3xf32>):
// CHECK-NEXT:   %c0 = arith.constant 0 : index
// CHECK-NEXT:   %c1 = arith.constant 1 : index
// CHECK-NEXT:   %c4 = arith.constant 4 : index
// CHECK-NEXT:   %bid = "gpu.block_id"()
// CHECK-NEXT:   %tid = "gpu.thread_id"()
// CHECK-NEXT:   %tile = memref.alloca() : memref<8xf32, 3 : i64>
// CHECK-NEXT:   %v = memref.load %x[%bid, %tid] : memref<3x8xf32>
// CHECK-NEXT:   memref.store %v, %tile[%tid] : memref<8xf32, 3 : i64>
// CHECK-NEXT:   "gpu.barrier"() : () -> ()
// CHECK-NEXT:   %total = arith.constant 4 : index
// CHECK-NEXT:   %inside = arith.cmpi ult, %tid, %total : index
// CHECK-NEXT:   scf.if %inside {
// CHECK-NEXT:     %{{.*}} = arith.addi %tid, %c4 : index
// CHECK:        "gpu.barrier"() : () -> ()
// CHECK-NEXT:   %total_1 = arith.constant 1 : index
// CHECK-NEXT:   %inside_1 = arith.cmpi ult, %tid, %total_1 : index
// CHECK-NEXT:   scf.if %inside_1 {
// CHECK-NEXT:     memref.load %tile[%c0]
// CHECK:          memref.store %{{.*}}, %out0[%bid] : memref<3xf32>
// CHECK-NOT:    scf.parallel
// CHECK:        }) {sym_name = "partial_sum", gpu.known_block_size = array<i32: 8, 1, 1>}
// CHECK:        "gpu.launch_func"(%c3, %c1, %c1, %c8, %c1, %c1, %x, %out0)
func.func @main(%x: memref<3x8xf32>, %out0: memref<3xf32>) attributes {vision.num_inputs = 1 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  "scf.parallel"(%c0, %c3, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%r: index):
    %tile = memref.alloca() : memref<8xf32, 3>
    "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%t: index):
      %v = memref.load %x[%r, %t] : memref<3x8xf32>
      memref.store %v, %tile[%t] : memref<8xf32, 3>
      scf.reduce
    }) : (index, index, index) -> ()
    "gpu.barrier"() : () -> ()
    "scf.parallel"(%c0, %c4, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%t: index):
      %o = arith.addi %t, %c4 : index
      %a = memref.load %tile[%t] : memref<8xf32, 3>
      %b = memref.load %tile[%o] : memref<8xf32, 3>
      %s = arith.addf %a, %b : f32
      memref.store %s, %tile[%t] : memref<8xf32, 3>
      scf.reduce
    }) : (index, index, index) -> ()
    "gpu.barrier"() : () -> ()
    "scf.parallel"(%c0, %c1, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%t: index):
      %a = memref.load %tile[%c0] : memref<8xf32, 3>
      %b = memref.load %tile[%c1] : memref<8xf32, 3>
      %s = arith.addf %a, %b : f32
      memref.store %s, %out0[%r] : memref<3xf32>
      scf.reduce
    }) : (index, index, index) -> ()
    scf.reduce
  }) {kernel_name = "partial_sum", workgroup_size = 8 : i64} : (index, index, index) -> ()
  func.return
}
