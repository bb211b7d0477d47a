// RUN: not visc-opt %s -p lower-vision-to-loops 2>&1 | filecheck %s

// Every problem of the module is reported at once, each naming the ONNX node, and nothing
// is lowered: a tile that does not divide the channels of a group, an unknown schedule key,
// a missing schedule, an unsupported resize mode and a vector wider than the output.

// CHECK:      error: cannot lower to loops:
// CHECK-SAME: vision.conv2d (ONNX node 'conv_1'): schedule tile_oc=3 must divide the 4 output channels of a group
// CHECK-SAME: vision.conv2d (ONNX node 'conv_2'): schedule key(s) local are not read by its lowering (it reads {{[a-z_, ]*}}flat, {{[a-z_, ]*}}tile_oc, tile_ow, unroll_k, unroll_win, vec, wg)
// CHECK-SAME: vision.map (ONNX node 'relu_3'): has no schedule attribute (run vision-default-schedule first)
// CHECK-SAME: vision.resize (ONNX node 'up_4'): coordinate_transformation_mode 'half_pixel_sideways' is not supported
// CHECK-SAME: vision.conv2d (ONNX node 'conv_5'): schedule vec=8 is wider than the output's 4 columns

func.func @main(%x: memref<1x4x4x4xf32>, %y: memref<1x4x4x4xf32>, %z: memref<1x4x8x8xf32>) {
  %w = vision.weight @w : memref<4x4x1x1xf32>
  vision.conv2d ins(%x, %w : memref<1x4x4x4xf32>, memref<4x4x1x1xf32>) outs(%y : memref<1x4x4x4xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv_1", schedule = #vision.schedule<{wg = 8 : i64, tile_oc = 3 : i64}>}
  vision.conv2d ins(%x, %w : memref<1x4x4x4xf32>, memref<4x4x1x1xf32>) outs(%y : memref<1x4x4x4xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv_2", schedule = #vision.schedule<{wg = 8 : i64, local = 1 : i64}>}
  vision.map ins(%x : memref<1x4x4x4xf32>) outs(%y : memref<1x4x4x4xf32>) {onnx_node = "relu_3"} body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  }
  vision.resize ins(%x : memref<1x4x4x4xf32>) outs(%z : memref<1x4x8x8xf32>) {mode = "nearest", coord_mode = "half_pixel_sideways", scales = array<f64: 1.0, 1.0, 2.0, 2.0>, onnx_node = "up_4", schedule = #vision.schedule<{wg = 8 : i64}>}
  vision.conv2d ins(%x, %w : memref<1x4x4x4xf32>, memref<4x4x1x1xf32>) outs(%y : memref<1x4x4x4xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv_5", schedule = #vision.schedule<{wg = 8 : i64, vec = 8 : i64}>}
  func.return
}
