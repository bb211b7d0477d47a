// RUN: visc-opt %s -p 'vision-default-schedule{target=cpu vector_bits=512}' | filecheck %s
// RUN: visc-opt %s -p 'vision-default-schedule{target=cpu vector_bits=256}' | filecheck %s --check-prefix=AVX2
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=cpu}' | filecheck %s --check-prefix=POCL

// The CPU backend runs a 1x1 conv over a long row (flattened image) with column vectors as
// wide as the host's registers: whole-vector stores, where channel vectors (pack) would
// leave lane by lane. An image smaller than a vector (squeeze-and-excitation's 1x1) keeps
// channel vectors. PoCL (device_type=cpu, target opencl) keeps the packed schedule.
// The first RUN line pins the AVX-512 heuristic (vector_bits=512), the second AVX2's, for 16
// ymm registers, whose register tiles keep at most half of them as accumulators (8 column
// vectors, 10 packed).

// AVX2-LABEL: func.func @expand
// AVX2: vision.conv2d
// AVX2-SAME: flat = 1 : i64, tile_oc = 4 : i64, tile_ow = 2 : i64
// AVX2-SAME: vec = 8 : i64

// CHECK-LABEL: func.func @expand
// CHECK: vision.conv2d
// CHECK-SAME: schedule = #vision.schedule<{flat = 1 : i64, tile_oc = {{[0-9]+}} : i64
// CHECK-SAME: vec = {{4|8|16}} : i64
// POCL-LABEL: func.func @expand
// POCL: vision.conv2d
// POCL-SAME: pack = 8 : i64
func.func @expand(%x : tensor<1x16x112x112xf32>, %w : tensor<96x16x1x1xf32>) -> tensor<1x96x112x112xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x16x112x112xf32>, tensor<96x16x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "expand"} -> tensor<1x96x112x112xf32>
  func.return %y : tensor<1x96x112x112xf32>
}

// CHECK-LABEL: func.func @squeeze
// CHECK: vision.conv2d
// CHECK-SAME: pack = {{4|8|16}} : i64
func.func @squeeze(%x : tensor<1x1152x1x1xf32>, %w : tensor<48x1152x1x1xf32>) -> tensor<1x48x1x1xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x1152x1x1xf32>, tensor<48x1152x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "squeeze"} -> tensor<1x48x1x1xf32>
  func.return %y : tensor<1x48x1x1xf32>
}

// A stride-1 conv with a short reduction (3 channels x 3x3 = 27 < 64) stores more than it
// multiplies: column vectors too, also at stride 2 (whole-vector loads and a shuffle).
// CHECK-LABEL: func.func @stem3x3
// CHECK: vision.conv2d
// CHECK-SAME: schedule = #vision.schedule<{tile_oc = {{[0-9]+}} : i64
// CHECK-SAME: vec = {{4|8|16}} : i64
func.func @stem3x3(%x : tensor<1x3x224x224xf32>, %w : tensor<64x3x3x3xf32>) -> tensor<1x64x224x224xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x3x224x224xf32>, tensor<64x3x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "stem3x3"} -> tensor<1x64x224x224xf32>
  func.return %y : tensor<1x64x224x224xf32>
}

// At stride 2 a column tile is one vector wide: wider tiles measured up to 1.6x slower
// (MobileNetV2's 3 -> 32 stem 130 -> 84 us alone; MobileNetV3's 3 -> 16 92 -> 67 in the model).
// CHECK-LABEL: func.func @stem3x3s2
// CHECK: vision.conv2d
// CHECK-SAME: schedule = #vision.schedule<{tile_oc = {{[0-9]+}} : i64, tile_ow = 1 : i64
// CHECK-SAME: vec = {{4|8|16}} : i64
func.func @stem3x3s2(%x : tensor<1x3x224x224xf32>, %w : tensor<32x3x3x3xf32>) -> tensor<1x32x112x112xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x3x224x224xf32>, tensor<32x3x3x3xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "stem3x3s2"} -> tensor<1x32x112x112xf32>
  func.return %y : tensor<1x32x112x112xf32>
}

// With 64 output channels or more, a strided stem keeps channel vectors: four of them fill
// a register tile (SqueezeNet 1.1's 3 -> 64 at stride 2: the model 0.96x).
// CHECK-LABEL: func.func @stem3x3s2wide
// CHECK: vision.conv2d
// CHECK-SAME: pack = {{4|8|16}} : i64
func.func @stem3x3s2wide(%x : tensor<1x3x224x224xf32>, %w : tensor<64x3x3x3xf32>) -> tensor<1x64x111x111xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x3x224x224xf32>, tensor<64x3x3x3xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "stem3x3s2wide"} -> tensor<1x64x111x111xf32>
  func.return %y : tensor<1x64x111x111xf32>
}

// A 7x7 stem's reduction (147 taps) is long: channel vectors.
// CHECK-LABEL: func.func @stem7x7
// CHECK: vision.conv2d
// CHECK-SAME: pack = {{4|8|16}} : i64
func.func @stem7x7(%x : tensor<1x3x224x224xf32>, %w : tensor<64x3x7x7xf32>) -> tensor<1x64x112x112xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x3x224x224xf32>, tensor<64x3x7x7xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 3, 3, 3, 3>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "stem7x7"} -> tensor<1x64x112x112xf32>
  func.return %y : tensor<1x64x112x112xf32>
}

