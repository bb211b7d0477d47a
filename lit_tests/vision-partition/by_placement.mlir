// RUN: visc-opt %s -p 'vision-partition{by_placement=true target=cuda}' | filecheck %s

// A stage per run of equal placement tags: gpu, cpu (the TopK and the map of its indices),
// gpu again; a gpu stage runs on `target`. Stage 1 sends two edges to stage 2.

func.func @main(%x: tensor<1x64xf32>) -> tensor<1x4xf32> attributes {vision.input_names = ["x"], vision.output_names = ["y"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
  %a = vision.map ins(%x : tensor<1x64xf32>) {onnx_node = "neg", placement = "gpu"} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<1x64xf32>
  %v, %i = vision.topk ins(%a : tensor<1x64xf32>) {axis = 1 : i64, k = 4 : i64, largest = true, sorted = true, onnx_node = "topk", onnx_op = "TopK", placement = "cpu"} -> tensor<1x4xf32>, tensor<1x4xi64>
  %f = vision.map ins(%i : tensor<1x4xi64>) {onnx_node = "cast", placement = "cpu"} body {
  ^bb0(%e: i64):
    %c = arith.sitofp %e : i64 to f32
    vision.yield %c : f32
  } -> tensor<1x4xf32>
  %y = vision.map ins(%v, %f : tensor<1x4xf32>, tensor<1x4xf32>) {onnx_node = "add", placement = "gpu"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<1x4xf32>
  func.return %y : tensor<1x4xf32>
}

// CHECK: func.func @stage0(%x: tensor<1x64xf32>) -> tensor<1x64xf32> attributes {vision.stage = 0 : i64, vision.device = "cuda", vision.input_names = ["x"], vision.output_names = ["neg:0"]
// CHECK: func.func @stage1(%a: tensor<1x64xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>) attributes {vision.stage = 1 : i64, vision.device = "cpu", vision.input_names = ["neg:0"], vision.output_names = ["topk:0", "cast:0"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32", "float32"]}
// CHECK: func.func @stage2(%v: tensor<1x4xf32>, %f: tensor<1x4xf32>) -> tensor<1x4xf32> attributes {vision.stage = 2 : i64, vision.device = "cuda", vision.input_names = ["topk:0", "cast:0"], vision.output_names = ["y"]
// CHECK: func.func @main(
// CHECK-NEXT: func.call @stage0
// CHECK-NEXT: func.call @stage1
// CHECK-NEXT: func.call @stage2
