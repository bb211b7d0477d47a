// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu}' | filecheck %s --check-prefix=GPU
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=cpu}' | filecheck %s --check-prefix=CPU
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu max_workgroup_size=64}' | filecheck %s --check-prefix=WG64

// Tensor-level ops (stage 2) get exactly the keys their lowering reads. GPUs get scalar
// register tiles, CPUs (OpenCL, 16 vector registers) vectors of 8 output channels over packed weights; a ResNet 3x3 conv at 56x56 gets a
// staged implicit GEMM on a GPU (64 channels x 32 pixels per work-group, 4x4 per thread;
// 4x8 when work-groups are limited to 64 threads), 2 channel vectors x 5 columns on a CPU.

func.func @main(%x: tensor<1x64x56x56xf32>) -> tensor<1x64x56x56xf32> {
  %w = vision.weight @w : tensor<64x64x3x3xf32>
  %y = vision.conv2d ins(%x, %w : tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "c"} -> tensor<1x64x56x56xf32>
  %r = vision.map ins(%y : tensor<1x64x56x56xf32>) {onnx_node = "relu"} body {
  ^bb0(%a: f32):
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %a, %z : f32
    vision.yield %m : f32
  } -> tensor<1x64x56x56xf32>
  %v = vision.reshape ins(%r : tensor<1x64x56x56xf32>) {onnx_node = "flat"} -> tensor<64x3136xf32>
  %s = vision.softmax ins(%v : tensor<64x3136xf32>) {axis = 1 : i64, onnx_node = "sm"} -> tensor<64x3136xf32>
  %t = vision.pool2d ins(%r : tensor<1x64x56x56xf32>) {kind = "max", kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64, onnx_node = "p", schedule = #vision.schedule<{wg = 7 : i64}>} -> tensor<1x64x28x28xf32>
  func.return %r : tensor<1x64x56x56xf32>
}

// The 64x3136x576 GEMM has 49 blocks of 64x64: K is split in 4 slices to fill the device.
// GPU:      vision.conv2d {{.*}}schedule = #vision.schedule<{block_m = 64 : i64, block_n = 64 : i64, split_k = 4 : i64, stage = 2 : i64, tile_k = 16 : i64, tile_oc = 4 : i64, tile_ow = 4 : i64, unroll_k = 0 : i64, wg = 256 : i64}>
// GPU:      vision.map {{.*}}schedule = #vision.schedule<{wg = 256 : i64}>
// GPU-NOT:  vision.reshape {{.*}}schedule
// GPU:      vision.softmax {{.*}}schedule = #vision.schedule<{wg = 32 : i64}>
// A schedule that is already there (a tuner record) is kept.
// GPU:      vision.pool2d {{.*}}schedule = #vision.schedule<{wg = 7 : i64}>

// CPU:      vision.conv2d {{.*}}schedule = #vision.schedule<{pack = 8 : i64, tile_oc = 16 : i64, tile_ow = 5 : i64, unroll_k = 1 : i64, unroll_win = 1 : i64, wg = 256 : i64}>
// CPU:      vision.map {{.*}}schedule = #vision.schedule<{wg = 256 : i64}>

// WG64:     vision.conv2d {{.*}}split_k = 4 : i64, stage = 2 : i64, tile_k = 16 : i64, tile_oc = 8 : i64, tile_ow = 8 : i64, unroll_k = 0 : i64, wg = 64 : i64
// WG64:     vision.map {{.*}}schedule = #vision.schedule<{wg = 64 : i64}>
