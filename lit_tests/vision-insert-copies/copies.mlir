// RUN: visc-opt %s -p vision-insert-copies | filecheck %s
// RUN: not visc-opt %S/Inputs/untagged.mlir -p vision-insert-copies 2>&1 | filecheck %s --check-prefix=ERR

// A GPU value read by two CPU ops is copied once (at its first CPU reader).

func.func @main(%x: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %a = vision.map ins(%x : tensor<8xf32>) {onnx_node = "neg", placement = "gpu"} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<8xf32>
  %b = vision.map ins(%a, %x : tensor<8xf32>, tensor<8xf32>) {onnx_node = "add", placement = "cpu"} body {
  ^bb0(%e: f32, %f: f32):
    %n = arith.addf %e, %f : f32
    vision.yield %n : f32
  } -> tensor<8xf32>
  %c = vision.map ins(%a : tensor<8xf32>) {onnx_node = "abs", placement = "cpu"} body {
  ^bb0(%e: f32):
    %n = math.absf %e : f32
    vision.yield %n : f32
  } -> tensor<8xf32>
  func.return %b, %c : tensor<8xf32>, tensor<8xf32>
}

// CHECK:      func.func @main
// CHECK-SAME: vision.num_copies = 1 : i64
// CHECK:      {onnx_node = "neg", placement = "gpu"} body
// CHECK:      onnx_node = "add", placement = "cpu", copy_in = array<i64: 0>
// CHECK-NOT:  copy_in
// CHECK:      func.return
// ERR: vision-insert-copies: vision.map (ONNX node "neg") has no placement (run vision-placement first)
