// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// A map runs over its coalesced dims (elementwise.py): adjacent output dims that every
// operand spans whole, or broadcasts over together, merge through vision.reshape views.
// A squeeze-and-excitation scale (x 1x8x3x3 times s 1x8x1x1) runs over 1x8x9 (the size-1
// batch joins the channels: 8x9), reading s at [c, 0]; a plain relu over 2x3x4 is one dim of 24.

// CHECK-LABEL: func.func @scale
// CHECK:       %[[X:.*]] = vision.reshape ins(%x : memref<1x8x3x3xf32>) {onnx_node = "scale:coalesced0", onnx_op = "Reshape"} -> memref<8x9xf32>
// CHECK-NEXT:  %[[S:.*]] = vision.reshape ins(%s : memref<1x8x1x1xf32>) {onnx_node = "scale:coalesced1", onnx_op = "Reshape"} -> memref<8x1xf32>
// CHECK-NEXT:  %[[O:.*]] = vision.reshape ins(%out : memref<1x8x3x3xf32>) {onnx_node = "scale:coalesced_out", onnx_op = "Reshape"} -> memref<8x9xf32>
// CHECK:       "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 2, 2, 2, 0>}> ({
// CHECK-NEXT:  ^bb0(%[[C:.*]]: index, %[[P:.*]]: index):
// CHECK:         %[[A:.*]] = memref.load %[[X]][%[[C]], %[[P]]] : memref<8x9xf32>
// CHECK-NEXT:    %[[B:.*]] = memref.load %[[S]][%[[C]], %{{.*}}] : memref<8x1xf32>
// CHECK-NEXT:    %[[M:.*]] = arith.mulf %[[A]], %[[B]] : f32
// CHECK-NEXT:    memref.store %[[M]], %[[O]][%[[C]], %[[P]]] : memref<8x9xf32>
func.func @scale(%x: memref<1x8x3x3xf32>, %s: memref<1x8x1x1xf32>, %out: memref<1x8x3x3xf32>) {
  vision.map ins(%x, %s : memref<1x8x3x3xf32>, memref<1x8x1x1xf32>) outs(%out : memref<1x8x3x3xf32>) {onnx_node = "scale", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%a: f32, %b: f32):
    %m = arith.mulf %a, %b : f32
    vision.yield %m : f32
  }
  func.return
}

// CHECK-LABEL: func.func @relu
// CHECK:       vision.reshape ins(%a : memref<2x3x4xf32>) {{.*}} -> memref<24xf32>
// CHECK:       "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
func.func @relu(%a: memref<2x3x4xf32>, %out: memref<2x3x4xf32>) {
  vision.map ins(%a : memref<2x3x4xf32>) outs(%out : memref<2x3x4xf32>) {onnx_node = "relu", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%v: f32):
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %v, %z : f32
    vision.yield %m : f32
  }
  func.return
}
