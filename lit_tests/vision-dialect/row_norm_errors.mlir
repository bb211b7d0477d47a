// RUN: visc-opt %s --split-input-file --verify-diagnostics | filecheck %s
// The verifiers of the row normalizations name the ONNX node.

func.func @axes_order(%x: tensor<2x3x4xf32>, %s: tensor<4xf32>) -> tensor<2x3x4xf32> {
  %y = vision.layer_norm ins(%x, %s : tensor<2x3x4xf32>, tensor<4xf32>) {axes = array<i64: 2, 1>, epsilon = 1.0e-05 : f32, onnx_node = "ln1"} -> tensor<2x3x4xf32>
  func.return %y : tensor<2x3x4xf32>
}
// CHECK: vision.layer_norm (ONNX node 'ln1'): axes [2, 1] must be sorted, distinct and within rank 3

// -----

func.func @scale_shape(%x: tensor<2x3x4xf32>, %s: tensor<3xf32>) -> tensor<2x3x4xf32> {
  %y = vision.layer_norm ins(%x, %s : tensor<2x3x4xf32>, tensor<3xf32>) {axes = array<i64: 2>, epsilon = 1.0e-05 : f32, onnx_node = "ln2"} -> tensor<2x3x4xf32>
  func.return %y : tensor<2x3x4xf32>
}
// CHECK: vision.layer_norm (ONNX node 'ln2'): scale/bias shape (3,) does not broadcast to the input (2, 3, 4)

// -----

func.func @stats_shape(%x: tensor<2x3x4xf32>, %s: tensor<4xf32>) -> tensor<2x3x4xf32> {
  %y, %m, %i = vision.layer_norm ins(%x, %s : tensor<2x3x4xf32>, tensor<4xf32>) {axes = array<i64: 2>, epsilon = 1.0e-05 : f32, onnx_node = "ln3"} -> tensor<2x3x4xf32>, tensor<2x3xf32>, tensor<2x3xf32>
  func.return %y : tensor<2x3x4xf32>
}
// CHECK: vision.layer_norm (ONNX node 'ln3'): mean and inv_std_dev must have shape (2, 3, 1), got (2, 3)

// -----

func.func @integers(%x: tensor<2x4xi32>, %s: tensor<4xi32>) -> tensor<2x4xi32> {
  %y = vision.layer_norm ins(%x, %s : tensor<2x4xi32>, tensor<4xi32>) {axes = array<i64: 1>, epsilon = 1.0e-05 : f32, onnx_node = "ln4"} -> tensor<2x4xi32>
  func.return %y : tensor<2x4xi32>
}
// CHECK: vision.layer_norm (ONNX node 'ln4'): operands must be floating point

// -----

func.func @groups(%x: tensor<1x6x4xf32>, %c: tensor<6xf32>) -> tensor<1x6x4xf32> {
  %y = vision.group_norm ins(%x, %c, %c : tensor<1x6x4xf32>, tensor<6xf32>, tensor<6xf32>) {groups = 4 : i64, epsilon = 1.0e-05 : f32, onnx_node = "gn1"} -> tensor<1x6x4xf32>
  func.return %y : tensor<1x6x4xf32>
}
// CHECK: vision.group_norm (ONNX node 'gn1'): 6 channels do not split into 4 groups

// -----

func.func @channels(%x: tensor<1x6x4xf32>, %c: tensor<3xf32>) -> tensor<1x6x4xf32> {
  %y = vision.group_norm ins(%x, %c, %c : tensor<1x6x4xf32>, tensor<3xf32>, tensor<3xf32>) {groups = 3 : i64, epsilon = 1.0e-05 : f32, onnx_node = "gn2"} -> tensor<1x6x4xf32>
  func.return %y : tensor<1x6x4xf32>
}
// CHECK: vision.group_norm (ONNX node 'gn2'): scale and bias must have shape (6,), got (3,)
