// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Split-K (split_k = 4): the 16 x 9 x 288 GEMM of a 3x3 conv on 32 channels has one 16x16
// block, so K is cut into 4 slices of ceil(18 / 4) = 5 tiles of 16 (the last slice reads
// zeros past K). Each work-group writes its partial sums to a scratch buffer [4, 16, 9]
// beyond the arena (which grows to hold it); a second kernel, one thread per output, adds
// the 4 slices in order and finishes the output (bias) as the unsplit kernel would. Both
// kernels carry the conv's ONNX node, so profiles and errors name it.

func.func @main(%x: memref<1x32x3x3xf32>, %out: memref<1x16x3x3xf32>) attributes {vision.arena_size = 0 : i64} {
  %w = vision.weight @w : memref<16x32x3x3xf32>
  %b = vision.weight @b : memref<16xf32>
  vision.conv2d ins(%x, %w, %b : memref<1x32x3x3xf32>, memref<16x32x3x3xf32>, memref<16xf32>) outs(%out : memref<1x16x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv1", schedule = #vision.schedule<{stage = 2 : i64, block_m = 16 : i64, block_n = 16 : i64, tile_k = 16 : i64, tile_oc = 4 : i64, tile_ow = 4 : i64, wg = 16 : i64, split_k = 4 : i64}>}
  func.return
}

// CHECK:      func.func @main({{.*}}) attributes {vision.arena_size = 2304 : i64}
// CHECK:        %[[P:.*]] = vision.buffer offset 0 {onnx_node = "conv2d_conv1:split_k", vision.scratch = "lowering"} : memref<4x16x9xf32>
// CHECK:        "scf.parallel"
// CHECK-NEXT:   ^bb0(%[[S:.*]]: index):
// CHECK:          scf.for
// CHECK-NOT:      memref.store {{.*}} %out
// CHECK:          memref.store %{{.*}}, %[[P]][%[[S]], %{{.*}}, %{{.*}}] : memref<4x16x9xf32>
// CHECK:        }) {kernel_name = "conv2d_conv1", workgroup_size = 16 : i64, onnx_node = "conv1"}
// CHECK:        "scf.parallel"
// CHECK-COUNT-4: memref.load %[[P]]
// CHECK:          memref.load %b
// CHECK:          memref.store %{{.*}}, %out
// CHECK:        }) {kernel_name = "conv2d_conv1_split_k", workgroup_size = 16 : i64, onnx_node = "conv1"}
