// RUN: not visc-opt %s -p lower-vision-to-loops 2>&1 | filecheck %s

// Schedule legality of the row normalizations, reported together and naming the nodes: the
// work-group's tree reduction needs a power-of-two wg, coop is 0 or 1, partial sums are
// the thread-per-row form's.

// CHECK:      error: cannot lower to loops:
// CHECK-SAME: vision.group_norm (ONNX node 'gn'): schedule wg=24 must be a power of two with coop=1 (tree reduction)
// CHECK-SAME: vision.layer_norm (ONNX node 'ln'): schedule coop=2 is illegal here (needs 0..1)
// CHECK-SAME: vision.layer_norm (ONNX node 'lp'): schedule partials=4 is read only with coop=0 (the work-group splits rows itself)
func.func @main(%x: memref<2x8x5x5xf32>, %c: memref<8xf32>, %y: memref<2x8x5x5xf32>, %z: memref<2x8x5x5xf32>) {
  vision.group_norm ins(%x, %c, %c : memref<2x8x5x5xf32>, memref<8xf32>, memref<8xf32>) outs(%y : memref<2x8x5x5xf32>) {groups = 4 : i64, epsilon = 1.0e-05 : f32, onnx_node = "gn", schedule = #vision.schedule<{coop = 1 : i64, wg = 24 : i64}>}
  %s = vision.weight @s : memref<8x1x1xf32>
  vision.layer_norm ins(%x, %s : memref<2x8x5x5xf32>, memref<8x1x1xf32>) outs(%z : memref<2x8x5x5xf32>) {axes = array<i64: 1>, epsilon = 1.0e-05 : f32, onnx_node = "ln", schedule = #vision.schedule<{coop = 2 : i64, wg = 32 : i64}>}
  vision.layer_norm ins(%x, %s : memref<2x8x5x5xf32>, memref<8x1x1xf32>) outs(%z : memref<2x8x5x5xf32>) {axes = array<i64: 1>, epsilon = 1.0e-05 : f32, onnx_node = "lp", schedule = #vision.schedule<{coop = 1 : i64, partials = 4 : i64, wg = 32 : i64}>}
  func.return
}
