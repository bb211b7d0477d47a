// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Stride-2 transposed conv: one thread per output element gathers the taps whose position
// minus the window offset is a multiple of the stride (remsi == 0) and inside the input;
// only those run the channel loop, under an scf.if carrying the accumulator.

func.func @main(%x: memref<1x4x3x3xf32>, %out: memref<1x2x7x7xf32>) {
  %w = vision.weight @w : memref<4x2x3x3xf32>
  %b = vision.weight @b : memref<2xf32>
  vision.conv2d_transpose ins(%x, %w, %b : memref<1x4x3x3xf32>, memref<4x2x3x3xf32>, memref<2xf32>) outs(%out : memref<1x2x7x7xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, output_padding = array<i64: 0, 0>, onnx_node = "up", schedule = #vision.schedule<{wg = 32 : i64}>}
  func.return
}

// CHECK:      "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 3, 3, 3, 0>}> ({
// CHECK-NEXT: ^bb0(%[[O:.*]]: index, %[[H:.*]]: index, %[[W:.*]]: index):
// CHECK:        scf.for {{.*}} -> (f32) {
// CHECK:          arith.remsi
// CHECK:          scf.for {{.*}} -> (f32) {
// CHECK:            arith.remsi
// CHECK:            scf.if %{{.*}} -> (f32) {
// CHECK-NEXT:         scf.for {{.*}} -> (f32) {
// CHECK:                memref.load %x
// CHECK:                memref.load %w[%{{.*}}, %[[O]], %{{.*}}, %{{.*}}] : memref<4x2x3x3xf32>
// CHECK:            } else {
// CHECK:        memref.load %b[%[[O]]] : memref<2xf32>
// CHECK:        memref.store %{{.*}}, %out[%{{.*}}, %[[O]], %[[H]], %[[W]]] : memref<1x2x7x7xf32>
// CHECK:      }) {kernel_name = "conv2d_transpose_up", workgroup_size = 32 : i64{{.*}}}
