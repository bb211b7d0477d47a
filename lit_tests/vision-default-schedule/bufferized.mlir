// RUN: visc-opt %s -p 'vision-default-schedule{device_type=cpu}' | filecheck %s

// Bufferized ops (for instance the copies vision-bufferize adds) are scheduled the same way.
// A 7-wide output gets 2 vectors of 8 packed output channels x 5 columns (the second tile of
// a row shifted to overlap the first); a transposed-b matmul vectorizes the contraction.

func.func @main(%x: memref<1x512x7x7xf32>, %out: memref<1x512x7x7xf32>, %f: memref<1x2048xf32>, %o2: memref<1x1000xf32>) {
  %w = vision.weight @w : memref<512x512x3x3xf32>
  %fc = vision.weight @fc : memref<1000x2048xf32>
  vision.conv2d ins(%x, %w : memref<1x512x7x7xf32>, memref<512x512x3x3xf32>) outs(%out : memref<1x512x7x7xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "c"}
  vision.matmul ins(%f, %fc : memref<1x2048xf32>, memref<1000x2048xf32>) outs(%o2 : memref<1x1000xf32>) {transpose_b = 1 : i64, onnx_node = "fc"}
  func.return
}

// CHECK: vision.conv2d {{.*}}schedule = #vision.schedule<{pack = 8 : i64, tile_oc = 16 : i64, tile_ow = 5 : i64, unroll_k = 1 : i64, unroll_win = 1 : i64, wg = 32 : i64}>
// CHECK: vision.matmul {{.*}}schedule = #vision.schedule<{tile_m = 1 : i64, tile_n = 8 : i64, unroll_k = 4 : i64, vec = 8 : i64, wg = 16 : i64}>
