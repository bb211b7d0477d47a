// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Softmax over axis 1 of NCHW: one thread per (n, h, w), three passes over the channels:
// running max, sum of exp(x - max), then the normalized write.
// CHECK-LABEL: func.func @softmax
// CHECK:       "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 2, 2, 2, 0>}> ({
// CHECK:         %[[NEG:.*]] = arith.constant 0xff800000 : f32
// CHECK:         %[[MAX:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %[[NEG]]) -> (f32) {
// CHECK:           arith.maximumf
// CHECK:         %[[SUM:.*]] = scf.for {{.*}} -> (f32) {
// CHECK:           arith.subf %{{.*}}, %[[MAX]] : f32
// CHECK-NEXT:      math.exp
// CHECK:         %[[INV:.*]] = arith.divf %{{.*}}, %[[SUM]] : f32
// CHECK:         scf.for
// CHECK:           math.exp
// CHECK:           arith.mulf %{{.*}}, %[[INV]] : f32
// CHECK:           memref.store
// CHECK:       }) {kernel_name = "softmax_sm", workgroup_size = 32 : i64{{.*}}}
func.func @softmax(%x: memref<1x10x3x4xf32>, %y: memref<1x10x3x4xf32>) {
  vision.softmax ins(%x : memref<1x10x3x4xf32>) outs(%y : memref<1x10x3x4xf32>) {axis = 1 : i64, onnx_node = "sm", schedule = #vision.schedule<{wg = 32 : i64}>}
  func.return
}

// Log-softmax ends with x - (max + log(sum)).
// CHECK-LABEL: func.func @log_softmax
// CHECK:         math.log
// CHECK:         arith.subf
// CHECK:       }) {kernel_name = "log_softmax_lsm", workgroup_size = 4 : i64{{.*}}}
func.func @log_softmax(%x: memref<2x5xf32>, %y: memref<2x5xf32>) {
  vision.log_softmax ins(%x : memref<2x5xf32>) outs(%y : memref<2x5xf32>) {axis = -1 : i64, onnx_node = "lsm", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// Batch norm: per-channel parameters read at the channel index.
// CHECK-LABEL: func.func @batch_norm
// CHECK:       ^bb0(%{{.*}}: index, %[[C:.*]]: index, %{{.*}}: index, %{{.*}}: index):
// CHECK-DAG:     memref.load %s[%[[C]]] : memref<3xf32>
// CHECK-DAG:     memref.load %v[%[[C]]] : memref<3xf32>
// CHECK:         math.sqrt
// CHECK:       }) {kernel_name = "batch_norm_bn", workgroup_size = 64 : i64{{.*}}}
func.func @batch_norm(%x: memref<2x3x4x5xf32>, %y: memref<2x3x4x5xf32>) {
  %s = vision.weight @s : memref<3xf32>
  %b = vision.weight @b : memref<3xf32>
  %m = vision.weight @m : memref<3xf32>
  %v = vision.weight @v : memref<3xf32>
  vision.batch_norm ins(%x, %s, %b, %m, %v : memref<2x3x4x5xf32>, memref<3xf32>, memref<3xf32>, memref<3xf32>, memref<3xf32>) outs(%y : memref<2x3x4x5xf32>) {epsilon = 1.000000e-05 : f32, onnx_node = "bn", schedule = #vision.schedule<{wg = 64 : i64}>}
  func.return
}

// LRN: a loop over the clipped channel window [max(c - 1, 0), min(c + 2, C)).
// CHECK-LABEL: func.func @lrn
// CHECK:       ^bb0(%{{.*}}: index, %[[C:.*]]: index, %{{.*}}: index):
// CHECK:         %[[LO:.*]] = arith.maxsi
// CHECK:         %[[HI:.*]] = arith.minsi
// CHECK:         scf.for %{{.*}} = %[[LO]] to %[[HI]]
// CHECK:         math.powf
// CHECK:       }) {kernel_name = "lrn_norm1", workgroup_size = 16 : i64{{.*}}}
func.func @lrn(%x: memref<1x6x2x2xf32>, %y: memref<1x6x2x2xf32>) {
  vision.lrn ins(%x : memref<1x6x2x2xf32>) outs(%y : memref<1x6x2x2xf32>) {size = 3 : i64, alpha = 9.99999974E-5 : f32, beta = 7.500000e-01 : f32, bias = 1.000000e+00 : f32, onnx_node = "norm1", schedule = #vision.schedule<{wg = 16 : i64}>}
  func.return
}
