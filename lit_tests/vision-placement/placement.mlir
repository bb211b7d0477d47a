// RUN: visc-opt %s -p 'vision-placement{fallback=TopK}' | filecheck %s
// RUN: visc-opt %s -p 'vision-placement{fallback=TopK tiny=0}' | filecheck %s --check-prefix=NOCOST
// RUN: not visc-opt %s -p 'vision-placement{target=metal}' 2>&1 | filecheck %s --check-prefix=ERR

// The user's TopK goes to the CPU; the tiny map between it and the CPU-side map follows
// (the cost rule), unless `tiny` is 0.

func.func @main(%x: tensor<1x64xf32>) -> tensor<1x4xf32> {
  %v, %i = vision.topk ins(%x : tensor<1x64xf32>) {axis = 1 : i64, k = 4 : i64, largest = true, sorted = true, onnx_node = "topk", onnx_op = "TopK"} -> tensor<1x4xf32>, tensor<1x4xi64>
  %a = vision.map ins(%v : tensor<1x4xf32>) {onnx_node = "neg", onnx_op = "Neg"} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<1x4xf32>
  %b, %j = vision.topk ins(%a : tensor<1x4xf32>) {axis = 1 : i64, k = 4 : i64, largest = true, sorted = true, onnx_node = "topk2", onnx_op = "TopK"} -> tensor<1x4xf32>, tensor<1x4xi64>
  func.return %b : tensor<1x4xf32>
}

// CHECK:   vision.topk {{.*}}placement = "cpu"
// CHECK:   vision.map {{.*}}placement = "cpu"
// CHECK:   vision.topk {{.*}}placement = "cpu"
// NOCOST:  vision.topk {{.*}}placement = "cpu"
// NOCOST:  vision.map {{.*}}placement = "gpu"
// ERR:     unknown GPU target 'metal'
