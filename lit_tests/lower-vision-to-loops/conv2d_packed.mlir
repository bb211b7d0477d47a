// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s
// RUN: visc-opt %s -p lower-vision-to-loops | visc-opt | filecheck %s

// pack = 8, tile_oc = 16, tile_ow = 3 (conv_packed.py) over a weight packed as (O/8, KH, KW,
// C, 8): each tap's channel loop reads the two channel vectors of channel c at [blk, kh, kw,
// c, 0]. The output is viewed as (N, O/8, 8, OH*OW); each accumulator leaves through a
// private 8-float array and a loop over its lanes that the emitters unroll fully, lane q
// stored at index q of the view.

// CHECK-LABEL: func.func @packed
// CHECK:       %[[OUT:.*]] = vision.reshape ins(%y : memref<1x16x6x6xf32>) {{.*}} -> memref<1x2x8x36xf32>
// CHECK:       "scf.parallel"
// CHECK:         scf.for %[[I:[0-9]+]] =
// CHECK:           scf.for %[[J:[0-9]+]] =
// CHECK:               scf.for %[[C:[0-9]+]] =
// CHECK:                 vector.load %w[%{{.*}}, %[[I]], %[[J]], %[[C]], %{{.*}}] : memref<2x3x3x4x8xf32>, vector<8xf32>
// CHECK:         %[[BUF:.*]] = memref.alloca() : memref<8xf32>
// CHECK:         %[[R:.*]] = arith.maximumf %{{.*}}, %{{.*}} : vector<8xf32>
// CHECK-NEXT:    vector.store %[[R]], %[[BUF]][%{{.*}}] : memref<8xf32>, vector<8xf32>
// CHECK-NEXT:    scf.for %[[Q:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[V:.*]] = memref.load %[[BUF]][%[[Q]]] : memref<8xf32>
// CHECK-NEXT:      memref.store %[[V]], %[[OUT]][%{{.*}}, %{{.*}}, %[[Q]], %{{.*}}] : memref<1x2x8x36xf32>
// CHECK-NEXT:    } {vision.unroll = 0 : i64}
// CHECK-COUNT-5: {vision.unroll = 0 : i64}
// CHECK-NOT:     vision.unroll
func.func @packed(%x: memref<1x4x6x6xf32>, %y: memref<1x16x6x6xf32>) {
  %w = vision.weight @w_oc8 : memref<2x3x3x4x8xf32>
  vision.conv2d ins(%x, %w : memref<1x4x6x6xf32>, memref<2x3x3x4x8xf32>) outs(%y : memref<1x16x6x6xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "pk", packed_oc = 8 : i64, schedule = #vision.schedule<{pack = 8 : i64, tile_oc = 16 : i64, tile_ow = 3 : i64, wg = 4 : i64}>} body {
  ^bb0(%a: f32):
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %a, %z : f32
    vision.yield %m : f32
  }
  func.return
}
