// RUN: not visc-opt %s -p lower-vision-to-loops 2>&1 | filecheck %s

// A row-block schedule (conv_depthwise.py) is checked like any other: more rows than the
// output has, a vector wider than its rows, a register-tile key it does not read, and rows
// on a conv that is not depthwise are all reported, naming the node; so is a flat plane
// (flat = 1) at stride 2, where a tap is no fixed offset of the flat index.

// CHECK:      error: cannot lower to loops:
// CHECK-SAME: vision.conv2d (ONNX node 'dw'): schedule rows=9 is illegal here (needs 1..6; the output has 6 rows (at most 8))
// CHECK-SAME: schedule vec=16 with rows must be one of (4, 8, 16) and at most the output's 8 columns
// CHECK-SAME: schedule tile_oc is not read with rows (a thread walks whole rows)
// CHECK-SAME: vision.conv2d (ONNX node 'full'): schedule rows is for depthwise convs (one input and one output channel per group)
// CHECK-SAME: vision.conv2d (ONNX node 'strided'): schedule flat=1 with rows needs stride 1, output rows as wide as the input's and fuse operands that broadcast over whole rows
func.func @dw(%x: memref<1x2x6x8xf32>, %w: memref<2x1x3x3xf32>, %out: memref<1x2x6x8xf32>, %w2: memref<2x2x3x3xf32>, %out2: memref<1x2x6x8xf32>, %out3: memref<1x2x3x4xf32>) {
  vision.conv2d ins(%x, %w : memref<1x2x6x8xf32>, memref<2x1x3x3xf32>) outs(%out : memref<1x2x6x8xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2 : i64, onnx_node = "dw", schedule = #vision.schedule<{rows = 9 : i64, vec = 16 : i64, tile_oc = 2 : i64, wg = 4 : i64}>}
  vision.conv2d ins(%x, %w2 : memref<1x2x6x8xf32>, memref<2x2x3x3xf32>) outs(%out2 : memref<1x2x6x8xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "full", schedule = #vision.schedule<{rows = 2 : i64, vec = 4 : i64, wg = 4 : i64}>}
  vision.conv2d ins(%x, %w : memref<1x2x6x8xf32>, memref<2x1x3x3xf32>) outs(%out3 : memref<1x2x3x4xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2 : i64, onnx_node = "strided", schedule = #vision.schedule<{flat = 1 : i64, rows = 1 : i64, vec = 4 : i64, wg = 4 : i64}>}
  func.return
}
