// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu target=cuda}' | filecheck %s --check-prefix=GPU
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu target=opencl max_workgroup_size=64}' | filecheck %s --check-prefix=WG64
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu target=cpu}' | filecheck %s --check-prefix=CPU

// GEMMs of at most 2^24 multiply-adds get the reduction split across a work-group's threads on
// GPU targets (stage 3): MobileNetV2's 1x1 projection at batch 1 (64 x 196 x 384) gets 16
// threads per slice group, its 1x1 expansion (K = 64) 8 threads and wider tiles; a ResNet 3x3
// conv (64 x 3136 x 576) keeps the staged kernel. The CPU backend keeps staged kernels.

func.func @main(%x: tensor<1x384x14x14xf32>, %e: tensor<1x64x14x14xf32>, %r: tensor<1x64x56x56xf32>) -> (tensor<1x64x14x14xf32>, tensor<1x384x14x14xf32>, tensor<1x64x56x56xf32>) {
  %w = vision.weight @w : tensor<64x384x1x1xf32>
  %p = vision.conv2d ins(%x, %w : tensor<1x384x14x14xf32>, tensor<64x384x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "project"} -> tensor<1x64x14x14xf32>
  %we = vision.weight @we : tensor<384x64x1x1xf32>
  %q = vision.conv2d ins(%e, %we : tensor<1x64x14x14xf32>, tensor<384x64x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "expand"} -> tensor<1x384x14x14xf32>
  %wr = vision.weight @wr : tensor<64x64x3x3xf32>
  %s = vision.conv2d ins(%r, %wr : tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "resnet"} -> tensor<1x64x56x56xf32>
  func.return %p, %q, %s : tensor<1x64x14x14xf32>, tensor<1x384x14x14xf32>, tensor<1x64x56x56xf32>
}

// GPU:      onnx_node = "project", schedule = #vision.schedule<{block_n = 16 : i64, stage = 3 : i64, threads_k = 16 : i64, tile_oc = 2 : i64, tile_ow = 1 : i64, unroll_k = 4 : i64, wg = 256 : i64}>
// GPU:      onnx_node = "expand", schedule = #vision.schedule<{block_n = 64 : i64, stage = 3 : i64, threads_k = 8 : i64, tile_oc = 4 : i64, tile_ow = 2 : i64, unroll_k = 4 : i64, wg = 256 : i64}>
// GPU:      onnx_node = "resnet", schedule = #vision.schedule<{{.*}}stage = 2 : i64

// 64 threads at most: fewer threads per slice group first.
// WG64:     onnx_node = "project", schedule = #vision.schedule<{block_n = 16 : i64, stage = 3 : i64, threads_k = 4 : i64, {{.*}}wg = 64 : i64}>
// WG64:     onnx_node = "expand", schedule = #vision.schedule<{block_n = 64 : i64, stage = 3 : i64, threads_k = 2 : i64, {{.*}}wg = 64 : i64}>

// CPU:      onnx_node = "project", schedule = #vision.schedule<{{.*}}stage = 1 : i64
// CPU-NOT:  stage = 3
