// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s
// RUN: visc-opt %s -p lower-vision-to-loops | visc-opt | filecheck %s

// rows = 2, vec = 4 (conv_depthwise.py): a thread per (channel, block of 2 output rows)
// walks the row's one column vector. At stride 2 a vector's input columns (-1, 1, 3, 5 for
// kw = 0) are picked from whole-vector loads, the padding lane a zero; the top input row
// may be padding (scf.if), the next is always inside; the third input row feeds both output
// rows (two FMAs with different weights); each output row leaves as one vector store.

// CHECK-LABEL: func.func @dw
// CHECK:       "scf.parallel"
// CHECK-SAME:    operandSegmentSizes = array<i32: 2, 2, 2, 0>
// CHECK:         %[[ZERO:.*]] = vector.broadcast %{{.*}} : f32 to vector<4xf32>
// CHECK-COUNT-9: memref.load %w
// CHECK:         %{{.*}}, %[[R1:.*]] = scf.if %{{.*}} -> (vector<4xf32>, vector<4xf32>) {
// CHECK:           %[[A:.*]] = vector.load %x[%{{.*}}] : memref<1x2x6x8xf32>, vector<4xf32>
// CHECK-NEXT:      %[[B:.*]] = vector.load %x[%{{.*}}] : memref<1x2x6x8xf32>, vector<4xf32>
// CHECK-NEXT:      %[[L1:.*]] = vector.extract %[[A]][0] : f32 from vector<4xf32>
// CHECK-NEXT:      %[[L2:.*]] = vector.extract %[[A]][2] : f32 from vector<4xf32>
// CHECK-NEXT:      %[[L3:.*]] = vector.extract %[[B]][1] : f32 from vector<4xf32>
// CHECK-NEXT:      %[[V1:.*]] = vector.insert %[[L1]], %[[ZERO]] [1] : f32 into vector<4xf32>
// CHECK:           vector.fma
// CHECK:         } else {
// CHECK-NEXT:      scf.yield %[[ZERO]], %[[ZERO]] : vector<4xf32>, vector<4xf32>
// CHECK:         vector.load %x
// CHECK-NOT:     scf.if
// CHECK:         %{{.*}} = vector.fma %{{.*}}, %{{.*}}, %[[R1]] : vector<4xf32>
// The last block is shifted up (rows 1..2 of 3): its first row is stored only by the block
// that owns it; its last row always.
// CHECK:         scf.if
// CHECK:           vector.store %{{.*}}, %out[%{{.*}}] : memref<1x2x3x4xf32>, vector<4xf32>
// CHECK:         vector.store %{{.*}}, %out[%{{.*}}] : memref<1x2x3x4xf32>, vector<4xf32>
// CHECK:       }) {kernel_name = "conv2d_dw", workgroup_size = 4 : i64{{.*}}}
func.func @dw(%x: memref<1x2x6x8xf32>, %w: memref<2x1x3x3xf32>, %out: memref<1x2x3x4xf32>) {
  vision.conv2d ins(%x, %w : memref<1x2x6x8xf32>, memref<2x1x3x3xf32>) outs(%out : memref<1x2x3x4xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2 : i64, onnx_node = "dw", schedule = #vision.schedule<{rows = 2 : i64, vec = 4 : i64, wg = 4 : i64}>}
  func.return
}
