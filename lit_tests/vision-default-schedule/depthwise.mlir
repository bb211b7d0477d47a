// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu}' | filecheck %s --check-prefix=GPU
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=cpu}' | filecheck %s --check-prefix=CPU
// RUN: visc-opt %s -p 'vision-default-schedule{target=cpu}' | filecheck %s --check-prefix=BACKEND

// Depthwise convs on a GPU compute one output per thread (no register tile: a thread's
// outputs would share no weights, and fewer threads hide less memory latency); CPUs keep
// the vector tiles along the output row (PoCL); the CPU backend gives a thread a channel and
// a block of 4 output rows (conv_depthwise.py), vectors as wide as registers and row allow;
// at stride 1, rows shorter than a vector walk the plane as one flat row (flat = 1).

// GPU-LABEL: func.func @dw_stride2
// GPU: vision.conv2d
// GPU-SAME: schedule = #vision.schedule<{tile_oc = 1 : i64, tile_ow = 1 : i64, unroll_k = 0 : i64, unroll_win = 0 : i64, wg = 256 : i64}>
// CPU-LABEL: func.func @dw_stride2
// CPU: vision.conv2d
// CPU-SAME: tile_ow = 7 : i64, {{.*}} vec = 8 : i64
// BACKEND-LABEL: func.func @dw_stride2
// BACKEND: vision.conv2d
// BACKEND-SAME: schedule = #vision.schedule<{rows = 4 : i64, vec = {{4|8|16}} : i64, wg = {{[0-9]+}} : i64}>
func.func @dw_stride2(%x : tensor<1x96x112x112xf32>, %w : tensor<96x1x3x3xf32>) -> tensor<1x96x56x56xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x96x112x112xf32>, tensor<96x1x3x3xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 1, 1>, dilations = array<i64: 1, 1>, groups = 96 : i64, onnx_node = "dw"} -> tensor<1x96x56x56xf32>
  func.return %y : tensor<1x96x56x56xf32>
}

// A grouped conv with several channels per group keeps the register tile.
// GPU-LABEL: func.func @grouped
// GPU: vision.conv2d
// GPU-SAME: tile_oc = 4 : i64
func.func @grouped(%x : tensor<1x64x28x28xf32>, %w : tensor<64x16x3x3xf32>) -> tensor<1x64x28x28xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x64x28x28xf32>, tensor<64x16x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 4 : i64, onnx_node = "g"} -> tensor<1x64x28x28xf32>
  func.return %y : tensor<1x64x28x28xf32>
}

// BACKEND-LABEL: func.func @dw_narrow
// BACKEND: vision.conv2d
// BACKEND-SAME: schedule = #vision.schedule<{flat = 1 : i64, rows = 1 : i64, vec = {{4|8|16}} : i64, wg = {{[0-9]+}} : i64}>
func.func @dw_narrow(%x : tensor<1x32x8x3xf32>, %w : tensor<32x1x3x3xf32>) -> tensor<1x32x8x3xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x32x8x3xf32>, tensor<32x1x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 32 : i64, onnx_node = "dwn"} -> tensor<1x32x8x3xf32>
  func.return %y : tensor<1x32x8x3xf32>
}
