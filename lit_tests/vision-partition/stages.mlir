// RUN: visc-opt %s -p 'vision-partition{stages=2 target=gpu}' | filecheck %s
// RUN: visc-opt %s -p 'vision-partition{stages=2 devices=gpu,cpu}' | filecheck %s --check-prefix=MIXED
// RUN: visc-opt %s -p 'vision-partition{stages=3 target=gpu}' | filecheck %s --check-prefix=THREE

// Automatic cuts from `vision.costs` (microseconds per device): the slowest stage is as fast
// as possible. On the gpu alone, {4, 1} | {3, 2} (5 and 5); with the second stage on the
// cpu, {4, 1, 3} | {2} (8 and 6) beats {4, 1} | {3, 2} (5 and 12). Three gpu stages:
// {4} | {1, 3} | {2}.

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> attributes {vision.input_names = ["x"], vision.output_names = ["y"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
  %a = vision.map ins(%x : tensor<4xf32>) {onnx_node = "a", vision.costs = {gpu = 4.0 : f32, cpu = 8.0 : f32}} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<4xf32>
  %b = vision.map ins(%a : tensor<4xf32>) {onnx_node = "b", vision.costs = {gpu = 1.0 : f32, cpu = 1.0 : f32}} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<4xf32>
  %c = vision.map ins(%b : tensor<4xf32>) {onnx_node = "c", vision.costs = {gpu = 3.0 : f32, cpu = 6.0 : f32}} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<4xf32>
  %d = vision.map ins(%c : tensor<4xf32>) {onnx_node = "d", vision.costs = {gpu = 2.0 : f32, cpu = 6.0 : f32}} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<4xf32>
  func.return %d : tensor<4xf32>
}

// CHECK: func.func @stage0({{.*}}vision.device = "gpu", vision.input_names = ["x"], vision.output_names = ["b:0"]
// CHECK: func.func @stage1({{.*}}vision.device = "gpu", vision.input_names = ["b:0"], vision.output_names = ["y"]

// MIXED: func.func @stage0({{.*}}vision.device = "gpu", vision.input_names = ["x"], vision.output_names = ["c:0"]
// MIXED: func.func @stage1({{.*}}vision.device = "cpu", vision.input_names = ["c:0"], vision.output_names = ["y"]

// THREE: func.func @stage0({{.*}}vision.output_names = ["a:0"]
// THREE: func.func @stage1({{.*}}vision.output_names = ["c:0"]
// THREE: func.func @stage2({{.*}}vision.output_names = ["y"]
