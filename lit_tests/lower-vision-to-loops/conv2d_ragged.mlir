// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Depthwise, stride 2, dilation 2, asymmetric pads, no bias; tile_ow = 2 does not divide
// OW = 3: the thread space has ceil(3/2) = 2 column threads, the second register column is
// clamped for its loads and its store is guarded by an scf.if.

func.func @main(%x: memref<2x3x7x7xf32>, %out: memref<2x3x3x3xf32>) {
  %w = vision.weight @w : memref<3x1x3x3xf32>
  vision.conv2d ins(%x, %w : memref<2x3x7x7xf32>, memref<3x1x3x3xf32>) outs(%out : memref<2x3x3x3xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 2, 2>, dilations = array<i64: 2, 2>, groups = 3 : i64, onnx_node = "dw/conv:0", schedule = #vision.schedule<{wg = 32 : i64, tile_ow = 2 : i64, unroll_win = 0 : i64}>}
  func.return
}

// CHECK:      "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 4, 4, 4, 0>}> ({
// CHECK-NEXT: ^bb0(%[[N:.*]]: index, %[[OC:.*]]: index, %[[OH:.*]]: index, %[[T:.*]]: index):
// CHECK:        %[[COL1:.*]] = arith.addi %[[T]], %{{.*}} : index
// CHECK-NEXT:   %[[OK1:.*]] = arith.cmpi slt, %[[COL1]], %{{.*}} : index
// CHECK-NEXT:   %[[CL1:.*]] = arith.minsi %[[COL1]], %{{.*}} : index
// CHECK:        scf.for
// CHECK:          scf.for
// CHECK-NOT:        scf.for
// CHECK:            memref.load %x[%[[N]], %[[OC]],
// CHECK:            memref.load %w[%[[OC]], %{{.*}}, %{{.*}}, %{{.*}}] : memref<3x1x3x3xf32>
// CHECK:          } {vision.unroll = 0 : i64}
// CHECK:        } {vision.unroll = 0 : i64}
// CHECK:        memref.store %{{.*}}, %out[%[[N]], %[[OC]], %[[OH]], %[[T]]]
// CHECK-NEXT:   scf.if %[[OK1]] {
// CHECK-NEXT:     memref.store %{{.*}}, %out[%[[N]], %[[OC]], %[[OH]], %[[CL1]]]
// CHECK-NEXT:   }
// CHECK:      }) {kernel_name = "conv2d_dw_conv_0", workgroup_size = 32 : i64{{.*}}}
