// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Nearest, asymmetric, floor: only the resized dims compute a source index; N and C are
// read directly.
// CHECK-LABEL: func.func @nearest
// CHECK:       ^bb0(%[[C:.*]]: index, %[[H:.*]]: index, %[[W:.*]]: index):
// CHECK:         arith.divf
// CHECK:         math.floor
// CHECK:         arith.fptosi
// CHECK:         memref.load %x[%{{.*}}, %[[C]], %{{.*}}, %{{.*}}] : memref<1x2x3x4xf32>
// CHECK:       }) {kernel_name = "resize_up", workgroup_size = 16 : i64{{.*}}}
func.func @nearest(%x: memref<1x2x3x4xf32>, %y: memref<1x2x6x8xf32>) {
  vision.resize ins(%x : memref<1x2x3x4xf32>) outs(%y : memref<1x2x6x8xf32>) {mode = "nearest", coord_mode = "asymmetric", nearest_mode = "floor", scales = array<f64: 1.0, 1.0, 2.0, 2.0>, onnx_node = "up", schedule = #vision.schedule<{wg = 16 : i64}>}
  func.return
}

// Bilinear, half_pixel: 2 x 2 taps weighted by the fractional parts.
// CHECK-LABEL: func.func @linear
// CHECK-COUNT-4: memref.load %x
// CHECK:       }) {kernel_name = "resize_lin", workgroup_size = 16 : i64{{.*}}}
func.func @linear(%x: memref<1x1x3x4xf32>, %y: memref<1x1x5x7xf32>) {
  vision.resize ins(%x : memref<1x1x3x4xf32>) outs(%y : memref<1x1x5x7xf32>) {mode = "linear", coord_mode = "half_pixel", scales = array<f64: 1.0, 1.0, 1.6666666666666667, 1.75>, onnx_node = "lin", schedule = #vision.schedule<{wg = 16 : i64}>}
  func.return
}
