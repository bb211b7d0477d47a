// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Gemm-like: transposed b (N x K), alpha/beta with a broadcast c row, 2x4 register tile;
// N = 6 is not a multiple of tile_n, so the ragged register columns are guarded.

func.func @main(%a: memref<2x4x5xf32>, %out: memref<2x4x6xf32>) {
  %b = vision.weight @b : memref<6x5xf32>
  %c = vision.weight @c : memref<6xf32>
  vision.matmul ins(%a, %b, %c : memref<2x4x5xf32>, memref<6x5xf32>, memref<6xf32>) outs(%out : memref<2x4x6xf32>) {transpose_b = 1 : i64, alpha = 5.000000e-01 : f64, beta = 2.000000e+00 : f64, onnx_node = "fc", schedule = #vision.schedule<{wg = 16 : i64, tile_m = 2 : i64, tile_n = 4 : i64, unroll_k = 0 : i64}>}
  func.return
}

// CHECK:      "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 3, 3, 3, 0>}> ({
// CHECK-NEXT: ^bb0(%[[B:.*]]: index, %[[MT:.*]]: index, %[[T:.*]]: index):
// CHECK:        scf.for %[[K:.*]] = {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK-COUNT-2: memref.load %a[%[[B]], %{{.*}}, %[[K]]] : memref<2x4x5xf32>
// CHECK:          memref.load %b[%[[T]], %[[K]]] : memref<6x5xf32>
// CHECK-COUNT-3:  memref.load %b[%{{.*}}, %[[K]]] : memref<6x5xf32>
// CHECK-COUNT-8:  math.fma
// CHECK:        } {vision.unroll = 0 : i64}
// CHECK:        %[[ALPHA:.*]] = arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT:   %[[CV:.*]] = memref.load %c[%[[T]]] : memref<6xf32>
// CHECK-NEXT:   %[[BC:.*]] = arith.mulf %[[CV]], %{{.*}} : f32
// CHECK-NEXT:   %[[Y:.*]] = arith.addf %[[ALPHA]], %[[BC]] : f32
// CHECK-NEXT:   memref.store %[[Y]], %out[%[[B]], %{{.*}}, %[[T]]] : memref<2x4x6xf32>
// CHECK:        scf.if
// CHECK:      }) {kernel_name = "matmul_fc", workgroup_size = 16 : i64{{.*}}}
