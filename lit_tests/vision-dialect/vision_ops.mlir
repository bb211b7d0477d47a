// RUN: visc-opt %s | filecheck %s
// RUN: visc-opt %s | visc-opt | filecheck %s
// The sorting, selection and detection ops print in the common syntax and parse back.

// CHECK-LABEL: func.func @tensors
func.func @tensors(%x: tensor<2x9xf32>, %b: tensor<1x6x4xf32>, %s: tensor<1x2x6xf32>, %f: tensor<1x3x8x8xf32>, %r: tensor<3x4xf32>, %ri: tensor<3xi64>) -> (tensor<12x3xi64>, tensor<1xi64>) {
  // CHECK: %v, %i = vision.topk ins(%x : tensor<2x9xf32>) {axis = 1 : i64, k = 3 : i64, largest = 1 : i64, onnx_node = "topk0"} -> tensor<2x3xf32>, tensor<2x3xi64>
  %v, %i = vision.topk ins(%x : tensor<2x9xf32>) {axis = 1 : i64, k = 3 : i64, largest = 1 : i64, onnx_node = "topk0"} -> tensor<2x3xf32>, tensor<2x3xi64>
  // CHECK: vision.sort ins(%x : tensor<2x9xf32>) {axis = 0 : i64, descending = 0 : i64} -> tensor<2x9xf32>, tensor<2x9xi64>
  %sv, %si = vision.sort ins(%x : tensor<2x9xf32>) {axis = 0 : i64, descending = 0 : i64} -> tensor<2x9xf32>, tensor<2x9xi64>
  // CHECK: vision.argmax ins(%x : tensor<2x9xf32>) {axis = 1 : i64, select_last_index = 0 : i64} -> tensor<2x1xi64>
  %am = vision.argmax ins(%x : tensor<2x9xf32>) {axis = 1 : i64, select_last_index = 0 : i64} -> tensor<2x1xi64>
  // CHECK: vision.argmin ins(%x : tensor<2x9xf32>) {axis = 0 : i64, select_last_index = 1 : i64} -> tensor<9xi64>
  %an = vision.argmin ins(%x : tensor<2x9xf32>) {axis = 0 : i64, select_last_index = 1 : i64} -> tensor<9xi64>
  // CHECK: vision.scan ins(%x : tensor<2x9xf32>) {axis = 1 : i64, exclusive = 1 : i64, reverse = 0 : i64} -> tensor<2x9xf32>
  %cs = vision.scan ins(%x : tensor<2x9xf32>) {axis = 1 : i64, exclusive = 1 : i64, reverse = 0 : i64} -> tensor<2x9xf32>
  // CHECK: %sel, %cnt = vision.nms ins(%b, %s : tensor<1x6x4xf32>, tensor<1x2x6xf32>)
  // CHECK-SAME: max_output_boxes_per_class = 6 : i64, iou_threshold = 5.000000e-01 : f32, score_threshold = 0.000000e+00 : f32
  // CHECK-SAME: -> tensor<12x3xi64>, tensor<1xi64>
  %sel, %cnt = vision.nms ins(%b, %s : tensor<1x6x4xf32>, tensor<1x2x6xf32>) {center_point_box = 0 : i64, max_output_boxes_per_class = 6 : i64, iou_threshold = 5.000000e-01 : f32, score_threshold = 0.000000e+00 : f32} -> tensor<12x3xi64>, tensor<1xi64>
  // CHECK: vision.roi_align ins(%f, %r, %ri : tensor<1x3x8x8xf32>, tensor<3x4xf32>, tensor<3xi64>) {mode = "max", coord_mode = "output_half_pixel", sampling_ratio = 2 : i64, spatial_scale = 5.000000e-01 : f32} -> tensor<3x3x2x2xf32>
  %ra = vision.roi_align ins(%f, %r, %ri : tensor<1x3x8x8xf32>, tensor<3x4xf32>, tensor<3xi64>) {mode = "max", coord_mode = "output_half_pixel", sampling_ratio = 2 : i64, spatial_scale = 5.000000e-01 : f32} -> tensor<3x3x2x2xf32>
  func.return %sel, %cnt : tensor<12x3xi64>, tensor<1xi64>
}

// CHECK-LABEL: func.func @memrefs
func.func @memrefs(%x: memref<2x9xf32>, %v: memref<2x3xf32>, %i: memref<2x3xi64>, %sel: memref<12x3xi64>, %cnt: memref<1xi64>, %b: memref<1x6x4xf32>, %s: memref<1x2x6xf32>) {
  // CHECK: vision.topk ins(%x : memref<2x9xf32>) outs(%v, %i : memref<2x3xf32>, memref<2x3xi64>) {axis = 1 : i64, k = 3 : i64, largest = 0 : i64}
  vision.topk ins(%x : memref<2x9xf32>) outs(%v, %i : memref<2x3xf32>, memref<2x3xi64>) {axis = 1 : i64, k = 3 : i64, largest = 0 : i64}
  // CHECK: vision.nms ins(%b, %s : memref<1x6x4xf32>, memref<1x2x6xf32>) outs(%sel, %cnt : memref<12x3xi64>, memref<1xi64>)
  vision.nms ins(%b, %s : memref<1x6x4xf32>, memref<1x2x6xf32>) outs(%sel, %cnt : memref<12x3xi64>, memref<1xi64>) {center_point_box = 1 : i64, max_output_boxes_per_class = 6 : i64, iou_threshold = 5.000000e-01 : f32}
  func.return
}
