// RUN: visc-opt %s -p 'vision-partition{cuts=a,b,c}' | filecheck %s

// A skip connection across two cuts: %a, made in stage 0, is read by stage 1 and stage 3;
// it leaves stage 0 once and enters each reader by the same name. The reshape at the last
// cut travels as its source and is applied again in stage 3; the weight is cloned into
// both stages that read it. %b is also a graph output, so its edge takes the output's name.

func.func @main(%x: tensor<1x8xf32>) -> (tensor<8xf32>, tensor<1x8xf32>) attributes {vision.input_names = ["x"], vision.output_names = ["out", "bout"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32", "float32"]} {
  %w = vision.weight @w : tensor<1x8xf32>
  %a = vision.map ins(%x, %w : tensor<1x8xf32>, tensor<1x8xf32>) {onnx_node = "a"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<1x8xf32>
  %b = vision.map ins(%a : tensor<1x8xf32>) {onnx_node = "b"} body {
  ^bb0(%p: f32):
    %n = arith.negf %p : f32
    vision.yield %n : f32
  } -> tensor<1x8xf32>
  %c = vision.map ins(%b, %w : tensor<1x8xf32>, tensor<1x8xf32>) {onnx_node = "c"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.mulf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<1x8xf32>
  %v = vision.reshape ins(%c : tensor<1x8xf32>) {onnx_node = "flat"} -> tensor<8xf32>
  %av = vision.reshape ins(%a : tensor<1x8xf32>) {onnx_node = "flat_a"} -> tensor<8xf32>
  %d = vision.map ins(%v, %av : tensor<8xf32>, tensor<8xf32>) {onnx_node = "d"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.subf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<8xf32>
  func.return %d, %b : tensor<8xf32>, tensor<1x8xf32>
}

// CHECK:      func.func @stage0(%x: tensor<1x8xf32>) -> tensor<1x8xf32> attributes {{{.*}}vision.input_names = ["x"], vision.output_names = ["a:0"]
// CHECK-NEXT:   %w = vision.weight @w
// CHECK-NEXT:   %a = vision.map
// CHECK:      func.func @stage1(%a: tensor<1x8xf32>) -> tensor<1x8xf32> attributes {{{.*}}vision.input_names = ["a:0"], vision.output_names = ["bout"]
// CHECK:      func.func @stage2(%b: tensor<1x8xf32>) -> tensor<1x8xf32> attributes {{{.*}}vision.input_names = ["bout"], vision.output_names = ["c:0"]
// CHECK-NEXT:   %w = vision.weight @w
// CHECK-NEXT:   %c = vision.map
// CHECK:      func.func @stage3(%a: tensor<1x8xf32>, %c: tensor<1x8xf32>) -> tensor<8xf32> attributes {{{.*}}vision.input_names = ["a:0", "c:0"], vision.output_names = ["out"]
// CHECK-NEXT:   %v = vision.reshape ins(%c
// CHECK-NEXT:   %av = vision.reshape ins(%a
// CHECK-NEXT:   %d = vision.map ins(%v, %av
// CHECK:      func.func @main(
// CHECK-NEXT:   %0 = func.call @stage0(%x)
// CHECK-NEXT:   %1 = func.call @stage1(%0)
// CHECK-NEXT:   %2 = func.call @stage2(%1)
// CHECK-NEXT:   %3 = func.call @stage3(%0, %2)
// CHECK-NEXT:   func.return %3, %1 : tensor<8xf32>, tensor<1x8xf32>
