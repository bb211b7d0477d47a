// RUN: python -c "import numpy as np; np.savez('%t.npz', a=np.ones(3, np.float32))"
// RUN: not visc-opt %s --weights %t.npz -p vision-const-eval 2>&1 | filecheck %s

// A weight the store does not have is reported with the node that needs it.
// CHECK: error: weight 'missing' used by ONNX node 'neg' is not in the weight store
func.func @main() -> tensor<3xf32> {
  %a = vision.weight @missing : tensor<3xf32>
  %n = vision.map ins(%a : tensor<3xf32>) {onnx_node = "neg"} body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<3xf32>
  func.return %n : tensor<3xf32>
}
