// RUN: visc-opt %s -p vision-canonicalize | filecheck %s

// ConvNeXt's channels-first LayerNorm: permute to NHWC, normalize the last dim, permute back
// is one layer_norm over the NCHW channels; the (C,) parameters become (1, C, 1, 1) views.
// CHECK-LABEL: func.func @channels_first
// CHECK-NEXT:    %[[S:.*]] = vision.weight @s : tensor<8xf32>
// CHECK-NEXT:    %[[B:.*]] = vision.weight @b : tensor<8xf32>
// CHECK-NEXT:    %[[S4:.*]] = vision.reshape ins(%[[S]] : tensor<8xf32>) {{.*}} -> tensor<1x8x1x1xf32>
// CHECK-NEXT:    %[[B4:.*]] = vision.reshape ins(%[[B]] : tensor<8xf32>) {{.*}} -> tensor<1x8x1x1xf32>
// CHECK-NEXT:    %[[Y:.*]] = vision.layer_norm ins(%x, %[[S4]], %[[B4]] : tensor<1x8x5x5xf32>, tensor<1x8x1x1xf32>, tensor<1x8x1x1xf32>) {axes = array<i64: 1>, epsilon = 1.000000e-06 : f32, onnx_node = "p1+ln+p2", onnx_op = "Transpose+LayerNormalization"} -> tensor<1x8x5x5xf32>
// CHECK-NEXT:    func.return %[[Y]] : tensor<1x8x5x5xf32>
func.func @channels_first(%x: tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32> {
  %s = vision.weight @s : tensor<8xf32>
  %b = vision.weight @b : tensor<8xf32>
  %t = vision.transpose ins(%x : tensor<1x8x5x5xf32>) {onnx_node = "p1", onnx_op = "Transpose", perm = array<i64: 0, 2, 3, 1>} -> tensor<1x5x5x8xf32>
  %n = vision.layer_norm ins(%t, %s, %b : tensor<1x5x5x8xf32>, tensor<8xf32>, tensor<8xf32>) {axes = array<i64: 3>, epsilon = 1.0e-06 : f32, onnx_node = "ln", onnx_op = "LayerNormalization"} -> tensor<1x5x5x8xf32>
  %y = vision.transpose ins(%n : tensor<1x5x5x8xf32>) {onnx_node = "p2", onnx_op = "Transpose", perm = array<i64: 0, 3, 1, 2>} -> tensor<1x8x5x5xf32>
  func.return %y : tensor<1x8x5x5xf32>
}

// The normalized dims map back through the permutation (two of them here); a parameter
// whose dims change order is transposed too.
// CHECK-LABEL: func.func @two_axes
// CHECK-NEXT:    %[[S:.*]] = vision.weight @s : tensor<4x2xf32>
// CHECK-NEXT:    %[[S3:.*]] = vision.reshape ins(%[[S]] : tensor<4x2xf32>) -> tensor<1x4x2xf32>
// CHECK-NEXT:    %[[ST:.*]] = vision.transpose ins(%[[S3]] : tensor<1x4x2xf32>) {perm = array<i64: 2, 0, 1>} -> tensor<2x1x4xf32>
// CHECK-NEXT:    %[[Y:.*]] = vision.layer_norm ins(%x, %[[ST]] : tensor<2x3x4xf32>, tensor<2x1x4xf32>) {axes = array<i64: 0, 2>, epsilon = 1.000000e-05 : f32} -> tensor<2x3x4xf32>
// CHECK-NEXT:    func.return %[[Y]]
func.func @two_axes(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %s = vision.weight @s : tensor<4x2xf32>
  %t = vision.transpose ins(%x : tensor<2x3x4xf32>) {perm = array<i64: 1, 2, 0>} -> tensor<3x4x2xf32>
  %n = vision.layer_norm ins(%t, %s : tensor<3x4x2xf32>, tensor<4x2xf32>) {axes = array<i64: 1, 2>, epsilon = 1.0e-05 : f32} -> tensor<3x4x2xf32>
  %y = vision.transpose ins(%n : tensor<3x4x2xf32>) {perm = array<i64: 2, 0, 1>} -> tensor<2x3x4xf32>
  func.return %y : tensor<2x3x4xf32>
}

// Nothing changes when the first transpose has another user, the statistics are used, or
// the second transpose does not undo the first.
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-3: vision.transpose ins(%x
// CHECK-NOT:     vision.reshape
// CHECK:         func.return
func.func @kept(%x: tensor<1x8x5x5xf32>) -> (tensor<1x8x5x5xf32>, tensor<1x5x5x8xf32>, tensor<1x8x5x5xf32>, tensor<1x5x5x1xf32>, tensor<1x5x8x5xf32>) {
  %s = vision.weight @s : tensor<8xf32>
  %t = vision.transpose ins(%x : tensor<1x8x5x5xf32>) {perm = array<i64: 0, 2, 3, 1>} -> tensor<1x5x5x8xf32>
  %n = vision.layer_norm ins(%t, %s : tensor<1x5x5x8xf32>, tensor<8xf32>) {axes = array<i64: 3>, epsilon = 1.0e-06 : f32} -> tensor<1x5x5x8xf32>
  %y = vision.transpose ins(%n : tensor<1x5x5x8xf32>) {perm = array<i64: 0, 3, 1, 2>} -> tensor<1x8x5x5xf32>
  %t2 = vision.transpose ins(%x : tensor<1x8x5x5xf32>) {perm = array<i64: 0, 2, 3, 1>} -> tensor<1x5x5x8xf32>
  %n2, %m2, %i2 = vision.layer_norm ins(%t2, %s : tensor<1x5x5x8xf32>, tensor<8xf32>) {axes = array<i64: 3>, epsilon = 1.0e-06 : f32} -> tensor<1x5x5x8xf32>, tensor<1x5x5x1xf32>, tensor<1x5x5x1xf32>
  %y2 = vision.transpose ins(%n2 : tensor<1x5x5x8xf32>) {perm = array<i64: 0, 3, 1, 2>} -> tensor<1x8x5x5xf32>
  %t3 = vision.transpose ins(%x : tensor<1x8x5x5xf32>) {perm = array<i64: 0, 2, 3, 1>} -> tensor<1x5x5x8xf32>
  %n3 = vision.layer_norm ins(%t3, %s : tensor<1x5x5x8xf32>, tensor<8xf32>) {axes = array<i64: 3>, epsilon = 1.0e-06 : f32} -> tensor<1x5x5x8xf32>
  %y3 = vision.transpose ins(%n3 : tensor<1x5x5x8xf32>) {perm = array<i64: 0, 1, 3, 2>} -> tensor<1x5x8x5xf32>
  func.return %y, %t, %y2, %m2, %y3 : tensor<1x8x5x5xf32>, tensor<1x5x5x8xf32>, tensor<1x8x5x5xf32>, tensor<1x5x5x1xf32>, tensor<1x5x8x5xf32>
}
