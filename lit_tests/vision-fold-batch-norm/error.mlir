// RUN: not visc-opt %s -p vision-fold-batch-norm 2>&1 | filecheck %s

// A batch_norm on integers cannot be rewritten: the error names the ONNX node.
// CHECK: error: {{.*}}BatchNormalization node 'bad_bn': operands must be floating point
func.func @ints(%x: tensor<1x2x3xi32>) -> tensor<1x2x3xi32> {
  %g = vision.weight @g : tensor<2xi32>
  %n = vision.batch_norm ins(%x, %g, %g, %g, %g : tensor<1x2x3xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xi32>) {epsilon = 1.0e-05 : f64, onnx_node = "bad_bn"} -> tensor<1x2x3xi32>
  func.return %n : tensor<1x2x3xi32>
}
