// RUN: visc-opt %s --split-input-file --verify-diagnostics | filecheck %s
// The verifiers of the sorting, selection and detection ops name the ONNX node.

func.func @topk_k(%x: tensor<2x5xf32>) -> tensor<2x6xf32> {
  %v, %i = vision.topk ins(%x : tensor<2x5xf32>) {axis = 1 : i64, k = 6 : i64, largest = 1 : i64, onnx_node = "topk1"} -> tensor<2x6xf32>, tensor<2x6xi64>
  func.return %v : tensor<2x6xf32>
}
// CHECK: vision.topk (ONNX node 'topk1'): k = 6 is not in 0..5

// -----

func.func @topk_index_type(%x: tensor<2x5xf32>) -> tensor<2x2xf32> {
  %v, %i = vision.topk ins(%x : tensor<2x5xf32>) {axis = 1 : i64, k = 2 : i64, largest = 1 : i64, onnx_node = "topk2"} -> tensor<2x2xf32>, tensor<2x2xi32>
  func.return %v : tensor<2x2xf32>
}
// CHECK: vision.topk (ONNX node 'topk2'): indices must be i64

// -----

func.func @argmax_shape(%x: tensor<2x5xf32>) -> tensor<5xi64> {
  %y = vision.argmax ins(%x : tensor<2x5xf32>) {axis = 1 : i64, select_last_index = 0 : i64, onnx_node = "am"} -> tensor<5xi64>
  func.return %y : tensor<5xi64>
}
// CHECK: vision.argmax (ONNX node 'am'): output shape (5,) is neither (2, 1) nor (2,)

// -----

func.func @scan_axis(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
  %y = vision.scan ins(%x : tensor<2x5xf32>) {axis = 2 : i64, onnx_node = "cs"} -> tensor<2x5xf32>
  func.return %y : tensor<2x5xf32>
}
// CHECK: vision.scan (ONNX node 'cs'): axis 2 is out of range for rank 2

// -----

func.func @nms_rows(%b: tensor<1x6x4xf32>, %s: tensor<1x2x6xf32>) -> tensor<12x3xi64> {
  %sel, %cnt = vision.nms ins(%b, %s : tensor<1x6x4xf32>, tensor<1x2x6xf32>) {center_point_box = 0 : i64, max_output_boxes_per_class = 5 : i64, iou_threshold = 5.000000e-01 : f32, onnx_node = "nms"} -> tensor<12x3xi64>, tensor<1xi64>
  func.return %sel : tensor<12x3xi64>
}
// CHECK: vision.nms (ONNX node 'nms'): selected must have shape (10, 3), got (12, 3)

// -----

func.func @nms_scores(%b: tensor<1x6x4xf32>, %s: tensor<1x2x5xf32>) -> tensor<10x3xi64> {
  %sel, %cnt = vision.nms ins(%b, %s : tensor<1x6x4xf32>, tensor<1x2x5xf32>) {center_point_box = 0 : i64, max_output_boxes_per_class = 5 : i64, iou_threshold = 5.000000e-01 : f32, onnx_node = "nms2"} -> tensor<10x3xi64>, tensor<1xi64>
  func.return %sel : tensor<10x3xi64>
}
// CHECK: vision.nms (ONNX node 'nms2'): scores must be [B, C, N] = [1, C, 6], got (1, 2, 5)

// -----

func.func @roi_mode(%x: tensor<1x3x8x8xf32>, %r: tensor<2x4xf32>, %i: tensor<2xi64>) -> tensor<2x3x2x2xf32> {
  %y = vision.roi_align ins(%x, %r, %i : tensor<1x3x8x8xf32>, tensor<2x4xf32>, tensor<2xi64>) {mode = "median", onnx_node = "roi"} -> tensor<2x3x2x2xf32>
  func.return %y : tensor<2x3x2x2xf32>
}
// CHECK: vision.roi_align (ONNX node 'roi'): mode must be avg or max

// -----

func.func @slab_out_of_range(%x: memref<1x4x8x8xf32>) attributes {vision.arena_size = 2048 : i64} {
  %t = vision.buffer offset 0 : memref<1x4x8x8xf32>
  %h = vision.subbuffer %t offset 768 : memref<1x4x8x8xf32> -> memref<1x2x8x8xf32>
  func.return
}
// CHECK: vision.subbuffer: bytes 768..1280 leave the 1024-byte source
