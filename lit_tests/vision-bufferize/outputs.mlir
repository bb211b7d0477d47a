// RUN: visc-opt %s -p vision-bufferize | filecheck %s

// Outputs that are an input, a weight, a view, or a value returned twice are written by
// copying maps; the view keeps its source buffer alive until the copy; fuse operands
// are inputs of the op for the plan.
// CHECK-LABEL: func.func @main(%x: memref<2x3xf32>, %out0: memref<2x3xf32>, %out1: memref<3xf32>, %out2: memref<6xf32>, %out3: memref<2x3xf32>, %out4: memref<2x3xf32>)
// CHECK-SAME:      vision.num_inputs = 1 : i64, vision.arena_size = 1048 : i64, vision.arena_naive_size = 2048 : i64
// CHECK-NEXT:    vision.map ins(%x : memref<2x3xf32>) outs(%out0 : memref<2x3xf32>) {onnx_node = "in_copy:copy", onnx_op = "Identity"} body {
// CHECK-NEXT:    ^{{.*}}(%[[V:.*]]: f32):
// CHECK-NEXT:      vision.yield %[[V]] : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    %w = vision.weight @w : memref<3xf32>
// CHECK-NEXT:    vision.map ins(%w : memref<3xf32>) outs(%out1 : memref<3xf32>) {onnx_node = "w_copy:copy", onnx_op = "Identity"}
// CHECK:         %[[A:.*]] = vision.buffer offset 0 : memref<2x3xf32>
// CHECK-NEXT:    vision.map ins(%x, %w : memref<2x3xf32>, memref<3xf32>) outs(%[[A]] : memref<2x3xf32>)
// CHECK:         %[[R:.*]] = vision.reshape ins(%[[A]] : memref<2x3xf32>) -> memref<6xf32>
// CHECK-NEXT:    vision.map ins(%[[R]] : memref<6xf32>) outs(%out2 : memref<6xf32>) {onnx_node = "view:copy", onnx_op = "Identity"}
// CHECK:         %[[B:.*]] = vision.buffer offset 1024 : memref<2x3xf32>
// CHECK-NEXT:    vision.map ins(%x : memref<2x3xf32>) fuse(%[[A]] : memref<2x3xf32>) outs(%[[B]] : memref<2x3xf32>)
// CHECK:         vision.map ins(%[[B]] : memref<2x3xf32>) outs(%out3 : memref<2x3xf32>)
// CHECK:         vision.map ins(%out3 : memref<2x3xf32>) outs(%out4 : memref<2x3xf32>) {onnx_node = "twice_b:copy", onnx_op = "Identity"}
// CHECK:         func.return
func.func @main(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<3xf32>, tensor<6xf32>, tensor<2x3xf32>, tensor<2x3xf32>) attributes {vision.output_names = ["in_copy", "w_copy", "view", "twice_a", "twice_b"]} {
  %w = vision.weight @w : tensor<3xf32>
  %a = vision.map ins(%x, %w : tensor<2x3xf32>, tensor<3xf32>) body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  %r = vision.reshape ins(%a : tensor<2x3xf32>) -> tensor<6xf32>
  %b = vision.map ins(%x : tensor<2x3xf32>) fuse(%a : tensor<2x3xf32>) body {
  ^bb0(%p: f32):
    vision.yield %p : f32
  } -> tensor<2x3xf32>
  %c = vision.map ins(%b : tensor<2x3xf32>) body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  func.return %x, %w, %r, %c, %c : tensor<2x3xf32>, tensor<3xf32>, tensor<6xf32>, tensor<2x3xf32>, tensor<2x3xf32>
}