// Other convs: two channel vectors by the most columns that waste none (28 = 4 x 7; on
// AVX2 at most 5 columns, 2 x 5 = 10 accumulators).
// AVX2-LABEL: func.func @deep3x3
// AVX2: vision.conv2d
// AVX2-SAME: pack = 8 : i64, tile_oc = 16 : i64, tile_ow = 5 : i64
// CHECK-LABEL: func.func @deep3x3
// CHECK: vision.conv2d
// CHECK-SAME: pack = [[LANES:[0-9]+]] : i64, tile_oc = {{[0-9]+}} : i64, tile_ow = 7 : i64
func.func @deep3x3(%x : tensor<1x128x28x28xf32>, %w : tensor<128x128x3x3xf32>) -> tensor<1x128x28x28xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x128x28x28xf32>, tensor<128x128x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "deep3x3"} -> tensor<1x128x28x28xf32>
  func.return %y : tensor<1x128x28x28xf32>
}

// Over a 56x56 input, AVX2 takes four channel vectors by three columns (CPU_WIDE_TILE_PLANE).
// AVX2-LABEL: func.func @wide3x3
// AVX2: vision.conv2d
// AVX2-SAME: pack = 8 : i64, tile_oc = 32 : i64, tile_ow = 3 : i64
// CHECK-LABEL: func.func @wide3x3
// CHECK: vision.conv2d
// CHECK-SAME: pack = 16 : i64, tile_oc = 32 : i64, tile_ow = 8 : i64
func.func @wide3x3(%x : tensor<1x64x56x56xf32>, %w : tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "wide3x3"} -> tensor<1x64x56x56xf32>
  func.return %y : tensor<1x64x56x56xf32>
}

// 13 columns: 2 tiles of 7 (the second shifted) beat 13 tiles of 1 that waste nothing.
// CHECK-LABEL: func.func @odd3x3
// CHECK: vision.conv2d
// CHECK-SAME: tile_ow = 7 : i64
func.func @odd3x3(%x : tensor<1x48x13x13xf32>, %w : tensor<192x48x3x3xf32>) -> tensor<1x192x13x13xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x48x13x13xf32>, tensor<192x48x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "odd3x3"} -> tensor<1x192x13x13xf32>
  func.return %y : tensor<1x192x13x13xf32>
}

// A 1x1 conv over a small image (at most 7x7) with a long reduction (at least 128 input
// channels) keeps channel vectors: the flattened row would waste column lanes and a column
// tile's inputs stream from the L2. Not with 1000 channels (no whole registers), nor at 14x14;
// on AVX2, at 14x14 too (any plane: `CPU_PACKED_PLANE_256`).
// CHECK-LABEL: func.func @project7
// CHECK: vision.conv2d
// CHECK-SAME: flat = 1 : i64, pack = {{4|8|16}} : i64
func.func @project7(%x : tensor<1x1152x7x7xf32>, %w : tensor<192x1152x1x1xf32>) -> tensor<1x192x7x7xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x1152x7x7xf32>, tensor<192x1152x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "project7"} -> tensor<1x192x7x7xf32>
  func.return %y : tensor<1x192x7x7xf32>
}

// CHECK-LABEL: func.func @classes7
// CHECK: vision.conv2d
// CHECK-NOT: pack
// CHECK-SAME: vec = {{4|8|16}} : i64
func.func @classes7(%x : tensor<1x512x7x7xf32>, %w : tensor<1000x512x1x1xf32>) -> tensor<1x1000x7x7xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x512x7x7xf32>, tensor<1000x512x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "classes7"} -> tensor<1x1000x7x7xf32>
  func.return %y : tensor<1x1000x7x7xf32>
}

// CHECK-LABEL: func.func @project14
// CHECK: vision.conv2d
// CHECK-NOT: pack
// CHECK-SAME: vec = {{4|8|16}} : i64
// AVX2-LABEL: func.func @project14
// AVX2: vision.conv2d
// AVX2-SAME: flat = 1 : i64, pack = 8 : i64
func.func @project14(%x : tensor<1x384x14x14xf32>, %w : tensor<64x384x1x1xf32>) -> tensor<1x64x14x14xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x384x14x14xf32>, tensor<64x384x1x1xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "project14"} -> tensor<1x64x14x14xf32>
  func.return %y : tensor<1x64x14x14xf32>
}

// A stride-2 stem with a short reduction (3 x 3x3 = 27) takes column vectors too: a strided
// column vector is two whole-vector loads and a shuffle (conv.py).
// CHECK-LABEL: func.func @stem_s2
// CHECK: vision.conv2d
// CHECK-NOT: pack
// CHECK-SAME: vec = {{4|8|16}} : i64
func.func @stem_s2(%x : tensor<1x3x224x224xf32>, %w : tensor<32x3x3x3xf32>) -> tensor<1x32x112x112xf32> {
  %y = vision.conv2d ins(%x, %w : tensor<1x3x224x224xf32>, tensor<32x3x3x3xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "stem_s2"} -> tensor<1x32x112x112xf32>
  func.return %y : tensor<1x32x112x112xf32>
}
