// RUN: visc-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Verifiers reject malformed ops with a message that names the ONNX node.

func.func @bad_conv(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %w = vision.weight @w : tensor<4x3x3x3xf32>
  %y = vision.conv2d ins(%x, %w : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv7"} -> tensor<1x4x8x8xf32>
  func.return %y : tensor<1x4x8x8xf32>
}
// CHECK: vision.conv2d (ONNX node 'conv7'): spatial dim 0: output 8, expected 6

// -----

func.func @bad_map(%x: tensor<2x3xf32>) -> tensor<2x4xf32> {
  %y = vision.map ins(%x : tensor<2x3xf32>) body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  } -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}
// CHECK: vision.map: input shape (2, 3) does not broadcast to (2, 4)

// -----

func.func @both(%x: memref<2xf32>, %o: memref<2xf32>) {
  %y = vision.map ins(%x : memref<2xf32>) outs(%o : memref<2xf32>) body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  } -> memref<2xf32>
  func.return
}
// CHECK: vision.map: needs either results (tensors) or outs (memrefs), not both

// -----

func.func @concat(%x: tensor<1x2xf32>) -> tensor<1x5xf32> {
  %y = vision.concat ins(%x, %x : tensor<1x2xf32>, tensor<1x2xf32>) {axis = 1 : i64} -> tensor<1x5xf32>
  func.return %y : tensor<1x5xf32>
}
// CHECK: vision.concat: sizes along axis 1 add to 4, output has 5

// -----

func.func @status_type() {
  %s = "vision.status"() <{message = "index out of range"}> : () -> memref<4xi64>
  func.return
}
// CHECK: the status word is a memref<2xi64>

// -----

func.func @scatter_reduction(%x: tensor<4x3xf32>, %r: tensor<2x1xi64>, %u: tensor<2x3xf32>) {
  %s = vision.scatter_nd ins(%x, %r, %u : tensor<4x3xf32>, tensor<2x1xi64>, tensor<2x3xf32>) {reduction = "avg", onnx_node = "sc"} -> tensor<4x3xf32>
  func.return
}
// CHECK: vision.scatter_nd (ONNX node 'sc'): reduction must be one of ('none', 'add', 'mul', 'max', 'min')

// -----

func.func @gather_nd_shape(%x: tensor<4x3xf32>, %t: tensor<5x2xi64>) {
  %n = vision.gather_nd ins(%x, %t : tensor<4x3xf32>, tensor<5x2xi64>) {batch_dims = 0 : i64} -> tensor<5x3xf32>
  func.return
}
// CHECK: vision.gather_nd: output shape (5, 3), expected (5,)
