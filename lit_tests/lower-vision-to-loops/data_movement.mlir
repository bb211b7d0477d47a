// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// CHECK-LABEL: func.func @concat
// CHECK:       "scf.parallel"
// CHECK:         memref.store %{{.*}}, %out[%{{.*}}, %{{.*}}] : memref<2x5xf32>
// CHECK:       }) {kernel_name = "concat_cat_0", workgroup_size = 4 : i64{{.*}}}
// CHECK:       "scf.parallel"
// CHECK:         %[[OFF:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK:         memref.store %{{.*}}, %out[%{{.*}}, %[[OFF]]] : memref<2x5xf32>
// CHECK:       }) {kernel_name = "concat_cat_1", workgroup_size = 4 : i64{{.*}}}
func.func @concat(%a: memref<2x2xf32>, %b: memref<2x3xf32>, %out: memref<2x5xf32>) {
  vision.concat ins(%a, %b : memref<2x2xf32>, memref<2x3xf32>) outs(%out : memref<2x5xf32>) {axis = -1 : i64, onnx_node = "cat", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// CHECK-LABEL: func.func @split
// CHECK-COUNT-2: kernel_name = "split_sp_{{[01]}}"
func.func @split(%a: memref<5x2xi64>, %o0: memref<2x2xi64>, %o1: memref<3x2xi64>) {
  vision.split ins(%a : memref<5x2xi64>) outs(%o0, %o1 : memref<2x2xi64>, memref<3x2xi64>) {axis = 0 : i64, onnx_node = "sp", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// A negative step reads backwards: x[5 - 2 i].
// CHECK-LABEL: func.func @slice
// CHECK:       ^bb0(%[[I:.*]]: index):
// CHECK:         %[[M:.*]] = arith.muli %[[I]], %{{.*}} : index
// CHECK-NEXT:    %[[S:.*]] = arith.addi %[[M]], %{{.*}} : index
// CHECK-NEXT:    memref.load %x[%[[S]]] : memref<6xf32>
func.func @slice(%x: memref<6xf32>, %out: memref<3xf32>) {
  vision.slice ins(%x : memref<6xf32>) outs(%out : memref<3xf32>) {starts = array<i64: 5>, steps = array<i64: -2>, onnx_node = "sl", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// Constant padding: masked load then select of the pad value; unpadded dims untouched.
// CHECK-LABEL: func.func @pad_constant
// CHECK:         %[[V:.*]] = memref.load %x
// CHECK-NEXT:    %[[R:.*]] = arith.select %{{.*}}, %[[V]], %{{.*}} : f32
// CHECK-NEXT:    memref.store %[[R]], %out
func.func @pad_constant(%x: memref<2x3xf32>, %out: memref<2x6xf32>) {
  vision.pad ins(%x : memref<2x3xf32>) outs(%out : memref<2x6xf32>) {pads = array<i64: 0, 1, 0, 2>, mode = "constant", value = 1.500000e+00 : f64, onnx_node = "pc", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// Reflect padding: index folded into one period of 2 (n - 1), mirrored in its second half.
// CHECK-LABEL: func.func @pad_reflect
// CHECK:         arith.remsi
// CHECK:         arith.cmpi slt
// CHECK:         arith.select
// CHECK:         memref.load %x
func.func @pad_reflect(%x: memref<3xf32>, %out: memref<9xf32>) {
  vision.pad ins(%x : memref<3xf32>) outs(%out : memref<9xf32>) {pads = array<i64: 3, 3>, mode = "reflect", value = 0.000000e+00 : f64, onnx_node = "pr", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// CHECK-LABEL: func.func @transpose
// CHECK:       ^bb0(%[[I:.*]]: index, %[[J:.*]]: index, %[[K:.*]]: index):
// CHECK:         %[[V:.*]] = memref.load %x[%[[J]], %[[K]], %[[I]]] : memref<2x3x4xf32>
// CHECK-NEXT:    memref.store %[[V]], %out[%[[I]], %[[J]], %[[K]]] : memref<4x2x3xf32>
func.func @transpose(%x: memref<2x3x4xf32>, %out: memref<4x2x3xf32>) {
  vision.transpose ins(%x : memref<2x3x4xf32>) outs(%out : memref<4x2x3xf32>) {perm = array<i64: 2, 0, 1>, onnx_node = "tr", schedule = #vision.schedule<{wg = 8 : i64}>}
  func.return
}

// Gather: negative indices wrap, then clamp into range.
// CHECK-LABEL: func.func @gather
// CHECK:         %[[RAW:.*]] = memref.load %idx
// CHECK-NEXT:    %[[I:.*]] = arith.index_cast %[[RAW]] : i64 to index
// CHECK-NEXT:    arith.cmpi slt, %[[I]]
// CHECK:         arith.select
// CHECK:         memref.load %data
func.func @gather(%data: memref<5x3xf32>, %idx: memref<2x2xi64>, %out: memref<2x2x3xf32>) {
  vision.gather ins(%data, %idx : memref<5x3xf32>, memref<2x2xi64>) outs(%out : memref<2x2x3xf32>) {axis = 0 : i64, onnx_node = "ga", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}
