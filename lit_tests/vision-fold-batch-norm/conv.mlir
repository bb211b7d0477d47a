// RUN: visc-opt %s -p vision-fold-batch-norm | filecheck %s

// conv2d + batch_norm: the weight is scaled per output channel, the shift becomes the bias.
// CHECK-LABEL: func.func @conv_bn
// CHECK:         %[[S:.*]] = vision.map ins(%g, %v : tensor<4xf32>, tensor<4xf32>) {onnx_node = "bn", onnx_op = "BatchNormalization"} body {
// CHECK-NEXT:    ^{{.*}}(%[[G:.*]]: f32, %[[V:.*]]: f32):
// CHECK-NEXT:      %[[E:.*]] = arith.constant 1.000000e-03 : f32
// CHECK-NEXT:      %[[VE:.*]] = arith.addf %[[V]], %[[E]] : f32
// CHECK-NEXT:      %[[R:.*]] = math.sqrt %[[VE]] : f32
// CHECK-NEXT:      %[[Q:.*]] = arith.divf %[[G]], %[[R]] : f32
// CHECK-NEXT:      vision.yield %[[Q]] : f32
// CHECK-NEXT:    } -> tensor<4xf32>
// CHECK-NEXT:    %[[S4:.*]] = vision.reshape ins(%[[S]] : tensor<4xf32>) {{.*}} -> tensor<4x1x1x1xf32>
// CHECK-NEXT:    %[[W2:.*]] = vision.map ins(%w, %[[S4]] : tensor<4x3x3x3xf32>, tensor<4x1x1x1xf32>)
// CHECK:           arith.mulf
// CHECK:         } -> tensor<4x3x3x3xf32>
// CHECK-NEXT:    %[[B2:.*]] = vision.map ins(%b, %m, %[[S]], %beta : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
// CHECK-NEXT:    ^{{.*}}(%[[B:.*]]: f32, %[[M:.*]]: f32, %[[SS:.*]]: f32, %[[BT:.*]]: f32):
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[B]], %[[M]] : f32
// CHECK-NEXT:      %[[P:.*]] = arith.mulf %[[D]], %[[SS]] : f32
// CHECK-NEXT:      %[[O:.*]] = arith.addf %[[P]], %[[BT]] : f32
// CHECK-NEXT:      vision.yield %[[O]] : f32
// CHECK-NEXT:    } -> tensor<4xf32>
// CHECK-NEXT:    %{{.*}} = vision.conv2d ins(%x, %[[W2]], %[[B2]] : {{.*}}) {{{.*}}onnx_node = "conv+bn", onnx_op = "Conv+BatchNormalization"} -> tensor<1x4x6x6xf32>
// CHECK-NOT:     vision.batch_norm
func.func @conv_bn(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x6x6xf32> {
  %w = vision.weight @w : tensor<4x3x3x3xf32>
  %b = vision.weight @b : tensor<4xf32>
  %g = vision.weight @g : tensor<4xf32>
  %beta = vision.weight @beta : tensor<4xf32>
  %m = vision.weight @m : tensor<4xf32>
  %v = vision.weight @v : tensor<4xf32>
  %y = vision.conv2d ins(%x, %w, %b : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv", onnx_op = "Conv"} -> tensor<1x4x6x6xf32>
  %n = vision.batch_norm ins(%y, %g, %beta, %m, %v : tensor<1x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {epsilon = 1.0e-03 : f64, onnx_node = "bn", onnx_op = "BatchNormalization"} -> tensor<1x4x6x6xf32>
  func.return %n : tensor<1x4x6x6xf32>
}

// Without a conv bias the shift is beta - mean * s.
// CHECK-LABEL: func.func @no_bias
// CHECK:         vision.map ins(%m, %{{.*}}, %beta : tensor<2xf32>, tensor<2xf32>, tensor<2xf32>)
// CHECK-NEXT:    ^{{.*}}(%[[M:.*]]: f32, %[[S:.*]]: f32, %[[BT:.*]]: f32):
// CHECK-NEXT:      %[[P:.*]] = arith.mulf %[[M]], %[[S]] : f32
// CHECK-NEXT:      %[[O:.*]] = arith.subf %[[BT]], %[[P]] : f32
// CHECK:         vision.conv2d ins(%x, %{{.*}}, %{{.*}} : tensor<1x2x4x4xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>)
func.func @no_bias(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = vision.weight @w : tensor<2x1x1x1xf32>
  %g = vision.weight @g : tensor<2xf32>
  %beta = vision.weight @beta : tensor<2xf32>
  %m = vision.weight @m : tensor<2xf32>
  %v = vision.weight @v : tensor<2xf32>
  %y = vision.conv2d ins(%x, %w : tensor<1x2x4x4xf32>, tensor<2x1x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 2 : i64} -> tensor<1x2x4x4xf32>
  %n = vision.batch_norm ins(%y, %g, %beta, %m, %v : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {epsilon = 1.0e-05 : f64} -> tensor<1x2x4x4xf32>
  func.return %n : tensor<1x2x4x4xf32>
}

// A conv whose result has another use keeps its value: the batch_norm becomes x * a + c.
// CHECK-LABEL: func.func @shared_conv
// CHECK:         %[[Y:.*]] = vision.conv2d ins(%x, %w
// CHECK:         %[[A:.*]] = vision.reshape ins(%{{.*}} : tensor<2xf32>) {{.*}} -> tensor<2x1x1xf32>
// CHECK-NEXT:    %[[C:.*]] = vision.reshape ins(%{{.*}} : tensor<2xf32>) {{.*}} -> tensor<2x1x1xf32>
// CHECK-NEXT:    %[[N:.*]] = vision.map ins(%[[Y]], %[[A]], %[[C]] : tensor<1x2x4x4xf32>, tensor<2x1x1xf32>, tensor<2x1x1xf32>) {onnx_node = "bn2"} body {
// CHECK-NEXT:    ^{{.*}}(%[[X:.*]]: f32, %[[AA:.*]]: f32, %[[CC:.*]]: f32):
// CHECK-NEXT:      %[[P:.*]] = arith.mulf %[[X]], %[[AA]] : f32
// CHECK-NEXT:      %[[O:.*]] = arith.addf %[[P]], %[[CC]] : f32
// CHECK-NEXT:      vision.yield %[[O]] : f32
// CHECK:         func.return %[[N]], %[[Y]]
func.func @shared_conv(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = vision.weight @w : tensor<2x2x1x1xf32>
  %g = vision.weight @g : tensor<2xf32>
  %y = vision.conv2d ins(%x, %w : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} -> tensor<1x2x4x4xf32>
  %n = vision.batch_norm ins(%y, %g, %g, %g, %g : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {epsilon = 1.0e-05 : f64, onnx_node = "bn2"} -> tensor<1x2x4x4xf32>
  func.return %n, %y : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// A weight computed from weights (here a reshape) still folds; a weight that is a graph
// input does not (the batch_norm becomes a map instead).
// CHECK-LABEL: func.func @derived_weight
// CHECK:         vision.conv2d ins(%x, %{{.*}}, %{{.*}} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) {{{.*}}onnx_node = "c+b"
// CHECK-NOT:     vision.batch_norm
// CHECK-LABEL: func.func @input_weight
// CHECK:         %[[Y:.*]] = vision.conv2d ins(%x, %w : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>)
// CHECK:         vision.map ins(%[[Y]], %{{.*}}, %{{.*}} : tensor<1x2x4x4xf32>, tensor<2x1x1xf32>, tensor<2x1x1xf32>)
func.func @derived_weight(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w0 = vision.weight @w : tensor<4xf32>
  %w = vision.reshape ins(%w0 : tensor<4xf32>) -> tensor<2x2x1x1xf32>
  %g = vision.weight @g : tensor<2xf32>
  %y = vision.conv2d ins(%x, %w : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "c"} -> tensor<1x2x4x4xf32>
  %n = vision.batch_norm ins(%y, %g, %g, %g, %g : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {epsilon = 1.0e-05 : f64, onnx_node = "b"} -> tensor<1x2x4x4xf32>
  func.return %n : tensor<1x2x4x4xf32>
}
func.func @input_weight(%x: tensor<1x2x4x4xf32>, %w: tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32> {
  %g = vision.weight @g : tensor<2xf32>
  %y = vision.conv2d ins(%x, %w : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} -> tensor<1x2x4x4xf32>
  %n = vision.batch_norm ins(%y, %g, %g, %g, %g : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {epsilon = 1.0e-05 : f64} -> tensor<1x2x4x4xf32>
  func.return %n : tensor<1x2x4x4xf32>
}
