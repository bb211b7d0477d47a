// RUN: visc-opt %s | filecheck %s
// RUN: visc-opt %s | visc-opt | filecheck %s
// The row normalizations (layer_norm, group_norm) print in the common syntax and parse back.

// CHECK-LABEL: func.func @tensors
func.func @tensors(%x: tensor<2x8x5x5xf32>, %t: tensor<4x49x96xf16>) -> (tensor<2x8x5x5xf32>, tensor<4x49x1xf32>) {
  %c = vision.weight @c : tensor<8xf32>
  %h = vision.weight @h : tensor<96xf16>
  %s = vision.weight @s : tensor<8x1x1xf32>
  // CHECK: %ln, %mean, %inv = vision.layer_norm ins(%t, %h, %h : tensor<4x49x96xf16>, tensor<96xf16>, tensor<96xf16>) {axes = array<i64: 2>, epsilon = 1.000000e-06 : f32, onnx_node = "ln"} -> tensor<4x49x96xf16>, tensor<4x49x1xf32>, tensor<4x49x1xf32>
  %ln, %mean, %inv = vision.layer_norm ins(%t, %h, %h : tensor<4x49x96xf16>, tensor<96xf16>, tensor<96xf16>) {axes = array<i64: 2>, epsilon = 1.0e-06 : f32, onnx_node = "ln"} -> tensor<4x49x96xf16>, tensor<4x49x1xf32>, tensor<4x49x1xf32>
  // channels of NCHW, scale only
  // CHECK: %lc = vision.layer_norm ins(%x, %s : tensor<2x8x5x5xf32>, tensor<8x1x1xf32>) {axes = array<i64: 1>, epsilon = 1.000000e-06 : f32} -> tensor<2x8x5x5xf32>
  %lc = vision.layer_norm ins(%x, %s : tensor<2x8x5x5xf32>, tensor<8x1x1xf32>) {axes = array<i64: 1>, epsilon = 1.0e-06 : f32} -> tensor<2x8x5x5xf32>
  // CHECK: %gn = vision.group_norm ins(%lc, %c, %c : tensor<2x8x5x5xf32>, tensor<8xf32>, tensor<8xf32>) {groups = 4 : i64, epsilon = 1.000000e-05 : f32, onnx_node = "gn", onnx_op = "GroupNormalization"} -> tensor<2x8x5x5xf32>
  %gn = vision.group_norm ins(%lc, %c, %c : tensor<2x8x5x5xf32>, tensor<8xf32>, tensor<8xf32>) {groups = 4 : i64, epsilon = 1.0e-05 : f32, onnx_node = "gn", onnx_op = "GroupNormalization"} -> tensor<2x8x5x5xf32>
  func.return %gn, %mean : tensor<2x8x5x5xf32>, tensor<4x49x1xf32>
}

// CHECK-LABEL: func.func @memrefs
func.func @memrefs(%x: memref<2x8x5x5xf32>, %y: memref<2x8x5x5xf32>, %z: memref<2x8x5x5xf32>) {
  %c = vision.weight @c : memref<8xf32>
  %w = vision.weight @w : memref<5x5xf32>
  // CHECK: vision.group_norm ins(%x, %c, %c : memref<2x8x5x5xf32>, memref<8xf32>, memref<8xf32>) outs(%y : memref<2x8x5x5xf32>) {groups = 8 : i64, epsilon = 1.000000e-05 : f32, schedule = #vision.schedule<{coop = 1 : i64, wg = 32 : i64}>}
  vision.group_norm ins(%x, %c, %c : memref<2x8x5x5xf32>, memref<8xf32>, memref<8xf32>) outs(%y : memref<2x8x5x5xf32>) {groups = 8 : i64, epsilon = 1.0e-05 : f32, schedule = #vision.schedule<{coop = 1 : i64, wg = 32 : i64}>}
  // CHECK: vision.layer_norm ins(%y, %w : memref<2x8x5x5xf32>, memref<5x5xf32>) outs(%z : memref<2x8x5x5xf32>) {axes = array<i64: 1, 2, 3>, epsilon = 1.000000e-05 : f32}
  vision.layer_norm ins(%y, %w : memref<2x8x5x5xf32>, memref<5x5xf32>) outs(%z : memref<2x8x5x5xf32>) {axes = array<i64: 1, 2, 3>, epsilon = 1.0e-05 : f32}
  func.return
}
