// RUN: visc-opt %s -p vision-pack-weights | filecheck %s

// A conv whose schedule has pack = 8 reads its weight as (O/8, KH, KW, C, 8): the pass adds
// the packed weight, marks the conv with packed_oc and drops the unused original. A conv
// without pack is left alone.

// CHECK:      %w_oc8 = vision.weight @w_oc8 : memref<2x3x3x4x8xf32>
// CHECK-NOT:  vision.weight @w :
// CHECK:      vision.conv2d ins(%x, %w_oc8, %b : memref<1x4x6x6xf32>, memref<2x3x3x4x8xf32>, memref<16xf32>) outs(%y : memref<1x16x6x6xf32>) {{.*}}packed_oc = 8 : i64
// CHECK:      %v = vision.weight @v : memref<16x4x1x1xf32>
// CHECK:      vision.conv2d ins(%x, %v : memref<1x4x6x6xf32>, memref<16x4x1x1xf32>)
// CHECK-NOT:  packed_oc
func.func @main(%x: memref<1x4x6x6xf32>, %y: memref<1x16x6x6xf32>, %z: memref<1x16x6x6xf32>) attributes {vision.num_inputs = 1 : i64} {
  %w = vision.weight @w : memref<16x4x3x3xf32>
  %b = vision.weight @b : memref<16xf32>
  vision.conv2d ins(%x, %w, %b : memref<1x4x6x6xf32>, memref<16x4x3x3xf32>, memref<16xf32>) outs(%y : memref<1x16x6x6xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, schedule = #vision.schedule<{pack = 8 : i64, tile_oc = 16 : i64, tile_ow = 3 : i64, wg = 4 : i64}>}
  %v = vision.weight @v : memref<16x4x1x1xf32>
  vision.conv2d ins(%x, %v : memref<1x4x6x6xf32>, memref<16x4x1x1xf32>) outs(%z : memref<1x16x6x6xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, schedule = #vision.schedule<{tile_oc = 4 : i64, wg = 4 : i64}>}
  func.return
}
