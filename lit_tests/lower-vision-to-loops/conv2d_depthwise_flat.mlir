// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s
// RUN: visc-opt %s -p lower-vision-to-loops | visc-opt | filecheck %s

// flat = 1, rows = 1, vec = 8 (conv_depthwise.py): rows narrower than a vector are walked as
// one flat row of the 3x3 plane. Input and output are viewed as 1x9 rows; a thread owns a
// channel and both vectors of its plane (lanes 0..7, and 1..8 shifted to end at the last
// pixel). Each of the nine taps is one multiply-add per vector: the centre tap of the first
// vector is the plain load, the others zero the lanes over the padding. The shifted vector
// stores only its last lane (the first vector stored the rest).

// CHECK-LABEL: func.func @dwflat
// CHECK:       %[[X:.*]] = vision.reshape ins(%x : memref<1x2x3x3xf32>) {{.*}} -> memref<1x2x1x9xf32>
// CHECK:       %[[OUT:.*]] = vision.reshape ins(%out : memref<1x2x3x3xf32>) {{.*}} -> memref<1x2x1x9xf32>
// CHECK:       "scf.parallel"
// CHECK:         %[[V0:.*]] = vector.load %[[X]][%{{.*}}] : memref<1x2x1x9xf32>, vector<8xf32>
// CHECK-COUNT-4: vector.fma
// CHECK:         vector.fma %[[V0]], %{{.*}}, %{{.*}} : vector<8xf32>
// CHECK-COUNT-4: vector.fma
// CHECK-NEXT:    vector.store %{{.*}}, %[[OUT]][%{{.*}}] : memref<1x2x1x9xf32>, vector<8xf32>
// CHECK-COUNT-9: vector.fma
// CHECK-NOT:     vector.store
// CHECK:         memref.store %{{.*}}, %[[OUT]][%{{.*}}] : memref<1x2x1x9xf32>
// CHECK-NOT:     memref.store
// CHECK:       }) {kernel_name = "conv2d_dwflat", workgroup_size = 2 : i64{{.*}}}
func.func @dwflat(%x: memref<1x2x3x3xf32>, %w: memref<2x1x3x3xf32>, %out: memref<1x2x3x3xf32>) {
  vision.conv2d ins(%x, %w : memref<1x2x3x3xf32>, memref<2x1x3x3xf32>) outs(%out : memref<1x2x3x3xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2 : i64, onnx_node = "dwflat", schedule = #vision.schedule<{flat = 1 : i64, rows = 1 : i64, vec = 8 : i64, wg = 2 : i64}>}
  func.return
}
