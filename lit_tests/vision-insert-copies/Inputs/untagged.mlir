func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {
  %a = vision.map ins(%x : tensor<8xf32>) {onnx_node = "neg"} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<8xf32>
  func.return %a : tensor<8xf32>
}
