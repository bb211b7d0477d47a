// RUN: visc-opt %s -p map-loops-to-gpu -t opencl | filecheck %s
// RUN: visc-opt %s -p map-loops-to-gpu -t 'opencl{native_half=true}' | filecheck %s --check-prefix=NATIVE

// f16 by default: half in global memory (vload_half / vstore_half_rte), float registers
// and private arrays, inexact results rounded to half at once; exact ones (maximumf,
// extf) are not. With native_half the kernel computes in half under cl_khr_fp16.

// CHECK-NOT:  cl_khr_fp16
// CHECK:      float visc_round_half(float x) {
// CHECK-NEXT:   ushort h;
// CHECK-NEXT:   vstore_half_rte(x, 0, (__private half*)&h);
// CHECK-NEXT:   return vload_half(0, (const __private half*)&h);
// CHECK-NEXT: }
// CHECK:      void scale(__global const half* restrict a0, __global half* restrict a1) {
// CHECK:        float v4 = vload_half(v3, a0);
// CHECK-NEXT:   float v5 = visc_round_half(v4 * 0.3330078f);
// CHECK-NEXT:   float v6[4];
// CHECK-NEXT:   v6[v3] = v5;
// CHECK-NEXT:   float v7 = v6[v3];
// CHECK-NEXT:   float v8 = isnan(v7) ? v7 : fmax(v7, 0.0f);
// CHECK-NEXT:   float v9 = (float)v8;
// CHECK-NEXT:   float v10 = visc_round_half((float)v9);
// CHECK-NEXT:   vstore_half_rte(v10, v3, a1);

// NATIVE:      #pragma OPENCL EXTENSION cl_khr_fp16 : enable
// NATIVE-NOT:  visc_round_half
// NATIVE:        half v4 = a0[v3];
// NATIVE-NEXT:   half v5 = v4 * ((half)0.3330078f);
// NATIVE-NEXT:   half v6[4];
// NATIVE:        a1[v3] = v10;
func.func @main(%x: memref<4xf16>, %y: memref<4xf16>) attributes {vision.num_inputs = 1 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  "scf.parallel"(%c0, %c4, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %a = memref.load %x[%i] : memref<4xf16>
    %k = arith.constant 0.333 : f16
    %b = arith.mulf %a, %k : f16
    %tmp = memref.alloca() : memref<4xf16>
    memref.store %b, %tmp[%i] : memref<4xf16>
    %c = memref.load %tmp[%i] : memref<4xf16>
    %z = arith.constant 0.0 : f16
    %r = arith.maximumf %c, %z : f16
    %w = arith.extf %r : f16 to f32
    %n = arith.truncf %w : f32 to f16
    memref.store %n, %y[%i] : memref<4xf16>
    scf.reduce
  }) {kernel_name = "scale", workgroup_size = 4 : i64} : (index, index, index) -> ()
  func.return
}
