// RUN: visc-opt %s -p 'vision-partition{cuts=n1}' | filecheck %s
// RUN: visc-opt %s -p 'vision-partition{cuts=n1 devices=cpu,opencl}' | filecheck %s --check-prefix=DEV

// A cut after n1: conv+relu (n0+n1) is stage 0, the map stage 1. The weights go with
// their users; @main keeps its signature and attributes and becomes the calls.

func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> attributes {vision.input_names = ["x"], vision.output_names = ["y"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
  %w = vision.weight @w : tensor<3x2x1x1xf32>
  %c = vision.conv2d ins(%x, %w : tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "n0+n1", onnx_op = "Conv+Relu"} body {
  ^bb0(%a: f32):
    %z = arith.constant 0.000000e+00 : f32
    %r = arith.maximumf %a, %z : f32
    vision.yield %r : f32
  } -> tensor<1x3x4x4xf32>
  %y = vision.map ins(%c : tensor<1x3x4x4xf32>) {onnx_node = "n2", onnx_op = "Neg"} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<1x3x4x4xf32>
  func.return %y : tensor<1x3x4x4xf32>
}

// CHECK:      func.func @stage0(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> attributes {vision.stage = 0 : i64, vision.device = "opencl", vision.input_names = ["x"], vision.output_names = ["n0+n1:0"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
// CHECK-NEXT:   %w = vision.weight @w : tensor<3x2x1x1xf32>
// CHECK-NEXT:   %c = vision.conv2d ins(%x, %w
// CHECK:        func.return %c : tensor<1x3x4x4xf32>
// CHECK:      func.func @stage1(%c: tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32> attributes {vision.stage = 1 : i64, vision.device = "opencl", vision.input_names = ["n0+n1:0"], vision.output_names = ["y"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
// CHECK-NEXT:   %y = vision.map ins(%c
// CHECK:        func.return %y : tensor<1x3x4x4xf32>
// CHECK:      func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> attributes {vision.input_names = ["x"], vision.output_names = ["y"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
// CHECK-NEXT:   %0 = func.call @stage0(%x) : (tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32>
// CHECK-NEXT:   %1 = func.call @stage1(%0) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
// CHECK-NEXT:   func.return %1 : tensor<1x3x4x4xf32>
// CHECK-NEXT: }

// DEV: @stage0{{.*}}vision.device = "cpu"
// DEV: @stage1{{.*}}vision.device = "opencl"
