// RUN: visc-opt %s -p vision-fold-batch-norm | filecheck %s

// matmul (2-D, transposed b) + batch_norm over the features: b's rows are scaled and the
// shift folds into c, with beta reset to 1.
// CHECK-LABEL: func.func @gemm_bn
// CHECK:         %[[S:.*]] = vision.map ins(%g, %v : tensor<3xf32>, tensor<3xf32>)
// CHECK:         %[[S2:.*]] = vision.reshape ins(%[[S]] : tensor<3xf32>) {{.*}} -> tensor<3x1xf32>
// CHECK-NEXT:    %[[B:.*]] = vision.map ins(%w, %[[S2]] : tensor<3x5xf32>, tensor<3x1xf32>)
// CHECK:         %[[C:.*]] = vision.map ins(%c, %m, %[[S]], %beta : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>)
// CHECK-NEXT:    ^{{.*}}(%[[CC:.*]]: f32, %[[M:.*]]: f32, %{{.*}}: f32, %{{.*}}: f32):
// CHECK-NEXT:      %[[K:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-NEXT:      %{{.*}} = arith.mulf %[[CC]], %[[K]] : f32
// CHECK:         vision.matmul ins(%x, %[[B]], %[[C]] : tensor<2x5xf32>, tensor<3x5xf32>, tensor<3xf32>) {{{.*}}beta = 1.000000e+00 : f32{{.*}}onnx_node = "fc+bn"
func.func @gemm_bn(%x: tensor<2x5xf32>) -> tensor<2x3xf32> {
  %w = vision.weight @w : tensor<3x5xf32>
  %c = vision.weight @c : tensor<3xf32>
  %g = vision.weight @g : tensor<3xf32>
  %beta = vision.weight @beta : tensor<3xf32>
  %m = vision.weight @m : tensor<3xf32>
  %v = vision.weight @v : tensor<3xf32>
  %y = vision.matmul ins(%x, %w, %c : tensor<2x5xf32>, tensor<3x5xf32>, tensor<3xf32>) {transpose_b = 1 : i64, alpha = 2.0 : f32, beta = 0.5 : f32, onnx_node = "fc"} -> tensor<2x3xf32>
  %n = vision.batch_norm ins(%y, %g, %beta, %m, %v : tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) {epsilon = 1.0e-05 : f64, onnx_node = "bn"} -> tensor<2x3xf32>
  func.return %n : tensor<2x3xf32>
}

// A 3-D matmul output normalizes dim 1, which is not the feature dim: not folded.
// CHECK-LABEL: func.func @batched
// CHECK:         vision.matmul ins(%x, %w : tensor<2x4x5xf32>, tensor<5x3xf32>)
// CHECK:         vision.map ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<2x4x3xf32>, tensor<4x1xf32>, tensor<4x1xf32>)
func.func @batched(%x: tensor<2x4x5xf32>) -> tensor<2x4x3xf32> {
  %w = vision.weight @w : tensor<5x3xf32>
  %g = vision.weight @g : tensor<4xf32>
  %y = vision.matmul ins(%x, %w : tensor<2x4x5xf32>, tensor<5x3xf32>) -> tensor<2x4x3xf32>
  %n = vision.batch_norm ins(%y, %g, %g, %g, %g : tensor<2x4x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {epsilon = 1.0e-05 : f64} -> tensor<2x4x3xf32>
  func.return %n : tensor<2x4x3xf32>
}

// conv2d_transpose with groups: the weight (C, O/g, kh, kw) is scaled through a 5-D view.
// CHECK-LABEL: func.func @deconv_groups
// CHECK:         %[[W5:.*]] = vision.reshape ins(%w : tensor<4x3x2x2xf32>){{.*}} -> tensor<2x2x3x2x2xf32>
// CHECK:         vision.reshape ins(%{{.*}} : tensor<6xf32>){{.*}} -> tensor<2x1x3x1x1xf32>
// CHECK:         %[[M:.*]] = vision.map ins(%[[W5]], %{{.*}} : tensor<2x2x3x2x2xf32>, tensor<2x1x3x1x1xf32>)
// CHECK:         %[[W:.*]] = vision.reshape ins(%[[M]] : tensor<2x2x3x2x2xf32>){{.*}} -> tensor<4x3x2x2xf32>
// CHECK:         vision.conv2d_transpose ins(%x, %[[W]], %{{.*}} : tensor<1x4x3x3xf32>, tensor<4x3x2x2xf32>, tensor<6xf32>)
func.func @deconv_groups(%x: tensor<1x4x3x3xf32>) -> tensor<1x6x6x6xf32> {
  %w = vision.weight @w : tensor<4x3x2x2xf32>
  %g = vision.weight @g : tensor<6xf32>
  %y = vision.conv2d_transpose ins(%x, %w : tensor<1x4x3x3xf32>, tensor<4x3x2x2xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 2 : i64, output_padding = array<i64: 0, 0>} -> tensor<1x6x6x6xf32>
  %n = vision.batch_norm ins(%y, %g, %g, %g, %g : tensor<1x6x6x6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>) {epsilon = 1.0e-05 : f64} -> tensor<1x6x6x6xf32>
  func.return %n : tensor<1x6x6x6xf32>
}
