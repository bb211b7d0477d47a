// RUN: visc-opt %s -p map-loops-to-gpu -t opencl | filecheck %s

// scf.for iter_args become variables assigned at the end of each iteration (through
// temporaries when the yield swaps them); vision.unroll becomes a pragma; scf.if results
// are declared before the branches.

// CHECK:      __kernel __attribute__((reqd_work_group_size(4, 1, 1))) void loops(__global const float* restrict a0, __global float* restrict a1) {
// CHECK:        float v4 = a0[v3 * 8];
// CHECK-NEXT:   float v5 = v4;
// CHECK-NEXT:   #pragma unroll
// CHECK-NEXT:   for (int v6 = 1; v6 < 8; v6 += 1) {
// CHECK-NEXT:     float v7 = a0[v3 * 8 + v6];
// CHECK-NEXT:     float v8 = v5 + v7;
// CHECK-NEXT:     v5 = v8;
// CHECK-NEXT:   }
// CHECK-NEXT:   float v9 = 0.0f;
// CHECK-NEXT:   float v10 = 1.0f;
// CHECK-NEXT:   #pragma unroll 2
// CHECK-NEXT:   for (int v11 = 0; v11 < 3; v11 += 1) {
// CHECK-NEXT:     float v12 = v9 + v10;
// CHECK-NEXT:     float v9_next = v10;
// CHECK-NEXT:     float v10_next = v12;
// CHECK-NEXT:     v9 = v9_next;
// CHECK-NEXT:     v10 = v10_next;
// CHECK-NEXT:   }
// CHECK-NEXT:   bool v13 = v5 > v9;
// CHECK-NEXT:   float v14;
// CHECK-NEXT:   if (v13) {
// CHECK-NEXT:     v14 = v5;
// CHECK-NEXT:   } else {
// CHECK-NEXT:     float v15 = -v9;
// CHECK-NEXT:     v14 = v15;
// CHECK-NEXT:   }
// CHECK-NEXT:   a1[v3] = v14;
// CHECK-NEXT: }
func.func @main(%x: memref<4x8xf32>, %y: memref<4xf32>) attributes {vision.num_inputs = 1 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  "scf.parallel"(%c0, %c4, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %first = memref.load %x[%i, %c0] : memref<4x8xf32>
    %one = arith.constant 1.0 : f32
    %sum = scf.for %k = %c1 to %c8 step %c1 iter_args(%acc = %first) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<4x8xf32>
      %n = arith.addf %acc, %v : f32
      scf.yield %n : f32
    } {vision.unroll = 0 : i64}
    %zero = arith.constant 0.0 : f32
    %fib:2 = scf.for %k = %c0 to %c3 step %c1 iter_args(%a = %zero, %b = %one) -> (f32, f32) {
      %n = arith.addf %a, %b : f32
      scf.yield %b, %n : f32, f32
    } {vision.unroll = 2 : i64}
    %gt = arith.cmpf ogt, %sum, %fib#0 : f32
    %r = scf.if %gt -> (f32) {
      scf.yield %sum : f32
    } else {
      %neg = arith.negf %fib#0 : f32
      scf.yield %neg : f32
    }
    memref.store %r, %y[%i] : memref<4xf32>
    scf.reduce
  }) {kernel_name = "loops", workgroup_size = 4 : i64} : (index, index, index) -> ()
  func.return
}
