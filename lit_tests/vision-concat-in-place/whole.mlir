// RUN: visc-opt %s -p vision-bufferize,vision-concat-in-place | filecheck %s

// Every input has its slab: the concat is gone, and the output buffer lives from the first
// producer to the last reader. A nested concat (%e into %f) puts its own slabs inside its
// slab of the outer output. Batch 2 (a dim before the axis is not 1) is left alone.
// CHECK:         %f = vision.buffer offset {{[0-9]+}} : memref<1x128x4x4xf32>
// CHECK-NEXT:    %e = vision.subbuffer %f offset 0 : memref<1x128x4x4xf32> -> memref<1x64x4x4xf32>
// CHECK-NEXT:    %a = vision.subbuffer %e offset 0 : memref<1x64x4x4xf32> -> memref<1x32x4x4xf32>
// CHECK:         %b = vision.subbuffer %e offset 2048 : memref<1x64x4x4xf32> -> memref<1x32x4x4xf32>
// CHECK:         %g = vision.subbuffer %f offset 4096 : memref<1x128x4x4xf32> -> memref<1x64x4x4xf32>
// CHECK-NOT:     vision.concat ins(%a
// CHECK-NOT:     vision.concat ins(%e
// CHECK:         vision.concat ins(%y, %y : memref<2x8xf32>, memref<2x8xf32>) outs(%{{.*}} : memref<2x16xf32>)
// CHECK-NOT:     in_place
func.func @main(%x: tensor<1x32x4x4xf32>, %y: tensor<2x8xf32>) -> (tensor<1x128x4x4xf32>, tensor<2x16xf32>) {
  %a = vision.map ins(%x : tensor<1x32x4x4xf32>) {onnx_node = "a"} body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x32x4x4xf32>
  %b = vision.map ins(%x : tensor<1x32x4x4xf32>) {onnx_node = "b"} body {
  ^bb0(%p: f32):
    %s = arith.addf %p, %p : f32
    vision.yield %s : f32
  } -> tensor<1x32x4x4xf32>
  %e = vision.concat ins(%a, %b : tensor<1x32x4x4xf32>, tensor<1x32x4x4xf32>) {axis = 1 : i64, onnx_node = "inner"} -> tensor<1x64x4x4xf32>
  %g = vision.map ins(%e : tensor<1x64x4x4xf32>) {onnx_node = "g"} body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x64x4x4xf32>
  %f = vision.concat ins(%e, %g : tensor<1x64x4x4xf32>, tensor<1x64x4x4xf32>) {axis = 1 : i64, onnx_node = "outer"} -> tensor<1x128x4x4xf32>
  %h = vision.map ins(%f : tensor<1x128x4x4xf32>) {onnx_node = "h"} body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x128x4x4xf32>
  %z = vision.concat ins(%y, %y : tensor<2x8xf32>, tensor<2x8xf32>) {axis = 1 : i64, onnx_node = "batch2"} -> tensor<2x16xf32>
  %k = vision.map ins(%z : tensor<2x16xf32>) {onnx_node = "k"} body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<2x16xf32>
  func.return %h, %k : tensor<1x128x4x4xf32>, tensor<2x16xf32>
}
