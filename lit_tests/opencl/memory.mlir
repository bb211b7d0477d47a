// RUN: visc-opt %s -p map-loops-to-gpu -t opencl | filecheck %s

// A block/thread kernel: the workgroup-memory alloca (memory space 3) is hoisted to kernel
// scope as __local, the private one stays a private array where it is declared; barriers
// fence local and global memory; vector loads/stores use vloadN/vstoreN on the linearized
// address.

// CHECK:      __kernel __attribute__((reqd_work_group_size(4, 1, 1))) void staged(__global const float* restrict a0, __global float* restrict a1) {
// CHECK-NEXT:   __local float l0[16];
// CHECK-NEXT:   int v0 = (int)get_group_id(0);
// CHECK-NEXT:   int v1 = (int)get_local_id(0);
// CHECK-NEXT:   int v2 = v1 * 4;
// CHECK-NEXT:   float4 v3 = vload4(0, a0 + (v0 * 16 + v2));
// CHECK-NEXT:   float4 v4 = (float4)(2.0f);
// CHECK-NEXT:   float4 v5 = v3 * v4;
// CHECK-NEXT:   vstore4(v5, 0, l0 + (v2));
// CHECK-NEXT:   barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
// CHECK-NEXT:   float v6[2];
// CHECK-NEXT:   int v7 = 15 - v1;
// CHECK-NEXT:   float v8 = l0[v7];
// CHECK-NEXT:   v6[1] = v8;
// CHECK-NEXT:   float v9 = v6[1];
// CHECK-NEXT:   float4 v10 = (float4)(v9);
// CHECK-NEXT:   float v11 = v10.s3;
// CHECK-NEXT:   float v12 = v10.s0 + v10.s1 + v10.s2 + v10.s3;
// CHECK-NEXT:   float v13 = v11 + v12;
// CHECK-NEXT:   a1[v0 * 4 + v1] = v13;
// CHECK-NEXT: }
func.func @main(%x: memref<3x16xf32>, %y: memref<3x4xf32>) attributes {vision.num_inputs = 1 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c15 = arith.constant 15 : index
  "scf.parallel"(%c0, %c3, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%r: index):
    %tile = memref.alloca() : memref<16xf32, 3>
    "scf.parallel"(%c0, %c4, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%t: index):
      %k = arith.muli %t, %c4 : index
      %v = vector.load %x[%r, %k] : memref<3x16xf32>, vector<4xf32>
      %two = arith.constant dense<2.0> : vector<4xf32>
      %d = arith.mulf %v, %two : vector<4xf32>
      vector.store %d, %tile[%k] : memref<16xf32, 3>, vector<4xf32>
      scf.reduce
    }) : (index, index, index) -> ()
    "gpu.barrier"() : () -> ()
    "scf.parallel"(%c0, %c4, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%t: index):
      %priv = memref.alloca() : memref<2xf32>
      %j = arith.subi %c15, %t : index
      %a = memref.load %tile[%j] : memref<16xf32, 3>
      memref.store %a, %priv[%c1] : memref<2xf32>
      %b = memref.load %priv[%c1] : memref<2xf32>
      %s = vector.broadcast %b : f32 to vector<4xf32>
      %e = vector.extract %s[3] : f32 from vector<4xf32>
      %sum = vector.reduction <add>, %s : vector<4xf32> into f32
      %o = arith.addf %e, %sum : f32
      memref.store %o, %y[%r, %t] : memref<3x4xf32>
      scf.reduce
    }) : (index, index, index) -> ()
    scf.reduce
  }) {kernel_name = "staged", workgroup_size = 4 : i64} : (index, index, index) -> ()
  func.return
}
