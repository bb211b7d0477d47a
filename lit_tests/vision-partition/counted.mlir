// RUN: visc-opt %s -p 'vision-partition{cuts=sig}' | filecheck %s

// A counted NMS output and its count leave the same stage, which records the pairing in
// its own `vision.output_counts` (indices into its results); the scores, an edge to the
// NMS and a graph output, leave stage 0 under the output's name.

func.func @main(%b: tensor<1x6x4xf32>, %s: tensor<1x2x6xf32>) -> (tensor<1x2x6xf32>, tensor<6x3xi64>, tensor<1xi64>) attributes {vision.input_names = ["boxes", "scores"], vision.output_names = ["probs", "selected", "selected:count"], vision.input_dtypes = ["float32", "float32"], vision.output_dtypes = ["float32", "int64", "int64"], vision.output_counts = array<i64: -1, 2, -1>} {
  %p = vision.map ins(%s : tensor<1x2x6xf32>) {onnx_node = "sig"} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<1x2x6xf32>
  %sel, %cnt = vision.nms ins(%b, %p : tensor<1x6x4xf32>, tensor<1x2x6xf32>) {center_point_box = 0 : i64, max_output_boxes_per_class = 3 : i64, iou_threshold = 5.000000e-01 : f32, onnx_node = "nms"} -> tensor<6x3xi64>, tensor<1xi64>
  func.return %p, %sel, %cnt : tensor<1x2x6xf32>, tensor<6x3xi64>, tensor<1xi64>
}

// CHECK:      func.func @stage0(%s: tensor<1x2x6xf32>) -> tensor<1x2x6xf32> attributes {vision.stage = 0 : i64, vision.device = "opencl", vision.input_names = ["scores"], vision.output_names = ["probs"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
// CHECK:      func.func @stage1(%b: tensor<1x6x4xf32>, %p: tensor<1x2x6xf32>) -> (tensor<6x3xi64>, tensor<1xi64>) attributes {vision.stage = 1 : i64, vision.device = "opencl", vision.input_names = ["boxes", "probs"], vision.output_names = ["selected", "selected:count"], vision.input_dtypes = ["float32", "float32"], vision.output_dtypes = ["int64", "int64"], vision.output_counts = array<i64: 1, -1>} {
// CHECK:      func.func @main(
// CHECK-SAME:   vision.output_counts = array<i64: -1, 2, -1>
// CHECK-NEXT:   %0 = func.call @stage0(%s)
// CHECK-NEXT:   %1, %2 = func.call @stage1(%b, %0)
// CHECK-NEXT:   func.return %0, %1, %2
