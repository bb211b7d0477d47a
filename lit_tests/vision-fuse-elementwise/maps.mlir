// RUN: visc-opt %s -p vision-fuse-elementwise | filecheck %s

// A chain of single-use maps becomes one map; an input read twice is read once.
// CHECK-LABEL: func.func @chain
// CHECK-NEXT:    %[[M:.*]] = vision.map ins(%x, %y : tensor<2x3xf32>, tensor<3xf32>) {onnx_node = "a+b+c", onnx_op = "Add+Mul+Relu"} body {
// CHECK-NEXT:    ^{{.*}}(%[[X:.*]]: f32, %[[Y:.*]]: f32):
// CHECK-NEXT:      %[[S:.*]] = arith.addf %[[X]], %[[Y]] : f32
// CHECK-NEXT:      %[[P:.*]] = arith.mulf %[[S]], %[[X]] : f32
// CHECK-NEXT:      %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[R:.*]] = arith.maximumf %[[P]], %[[Z]] : f32
// CHECK-NEXT:      vision.yield %[[R]] : f32
// CHECK-NEXT:    } -> tensor<2x3xf32>
// CHECK-NEXT:    func.return %[[M]]
func.func @chain(%x: tensor<2x3xf32>, %y: tensor<3xf32>) -> tensor<2x3xf32> {
  %a = vision.map ins(%x, %y : tensor<2x3xf32>, tensor<3xf32>) {onnx_node = "a", onnx_op = "Add"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  %b = vision.map ins(%a, %x : tensor<2x3xf32>, tensor<2x3xf32>) {onnx_node = "b", onnx_op = "Mul"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.mulf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  %c = vision.map ins(%b : tensor<2x3xf32>) {onnx_node = "c", onnx_op = "Relu"} body {
  ^bb0(%p: f32):
    %z = arith.constant 0.0 : f32
    %s = arith.maximumf %p, %z : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  func.return %c : tensor<2x3xf32>
}

// A producer with two users, or one that the consumer broadcasts (more elements), stays.
// CHECK-LABEL: func.func @no_fusion
// CHECK:         %[[A:.*]] = vision.map ins(%x : tensor<3xf32>)
// CHECK:         %[[B:.*]] = vision.map ins(%[[A]], %y : tensor<3xf32>, tensor<2x3xf32>)
// CHECK:         %[[C:.*]] = vision.map ins(%[[B]] : tensor<2x3xf32>)
// CHECK:         func.return %[[C]], %[[B]]
func.func @no_fusion(%x: tensor<3xf32>, %y: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
  %a = vision.map ins(%x : tensor<3xf32>) body {
  ^bb0(%p: f32):
    %s = math.exp %p : f32
    vision.yield %s : f32
  } -> tensor<3xf32>
  %b = vision.map ins(%a, %y : tensor<3xf32>, tensor<2x3xf32>) body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.mulf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  %c = vision.map ins(%b : tensor<2x3xf32>) body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  func.return %c, %b : tensor<2x3xf32>, tensor<2x3xf32>
}
