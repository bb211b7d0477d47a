// RUN: visc-opt %s -p vision-canonicalize | filecheck %s

// CHECK-LABEL: func.func @views
// CHECK-NEXT:    %[[W:.*]] = vision.weight @w : tensor<2x3xf32>
// CHECK-NEXT:    %[[R:.*]] = vision.reshape ins(%x : tensor<1x6xf32>) {onnx_node = "r1+r2"} -> tensor<3x2xf32>
// CHECK-NEXT:    %[[T:.*]] = vision.transpose ins(%[[R]] : tensor<3x2xf32>) {onnx_node = "t1", perm = array<i64: 1, 0>} -> tensor<2x3xf32>
// CHECK-NEXT:    %[[M:.*]] = vision.map ins(%[[T]], %[[W]] : tensor<2x3xf32>, tensor<2x3xf32>)
// CHECK-NEXT:    ^{{.*}}(%[[A:.*]]: f32, %[[B:.*]]: f32):
// CHECK-NEXT:      %[[S:.*]] = arith.addf %[[A]], %[[B]] : f32
// CHECK-NEXT:      vision.yield %[[S]] : f32
// CHECK:         func.return %[[M]], %x : tensor<2x3xf32>, tensor<1x6xf32>
func.func @views(%x: tensor<1x6xf32>) -> (tensor<2x3xf32>, tensor<1x6xf32>) {
  %w = vision.weight @w : tensor<2x3xf32>
  %w2 = vision.weight @w : tensor<2x3xf32>
  %unused = vision.weight @other : tensor<4xf32>
  %r1 = vision.reshape ins(%x : tensor<1x6xf32>) {onnx_node = "r1"} -> tensor<6xf32>
  %r2 = vision.reshape ins(%r1 : tensor<6xf32>) {onnx_node = "r2"} -> tensor<3x2xf32>
  %t1 = vision.transpose ins(%r2 : tensor<3x2xf32>) {onnx_node = "t1", perm = array<i64: 1, 0>} -> tensor<2x3xf32>
  %t2 = vision.transpose ins(%t1 : tensor<2x3xf32>) {onnx_node = "t2", perm = array<i64: 1, 0>} -> tensor<3x2xf32>
  %t3 = vision.transpose ins(%t2 : tensor<3x2xf32>) {onnx_node = "t3", perm = array<i64: 1, 0>} -> tensor<2x3xf32>
  %id = vision.map ins(%t3 : tensor<2x3xf32>) {onnx_node = "id"} body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  } -> tensor<2x3xf32>
  %m = vision.map ins(%id, %w2 : tensor<2x3xf32>, tensor<2x3xf32>) {onnx_node = "add"} body {
  ^bb0(%a: f32, %b: f32):
    %s = arith.addf %a, %b : f32
    %dead = arith.mulf %a, %b : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  %dead = vision.map ins(%m : tensor<2x3xf32>) {onnx_node = "unused"} body {
  ^bb0(%a: f32):
    %n = arith.negf %a : f32
    vision.yield %n : f32
  } -> tensor<2x3xf32>
  %r3 = vision.reshape ins(%x : tensor<1x6xf32>) {onnx_node = "same"} -> tensor<1x6xf32>
  %c = vision.concat ins(%r3 : tensor<1x6xf32>) {axis = 0 : i64} -> tensor<1x6xf32>
  %s = vision.slice ins(%c : tensor<1x6xf32>) {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} -> tensor<1x6xf32>
  func.return %m, %s : tensor<2x3xf32>, tensor<1x6xf32>
}

// Two transposes that do not cancel become one with the composed permutation.
// CHECK-LABEL: func.func @compose
// CHECK-NEXT:    %{{.*}} = vision.transpose ins(%x : tensor<2x3x4xf32>) {onnx_node = "a+b", perm = array<i64: 2, 0, 1>} -> tensor<4x2x3xf32>
// CHECK-NEXT:    func.return
func.func @compose(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %a = vision.transpose ins(%x : tensor<2x3x4xf32>) {onnx_node = "a", perm = array<i64: 1, 0, 2>} -> tensor<3x2x4xf32>
  %b = vision.transpose ins(%a : tensor<3x2x4xf32>) {onnx_node = "b", perm = array<i64: 2, 1, 0>} -> tensor<4x2x3xf32>
  func.return %b : tensor<4x2x3xf32>
}

// Duplicate map inputs and duplicate body constants collapse; a map that changes the
// element type or shape is not an identity.
// CHECK-LABEL: func.func @dupes
// CHECK:         vision.map ins(%x : tensor<4xf32>) body {
// CHECK-NEXT:    ^{{.*}}(%[[A:.*]]: f32):
// CHECK-NEXT:      %[[C:.*]] = arith.constant 2.000000e+00 : f32
// CHECK-NEXT:      %[[M:.*]] = arith.mulf %[[A]], %[[C]] : f32
// CHECK-NEXT:      %[[N:.*]] = arith.addf %[[A]], %[[C]] : f32
// CHECK-NEXT:      %[[S:.*]] = arith.addf %[[M]], %[[N]] : f32
// CHECK-NEXT:      vision.yield %[[S]] : f32
// CHECK:         vision.map ins(%{{.*}} : tensor<4xf32>) body {
// CHECK:         arith.extf
// CHECK:         } -> tensor<4xf64>
// CHECK:         vision.map ins(%{{.*}} : tensor<4xf64>) body {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f64):
// CHECK-NEXT:      vision.yield
// CHECK-NEXT:    } -> tensor<2x4xf64>
func.func @dupes(%x: tensor<4xf32>) -> tensor<2x4xf64> {
  %m = vision.map ins(%x, %x : tensor<4xf32>, tensor<4xf32>) body {
  ^bb0(%a: f32, %b: f32):
    %c1 = arith.constant 2.0 : f32
    %c2 = arith.constant 2.0 : f32
    %p = arith.mulf %a, %c1 : f32
    %q = arith.addf %b, %c2 : f32
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<4xf32>
  %e = vision.map ins(%m : tensor<4xf32>) body {
  ^bb0(%a: f32):
    %f = arith.extf %a : f32 to f64
    vision.yield %f : f64
  } -> tensor<4xf64>
  %b = vision.map ins(%e : tensor<4xf64>) body {
  ^bb0(%a: f64):
    vision.yield %a : f64
  } -> tensor<2x4xf64>
  func.return %b : tensor<2x4xf64>
}

// On memrefs ops have effects: nothing is removed even without uses.
// CHECK-LABEL: func.func @buffers
// CHECK:         vision.map ins(%x : memref<4xf32>) outs(%y : memref<4xf32>)
func.func @buffers(%x: memref<4xf32>, %y: memref<4xf32>) {
  vision.map ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  }
  func.return
}
