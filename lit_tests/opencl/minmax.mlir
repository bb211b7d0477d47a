// RUN: visc-opt %s -p map-loops-to-gpu -t opencl | filecheck %s

// NaN-propagating maximumf/minimumf: the second operand where it is NaN or wins the
// comparison, else the first (so NaN where the first is), as blends of compares: no isnan
// (a library call on PoCL) and no fmax/fmin. A constant second operand (a ReLU's zero) makes
// the NaN test constant. Reductions chain the scalar form lane by lane.

// CHECK:      void minmax(
// CHECK-NOT:  isnan
// CHECK:        float4 [[A:v[0-9]+]] = vload4(
// CHECK-NEXT:   float4 [[B:v[0-9]+]] = vload4(
// CHECK-NEXT:   float4 [[Z:v[0-9]+]] = (float4)(0.0f);
// CHECK-NEXT:   float4 {{v[0-9]+}} = select(select([[A]], [[B]], [[B]] > [[A]]), [[B]], [[B]] != [[B]]);
// CHECK-NEXT:   float4 {{v[0-9]+}} = select(select([[A]], [[B]], [[B]] < [[A]]), [[B]], [[B]] != [[B]]);
// CHECK-NEXT:   float4 {{v[0-9]+}} = select(select([[A]], [[Z]], [[Z]] > [[A]]), [[Z]], [[Z]] != [[Z]]);
// CHECK:        float [[S:v[0-9]+]] = a0[
// CHECK-NEXT:   float [[T:v[0-9]+]] = a1[
// CHECK-NEXT:   float {{v[0-9]+}} = ([[T]] > [[S]] || [[T]] != [[T]] ? [[T]] : [[S]]);
// CHECK-NEXT:   float {{v[0-9]+}} = ([[T]] < [[S]] || [[T]] != [[T]] ? [[T]] : [[S]]);
// CHECK-NEXT:   float {{v[0-9]+}} = ([[A]].s3 > ([[A]].s2 > ([[A]].s1 > [[A]].s0 || [[A]].s1 != [[A]].s1 ? [[A]].s1 : [[A]].s0) || [[A]].s2 != [[A]].s2 ? [[A]].s2 :
// CHECK:      }
func.func @main(%x: memref<8xf32>, %z: memref<8xf32>, %y: memref<2x3x4xf32>, %r: memref<2x3xf32>) attributes {vision.num_inputs = 2 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  "scf.parallel"(%c0, %c2, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %k = arith.muli %i, %c4 : index
    %a = vector.load %x[%k] : memref<8xf32>, vector<4xf32>
    %b = vector.load %z[%k] : memref<8xf32>, vector<4xf32>
    %zero = arith.constant dense<0.0> : vector<4xf32>
    %mx = arith.maximumf %a, %b : vector<4xf32>
    %mn = arith.minimumf %a, %b : vector<4xf32>
    %re = arith.maximumf %a, %zero : vector<4xf32>
    vector.store %mx, %y[%i, %c0, %c0] : memref<2x3x4xf32>, vector<4xf32>
    vector.store %mn, %y[%i, %c1, %c0] : memref<2x3x4xf32>, vector<4xf32>
    vector.store %re, %y[%i, %c2, %c0] : memref<2x3x4xf32>, vector<4xf32>
    %s = memref.load %x[%i] : memref<8xf32>
    %t = memref.load %z[%i] : memref<8xf32>
    %smx = arith.maximumf %s, %t : f32
    %smn = arith.minimumf %s, %t : f32
    %red = vector.reduction <maximumf>, %a : vector<4xf32> into f32
    memref.store %smx, %r[%i, %c0] : memref<2x3xf32>
    memref.store %smn, %r[%i, %c1] : memref<2x3xf32>
    memref.store %red, %r[%i, %c2] : memref<2x3xf32>
    scf.reduce
  }) {kernel_name = "minmax", workgroup_size = 2 : i64} : (index, index, index) -> ()
  func.return
}
