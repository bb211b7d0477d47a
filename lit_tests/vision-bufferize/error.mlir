// RUN: not visc-opt %s -p vision-bufferize 2>&1 | filecheck %s
// RUN: not visc-opt %s -p 'vision-bufferize{align=0}' 2>&1 | filecheck %s --check-prefix=ALIGN

// Only vision ops may produce tensors in the entry function.
// CHECK: error: {{.*}}cannot bufferize arith.constant
// ALIGN: error: {{.*}}align must be positive, got 0
func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
  %c = arith.constant dense<1.0> : tensor<2xf32>
  %m = vision.map ins(%x, %c : tensor<2xf32>, tensor<2xf32>) {onnx_node = "add"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<2xf32>
  func.return %m : tensor<2xf32>
}
