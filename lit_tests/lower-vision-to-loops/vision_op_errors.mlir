// RUN: not visc-opt %s -p lower-vision-to-loops 2>&1 | filecheck %s

// Schedule legality of the cooperative kernels, reported together and naming the nodes:
// a row too long to sort in portable local memory, an NMS whose sort does not fit, an
// illegal `local` value, bool keys, and global-sort blocks that are no power of two or come
// with the local form.

// CHECK:      error: cannot lower to loops:
// CHECK-SAME: vision.topk (ONNX node 'big'): schedule local=1 needs 40000 bytes of local memory for 5000 elements, more than the portable 32768; use local=0
// CHECK-SAME: vision.nms (ONNX node 'nms'): schedule local=1 needs 40000 bytes of local memory for 5000 elements, more than the portable 32768; use local=0
// CHECK-SAME: vision.sort (ONNX node 'srt'): schedule local=2 is illegal here (needs 0..1)
// CHECK-SAME: vision.sort (ONNX node 'bools'): bool keys are not supported
// CHECK-SAME: vision.topk (ONNX node 'odd'): schedule block=24 is illegal here (needs a power of two in 2..4096)
// CHECK-SAME: vision.topk (ONNX node 'mixed'): schedule key block is read only with local=0
func.func @main(%x: memref<5000xf32>, %v: memref<3xf32>, %i: memref<3xi64>, %b: memref<1x5000x4xf32>, %s: memref<1x1x5000xf32>, %sel: memref<10x3xi64>, %cnt: memref<1xi64>, %q: memref<8xi1>, %qv: memref<8xi1>, %qi: memref<8xi64>, %sv: memref<5000xf32>, %si: memref<5000xi64>) {
  vision.topk ins(%x : memref<5000xf32>) outs(%v, %i : memref<3xf32>, memref<3xi64>) {axis = 0 : i64, k = 3 : i64, largest = 1 : i64, onnx_node = "big", schedule = #vision.schedule<{wg = 256 : i64, local = 1 : i64}>}
  vision.nms ins(%b, %s : memref<1x5000x4xf32>, memref<1x1x5000xf32>) outs(%sel, %cnt : memref<10x3xi64>, memref<1xi64>) {center_point_box = 0 : i64, max_output_boxes_per_class = 10 : i64, iou_threshold = 5.000000e-01 : f32, onnx_node = "nms", schedule = #vision.schedule<{wg = 256 : i64, local = 1 : i64}>}
  vision.sort ins(%x : memref<5000xf32>) outs(%sv, %si : memref<5000xf32>, memref<5000xi64>) {axis = 0 : i64, descending = 0 : i64, onnx_node = "srt", schedule = #vision.schedule<{wg = 256 : i64, local = 2 : i64}>}
  vision.sort ins(%q : memref<8xi1>) outs(%qv, %qi : memref<8xi1>, memref<8xi64>) {axis = 0 : i64, descending = 0 : i64, onnx_node = "bools", schedule = #vision.schedule<{wg = 4 : i64, local = 1 : i64}>}
  vision.topk ins(%x : memref<5000xf32>) outs(%v, %i : memref<3xf32>, memref<3xi64>) {axis = 0 : i64, k = 3 : i64, largest = 1 : i64, onnx_node = "odd", schedule = #vision.schedule<{wg = 256 : i64, local = 0 : i64, block = 24 : i64}>}
  vision.topk ins(%x : memref<5000xf32>) outs(%v, %i : memref<3xf32>, memref<3xi64>) {axis = 0 : i64, k = 3 : i64, largest = 1 : i64, onnx_node = "mixed", schedule = #vision.schedule<{wg = 8 : i64, local = 1 : i64, block = 8 : i64}>}
  func.return
}
