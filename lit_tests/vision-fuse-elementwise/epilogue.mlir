// RUN: visc-opt %s -p vision-fuse-elementwise | filecheck %s

// ResNet's block end: conv + residual add + relu is one conv2d with an epilogue. The
// residual is computed after the conv in program order, so the conv moves down to it.
// CHECK-LABEL: func.func @residual
// CHECK-NEXT:    %w = vision.weight @w
// CHECK-NEXT:    %[[SK:.*]] = vision.pool2d
// CHECK-NEXT:    %[[Y:.*]] = vision.conv2d ins(%x, %w : tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) fuse(%[[SK]] : tensor<1x4x4x4xf32>) {{{.*}}onnx_node = "conv+add+relu", onnx_op = "Conv+Add+Relu"} body {
// CHECK-NEXT:    ^{{.*}}(%[[ACC:.*]]: f32, %[[S:.*]]: f32):
// CHECK-NEXT:      %[[A:.*]] = arith.addf %[[ACC]], %[[S]] : f32
// CHECK-NEXT:      %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[R:.*]] = arith.maximumf %[[A]], %[[Z]] : f32
// CHECK-NEXT:      vision.yield %[[R]] : f32
// CHECK-NEXT:    } -> tensor<1x4x4x4xf32>
// CHECK-NEXT:    func.return %[[Y]]
func.func @residual(%x: tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %w = vision.weight @w : tensor<4x4x1x1xf32>
  %y = vision.conv2d ins(%x, %w : tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv", onnx_op = "Conv"} -> tensor<1x4x4x4xf32>
  %sk = vision.pool2d ins(%x : tensor<1x4x4x4xf32>) {kind = "max", kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64} -> tensor<1x4x4x4xf32>
  %a = vision.map ins(%y, %sk : tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) {onnx_node = "add", onnx_op = "Add"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<1x4x4x4xf32>
  %r = vision.map ins(%a : tensor<1x4x4x4xf32>) {onnx_node = "relu", onnx_op = "Relu"} body {
  ^bb0(%p: f32):
    %z = arith.constant 0.0 : f32
    %s = arith.maximumf %p, %z : f32
    vision.yield %s : f32
  } -> tensor<1x4x4x4xf32>
  func.return %r : tensor<1x4x4x4xf32>
}

// A per-channel add after a body-less conv becomes its bias (added to the old one).
// CHECK-LABEL: func.func @bias
// CHECK:         %[[V:.*]] = vision.reshape ins(%v : tensor<1x4x1x1xf32>){{.*}} -> tensor<4xf32>
// CHECK-NEXT:    %[[B:.*]] = vision.map ins(%b, %[[V]] : tensor<4xf32>, tensor<4xf32>)
// CHECK:         %{{.*}} = vision.conv2d ins(%x, %w, %[[B]] : tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) {{{.*}}onnx_node = "conv+badd"
// CHECK-NOT:     body
func.func @bias(%x: tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %w = vision.weight @w : tensor<4x4x1x1xf32>
  %b = vision.weight @b : tensor<4xf32>
  %v = vision.weight @v : tensor<1x4x1x1xf32>
  %y = vision.conv2d ins(%x, %w, %b : tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv"} -> tensor<1x4x4x4xf32>
  %a = vision.map ins(%v, %y : tensor<1x4x1x1xf32>, tensor<1x4x4x4xf32>) {onnx_node = "badd"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<1x4x4x4xf32>
  func.return %a : tensor<1x4x4x4xf32>
}

// matmul + add of a row vector + relu: the vector becomes c, the relu an epilogue.
// CHECK-LABEL: func.func @gemm
// CHECK-NEXT:    %w = vision.weight
// CHECK-NEXT:    %c = vision.weight
// CHECK-NEXT:    %{{.*}} = vision.matmul ins(%x, %w, %c : tensor<2x5xf32>, tensor<5x3xf32>, tensor<3xf32>) {{{.*}}beta = 1.000000e+00 : f32{{.*}}} body {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32):
func.func @gemm(%x: tensor<2x5xf32>) -> tensor<2x3xf32> {
  %w = vision.weight @w : tensor<5x3xf32>
  %c = vision.weight @c : tensor<3xf32>
  %y = vision.matmul ins(%x, %w : tensor<2x5xf32>, tensor<5x3xf32>) {onnx_node = "fc"} -> tensor<2x3xf32>
  %a = vision.map ins(%y, %c : tensor<2x3xf32>, tensor<3xf32>) {onnx_node = "add"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  %r = vision.map ins(%a : tensor<2x3xf32>) {onnx_node = "relu"} body {
  ^bb0(%p: f32):
    %z = arith.constant 0.0 : f32
    %s = arith.maximumf %p, %z : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  func.return %r : tensor<2x3xf32>
}

// Not fused: a conv whose result is also returned, and a map that broadcasts the conv
// result to a larger shape.
// CHECK-LABEL: func.func @kept
// CHECK:         %[[Y:.*]] = vision.conv2d ins(%x, %w : {{.*}}) {{{.*}}} -> tensor<1x2x1x1xf32>
// CHECK-NEXT:    vision.map ins(%[[Y]] : tensor<1x2x1x1xf32>)
// CHECK:         } -> tensor<1x2x1x1xf32>
// CHECK:         %[[Z:.*]] = vision.conv2d ins(%x, %w : {{.*}}) {{{.*}}} -> tensor<1x2x1x1xf32>
// CHECK-NEXT:    vision.map ins(%[[Z]] : tensor<1x2x1x1xf32>)
// CHECK:         } -> tensor<1x2x3x3xf32>
func.func @kept(%x: tensor<1x2x1x1xf32>) -> (tensor<1x2x1x1xf32>, tensor<1x2x1x1xf32>, tensor<1x2x3x3xf32>) {
  %w = vision.weight @w : tensor<2x2x1x1xf32>
  %y = vision.conv2d ins(%x, %w : tensor<1x2x1x1xf32>, tensor<2x2x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} -> tensor<1x2x1x1xf32>
  %n = vision.map ins(%y : tensor<1x2x1x1xf32>) body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x2x1x1xf32>
  %z = vision.conv2d ins(%x, %w : tensor<1x2x1x1xf32>, tensor<2x2x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} -> tensor<1x2x1x1xf32>
  %b = vision.map ins(%z : tensor<1x2x1x1xf32>) body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x2x3x3xf32>
  func.return %n, %y, %b : tensor<1x2x1x1xf32>, tensor<1x2x1x1xf32>, tensor<1x2x3x3xf32>
}
