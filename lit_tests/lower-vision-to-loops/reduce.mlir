// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Mean over axes 1 and 2 with keepdims: one thread per output, nested loops over the
// reduced dims (the innermost carries the unroll hint), a division by the count.
// CHECK-LABEL: func.func @mean_keep
// CHECK:       ^bb0(%[[N:.*]]: index, %[[W:.*]]: index):
// CHECK:         %[[CNT:.*]] = arith.constant 1.200000e+01 : f32
// CHECK:         scf.for %[[I:[^ ]+]] = {{.*}} -> (f32) {
// CHECK-NEXT:      scf.for %[[J:[^ ]+]] = {{.*}} -> (f32) {
// CHECK-NEXT:        memref.load %x[%[[N]], %[[I]], %[[J]], %[[W]]] : memref<2x3x4x5xf32>
// CHECK:           } {vision.unroll = 2 : i64}
// CHECK:         arith.divf %{{.*}}, %[[CNT]] : f32
// CHECK:         memref.store %{{.*}}, %y[%[[N]], %{{.*}}, %{{.*}}, %[[W]]] : memref<2x1x1x5xf32>
func.func @mean_keep(%x: memref<2x3x4x5xf32>, %y: memref<2x1x1x5xf32>) {
  vision.reduce ins(%x : memref<2x3x4x5xf32>) outs(%y : memref<2x1x1x5xf32>) {kind = "mean", axes = array<i64: 1, -2>, onnx_node = "rm", schedule = #vision.schedule<{wg = 8 : i64, unroll_k = 2 : i64}>}
  func.return
}

// log_sum_exp without keepdims: a max pass, then exp(x - shift) summed, shift = max unless
// the max is -inf.
// CHECK-LABEL: func.func @lse
// CHECK:         %[[MX:.*]] = scf.for
// CHECK:         %[[FIN:.*]] = arith.cmpf one, %[[MX]], %{{.*}} : f32
// CHECK-NEXT:    %[[SHIFT:.*]] = arith.select %[[FIN]], %[[MX]], %{{.*}} : f32
// CHECK:         scf.for
// CHECK:           arith.subf %{{.*}}, %[[SHIFT]] : f32
// CHECK:         math.log
// CHECK:         memref.store %{{.*}}, %y[%{{.*}}] : memref<3xf32>
func.func @lse(%x: memref<3x7xf32>, %y: memref<3xf32>) {
  vision.reduce ins(%x : memref<3x7xf32>) outs(%y : memref<3xf32>) {kind = "log_sum_exp", axes = array<i64: 1>, onnx_node = "lse", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// An integer max over everything to a scalar.
// CHECK-LABEL: func.func @imax
// CHECK:         %[[LOW:.*]] = arith.constant -2147483648 : i32
// CHECK:         scf.for {{.*}} iter_args(%{{.*}} = %[[LOW]]) -> (i32) {
// CHECK:           arith.maxsi
// CHECK:         memref.store %{{.*}}, %y[] : memref<i32>
func.func @imax(%x: memref<6xi32>, %y: memref<i32>) {
  vision.reduce ins(%x : memref<6xi32>) outs(%y : memref<i32>) {kind = "max", onnx_node = "imax", schedule = #vision.schedule<{wg = 1 : i64}>}
  func.return
}
