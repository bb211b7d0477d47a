// RUN: visc-opt %s -p 'vision-default-schedule{target=cpu}' | filecheck %s
// RUN: visc-opt %s -p 'vision-default-schedule{target=cuda}' | filecheck %s --check-prefix=GPU

// A given schedule is kept, except that target cpu runs stage=2 (per-thread accumulators kept
// in private arrays across barriers) as stage=1: the CPU backend runs a work-group's threads
// through one stack frame. GPU targets keep stage=2; other schedules are left alone.

func.func @main(%x: memref<1x64x14x14xf32>, %out: memref<1x384x14x14xf32>, %out2: memref<1x384x14x14xf32>) {
  %w = vision.weight @w : memref<384x64x1x1xf32>
  vision.conv2d ins(%x, %w : memref<1x64x14x14xf32>, memref<384x64x1x1xf32>) outs(%out : memref<1x384x14x14xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "staged", schedule = #vision.schedule<{stage = 2 : i64, block_m = 64 : i64, block_n = 32 : i64, tile_k = 16 : i64, split_k = 1 : i64, tile_oc = 4 : i64, tile_ow = 4 : i64, wg = 128 : i64}>}
  vision.conv2d ins(%x, %w : memref<1x64x14x14xf32>, memref<384x64x1x1xf32>) outs(%out2 : memref<1x384x14x14xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "plain", schedule = #vision.schedule<{tile_oc = 4 : i64, tile_ow = 2 : i64, wg = 64 : i64}>}
  func.return
}

// CHECK: onnx_node = "staged", schedule = #vision.schedule<{block_m = 64 : i64, block_n = 32 : i64, split_k = 1 : i64, stage = 1 : i64, tile_k = 16 : i64, tile_oc = 4 : i64, tile_ow = 4 : i64, wg = 128 : i64}>
// CHECK: onnx_node = "plain", schedule = #vision.schedule<{tile_oc = 4 : i64, tile_ow = 2 : i64, wg = 64 : i64}>
// GPU: onnx_node = "staged", schedule = #vision.schedule<{stage = 2 : i64, block_m = 64 : i64, block_n = 32 : i64, tile_k = 16 : i64, split_k = 1 : i64, tile_oc = 4 : i64, tile_ow = 4 : i64, wg = 128 : i64}>
