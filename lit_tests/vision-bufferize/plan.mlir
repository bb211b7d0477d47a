// RUN: visc-opt %s -p vision-bufferize | filecheck %s
// RUN: visc-opt %s -p 'vision-bufferize{align=64}' | filecheck %s --check-prefix=ALIGN

// A chain of maps: intermediates alternate between two arena slots; the last op writes
// the output argument directly. Outputs follow inputs in the signature; no results.
// CHECK-LABEL: func.func @main(%x: memref<1x256xf32>, %out0: memref<1x256xf32>)
// CHECK-SAME:      vision.num_inputs = 1 : i64, vision.arena_size = 2048 : i64, vision.arena_naive_size = 3072 : i64
// CHECK-NEXT:    %[[A:.*]] = vision.buffer offset [[OA:[0-9]+]] : memref<1x256xf32>
// CHECK-NEXT:    vision.map ins(%x : memref<1x256xf32>) outs(%[[A]] : memref<1x256xf32>) {onnx_node = "m0"} body {
// CHECK:         %[[B:.*]] = vision.buffer offset [[OB:[0-9]+]] : memref<1x256xf32>
// CHECK-NEXT:    vision.map ins(%[[A]] : memref<1x256xf32>) outs(%[[B]] : memref<1x256xf32>)
// CHECK:         %[[C:.*]] = vision.buffer offset [[OA]] : memref<1x256xf32>
// CHECK-NEXT:    vision.map ins(%[[B]] : memref<1x256xf32>) outs(%[[C]] : memref<1x256xf32>)
// CHECK:         vision.map ins(%[[C]] : memref<1x256xf32>) outs(%out0 : memref<1x256xf32>)
// CHECK:         func.return{{$}}
// ALIGN:       vision.arena_size = 2048 : i64, vision.arena_naive_size = 3072 : i64
func.func @main(%x: tensor<1x256xf32>) -> tensor<1x256xf32> attributes {vision.input_names = ["x"], vision.output_names = ["y"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
  %a = vision.map ins(%x : tensor<1x256xf32>) {onnx_node = "m0"} body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x256xf32>
  %b = vision.map ins(%a : tensor<1x256xf32>) body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x256xf32>
  %c = vision.map ins(%b : tensor<1x256xf32>) body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x256xf32>
  %d = vision.map ins(%c : tensor<1x256xf32>) body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x256xf32>
  func.return %d : tensor<1x256xf32>
}
