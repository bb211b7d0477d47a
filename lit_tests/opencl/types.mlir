// RUN: visc-opt %s -p map-loops-to-gpu -t opencl | filecheck %s

// i1 is stored as uchar and held as bool; i8 -> char, i64 -> long with L literals, f64 ->
// double (enabling cl_khr_fp64); unsigned ops cast to the unsigned type of their width;
// unordered comparisons are negated ordered ones; inf/nan constants use the C macros;
// maximumf propagates NaN.

// CHECK:      #pragma OPENCL EXTENSION cl_khr_fp64 : enable
// CHECK:      __kernel __attribute__((reqd_work_group_size(8, 1, 1))) void types(__global const uchar* restrict a0, __global const char* restrict a1, __global uchar* restrict a2, __global long* restrict a3, __global const double* restrict a4, __global double* restrict a5) {
// CHECK-NEXT:   int v0 = (int)get_group_id(0);
// CHECK-NEXT:   int v1 = (int)get_local_id(0);
// CHECK-NEXT:   int v2 = v0 * 8;
// CHECK-NEXT:   int v3 = v2 + v1;
// CHECK-NEXT:   bool v4 = (uint)v3 < 6u;
// CHECK-NEXT:   if (v4) {
// CHECK-NEXT:     bool v5 = a0[v3] != 0;
// CHECK-NEXT:     char v6 = a1[v3];
// CHECK-NEXT:     bool v7 = (uchar)v6 < 7u;
// CHECK-NEXT:     bool v8 = v5 ^ v7;
// CHECK-NEXT:     a2[v3] = (uchar)v8;
// CHECK-NEXT:     long v9 = (long)(uchar)v6;
// CHECK-NEXT:     long v10 = (long)v6;
// CHECK-NEXT:     long v11 = v9 * (-4294967296L);
// CHECK-NEXT:     long v12 = v11 + v10;
// CHECK-NEXT:     long v13 = (long)((ulong)v12 / (ulong)v9);
// CHECK-NEXT:     long v14 = v8 ? v12 : v13;
// CHECK-NEXT:     a3[v3] = v14;
// CHECK-NEXT:     double v15 = a4[v3];
// CHECK-NEXT:     bool v16 = !(v15 >= ((double)INFINITY));
// CHECK-NEXT:     bool v17 = isnan(v15) || isnan(v15);
// CHECK-NEXT:     bool v18 = !(v15 < v15 || v15 > v15);
// CHECK-NEXT:     bool v19 = v15 < v15 || v15 > v15;
// CHECK-NEXT:     double v20 = (((double)NAN) > v15 || ((double)NAN) != ((double)NAN) ? ((double)NAN) : v15);
// CHECK-NEXT:     double v21 = isnan(v15) ? v15 : fmin(v15, 0.25);
// CHECK-NEXT:     double v22 = (double)v16;
// CHECK-NEXT:     double v23 = v21 + v22;
// CHECK-NEXT:     double v24 = v23 + v20;
// CHECK-NEXT:     double v25 = (double)(-(int)v17);
// CHECK-NEXT:     double v26 = (double)v18;
// CHECK-NEXT:     double v27 = (double)v19;
// CHECK-NEXT:     double v28 = v24 + v25;
// CHECK-NEXT:     double v29 = v28 + v26;
// CHECK-NEXT:     double v30 = v29 + v27;
// CHECK-NEXT:     a5[v3] = v30;
// CHECK-NEXT:   }
// CHECK-NEXT: }
func.func @main(%m: memref<6xi1>, %p: memref<6xi8>, %d: memref<6xf64>, %ob: memref<6xi1>, %ol: memref<6xi64>, %od: memref<6xf64>) attributes {vision.num_inputs = 3 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c6 = arith.constant 6 : index
  "scf.parallel"(%c0, %c6, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %mask = memref.load %m[%i] : memref<6xi1>
    %a = memref.load %p[%i] : memref<6xi8>
    %seven = arith.constant 7 : i8
    %lt = arith.cmpi ult, %a, %seven : i8
    %x = arith.xori %mask, %lt : i1
    memref.store %x, %ob[%i] : memref<6xi1>
    %u = arith.extui %a : i8 to i64
    %s = arith.extsi %a : i8 to i64
    %big = arith.constant -4294967296 : i64
    %l = arith.muli %u, %big : i64
    %l2 = arith.addi %l, %s : i64
    %q = arith.divui %l2, %u : i64
    %sel = arith.select %x, %l2, %q : i64
    memref.store %sel, %ol[%i] : memref<6xi64>
    %v = memref.load %d[%i] : memref<6xf64>
    %inf = arith.constant 0x7FF0000000000000 : f64
    %nan = arith.constant 0x7FF8000000000000 : f64
    %quarter = arith.constant 0.25 : f64
    %c_ult = arith.cmpf ult, %v, %inf : f64
    %c_uno = arith.cmpf uno, %v, %v : f64
    %c_ueq = arith.cmpf ueq, %v, %v : f64
    %c_one = arith.cmpf one, %v, %v : f64
    %mx = arith.maximumf %v, %nan : f64
    %mn = arith.minimumf %v, %quarter : f64
    %f = arith.uitofp %c_ult : i1 to f64
    %r0 = arith.addf %mn, %f : f64
    %r1 = arith.addf %r0, %mx : f64
    %g = arith.sitofp %c_uno : i1 to f64
    %h = arith.uitofp %c_ueq : i1 to f64
    %k = arith.uitofp %c_one : i1 to f64
    %r2 = arith.addf %r1, %g : f64
    %r3 = arith.addf %r2, %h : f64
    %r4 = arith.addf %r3, %k : f64
    memref.store %r4, %od[%i] : memref<6xf64>
    scf.reduce
  }) {kernel_name = "types", workgroup_size = 8 : i64} : (index, index, index) -> ()
  func.return
}
