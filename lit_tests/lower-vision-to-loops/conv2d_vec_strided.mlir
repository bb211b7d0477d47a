// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s
// RUN: visc-opt %s -p lower-vision-to-loops | visc-opt | filecheck %s

// Column vectors at stride 2: an interior group reads its 4 input columns (every other one
// of 8) as two whole-vector loads whose lanes 0, 2 of each it picks (extracts and inserts
// that compilers fold into one shuffle), not as 4 scalar loads. The test that the group lies
// inside the row covers the whole 8 columns the loads touch.

// CHECK:      "scf.parallel"
// CHECK:        scf.if %{{.*}} -> (vector<4xf32>) {
// CHECK-NEXT:     %[[A:.*]] = vector.load %x[%{{.*}}] : memref<1x2x4x16xf32>, vector<4xf32>
// CHECK-NEXT:     %[[B:.*]] = vector.load %x[%{{.*}}] : memref<1x2x4x16xf32>, vector<4xf32>
// CHECK-NEXT:     %[[L0:.*]] = vector.extract %[[A]][0] : f32 from vector<4xf32>
// CHECK-NEXT:     %[[L1:.*]] = vector.extract %[[A]][2] : f32 from vector<4xf32>
// CHECK-NEXT:     %[[L2:.*]] = vector.extract %[[B]][0] : f32 from vector<4xf32>
// CHECK-NEXT:     %[[L3:.*]] = vector.extract %[[B]][2] : f32 from vector<4xf32>
// CHECK-NEXT:     %[[V:.*]] = vector.broadcast %[[L0]] : f32 to vector<4xf32>
// CHECK-NEXT:     vector.insert %[[L1]], %[[V]] [1]
// CHECK:          scf.yield
// CHECK-NEXT:   } else {
// CHECK:          memref.load %x
func.func @main(%x: memref<1x2x4x16xf32>, %out: memref<1x4x2x8xf32>) {
  %w = vision.weight @w : memref<4x2x3x3xf32>
  vision.conv2d ins(%x, %w : memref<1x2x4x16xf32>, memref<4x2x3x3xf32>) outs(%out : memref<1x4x2x8xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "cv", schedule = #vision.schedule<{wg = 8 : i64, tile_oc = 2 : i64, vec = 4 : i64}>}
  func.return
}
