// RUN: visc-opt %s -p vision-fuse-elementwise | filecheck %s

// GELU as exporters write it, x * 0.5 * (1 + erf(x / sqrt(2))): five maps, x read by two of
// them. Merging single-use producers into their consumer makes it one map over x (the Gelu
// op of opset 20 imports as that one map directly).
// CHECK-LABEL: func.func @erf_gelu
// CHECK-NEXT:    %[[G:.*]] = vision.map ins(%x : tensor<2x16xf32>) {onnx_node = "div+erf+add+mul+half", onnx_op = "Div+Erf+Add+Mul"} body {
// CHECK-NEXT:    ^{{.*}}(%[[X:.*]]: f32):
// CHECK:           %[[D:.*]] = arith.divf %[[X]], %{{.*}} : f32
// CHECK-NEXT:      %[[E:.*]] = math.erf %[[D]] : f32
// CHECK:           %[[A:.*]] = arith.addf %[[E]], %{{.*}} : f32
// CHECK-NEXT:      %[[M:.*]] = arith.mulf %[[X]], %[[A]] : f32
// CHECK:           %[[H:.*]] = arith.mulf %[[M]], %{{.*}} : f32
// CHECK-NEXT:      vision.yield %[[H]] : f32
// CHECK-NEXT:    } -> tensor<2x16xf32>
// CHECK-NEXT:    func.return %[[G]]
func.func @erf_gelu(%x: tensor<2x16xf32>) -> tensor<2x16xf32> {
  %d = vision.map ins(%x : tensor<2x16xf32>) {onnx_node = "div", onnx_op = "Div"} body {
  ^bb0(%a: f32):
    %c = arith.constant 1.41421354 : f32
    %r = arith.divf %a, %c : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  %e = vision.map ins(%d : tensor<2x16xf32>) {onnx_node = "erf", onnx_op = "Erf"} body {
  ^bb0(%a: f32):
    %r = math.erf %a : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  %p = vision.map ins(%e : tensor<2x16xf32>) {onnx_node = "add", onnx_op = "Add"} body {
  ^bb0(%a: f32):
    %c = arith.constant 1.0 : f32
    %r = arith.addf %a, %c : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  %m = vision.map ins(%x, %p : tensor<2x16xf32>, tensor<2x16xf32>) {onnx_node = "mul", onnx_op = "Mul"} body {
  ^bb0(%a: f32, %b: f32):
    %r = arith.mulf %a, %b : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  %h = vision.map ins(%m : tensor<2x16xf32>) {onnx_node = "half", onnx_op = "Mul"} body {
  ^bb0(%a: f32):
    %c = arith.constant 0.5 : f32
    %r = arith.mulf %a, %c : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  func.return %h : tensor<2x16xf32>
}

// After a Linear, the whole GELU is the matmul's epilogue: one kernel.
// CHECK-LABEL: func.func @linear_gelu
// CHECK-NEXT:    %[[W:.*]] = vision.weight @w
// CHECK-NEXT:    %[[Y:.*]] = vision.matmul ins(%x, %[[W]] : tensor<2x8xf32>, tensor<8x16xf32>) {onnx_node = "fc+erf+add+mul+half", {{.*}}} body {
// CHECK-NEXT:    ^{{.*}}(%[[ACC:.*]]: f32):
// CHECK:           math.erf
// CHECK:           arith.mulf %[[ACC]], %{{.*}} : f32
// CHECK:         } -> tensor<2x16xf32>
// CHECK-NEXT:    func.return %[[Y]]
func.func @linear_gelu(%x: tensor<2x8xf32>) -> tensor<2x16xf32> {
  %w = vision.weight @w : tensor<8x16xf32>
  %y = vision.matmul ins(%x, %w : tensor<2x8xf32>, tensor<8x16xf32>) {onnx_node = "fc", onnx_op = "MatMul"} -> tensor<2x16xf32>
  %e = vision.map ins(%y : tensor<2x16xf32>) {onnx_node = "erf", onnx_op = "Mul+Erf"} body {
  ^bb0(%a: f32):
    %c = arith.constant 0.707106769 : f32
    %s = arith.mulf %a, %c : f32
    %r = math.erf %s : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  %p = vision.map ins(%e : tensor<2x16xf32>) {onnx_node = "add", onnx_op = "Add"} body {
  ^bb0(%a: f32):
    %c = arith.constant 1.0 : f32
    %r = arith.addf %c, %a : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  %m = vision.map ins(%y, %p : tensor<2x16xf32>, tensor<2x16xf32>) {onnx_node = "mul", onnx_op = "Mul"} body {
  ^bb0(%a: f32, %b: f32):
    %r = arith.mulf %a, %b : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  %h = vision.map ins(%m : tensor<2x16xf32>) {onnx_node = "half", onnx_op = "Mul"} body {
  ^bb0(%a: f32):
    %c = arith.constant 0.5 : f32
    %r = arith.mulf %c, %a : f32
    vision.yield %r : f32
  } -> tensor<2x16xf32>
  func.return %h : tensor<2x16xf32>
}

// x also read elsewhere (a residual): x's producer stays, the GELU is still one map.
// CHECK-LABEL: func.func @shared_input
// CHECK:         %[[X:.*]] = vision.map ins(%a, %b : {{.*}}) {onnx_node = "x", onnx_op = "Add"}
// CHECK:         %[[G:.*]] = vision.map ins(%[[X]] : tensor<4xf32>) {onnx_node = "erf+add+mul"
// CHECK:         func.return %[[G]], %[[X]]
func.func @shared_input(%a: tensor<4xf32>, %b: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %x = vision.map ins(%a, %b : tensor<4xf32>, tensor<4xf32>) {onnx_node = "x", onnx_op = "Add"} body {
  ^bb0(%p: f32, %q: f32):
    %r = arith.addf %p, %q : f32
    vision.yield %r : f32
  } -> tensor<4xf32>
  %e = vision.map ins(%x : tensor<4xf32>) {onnx_node = "erf", onnx_op = "Erf"} body {
  ^bb0(%p: f32):
    %c = arith.constant 0.707106769 : f32
    %s = arith.mulf %p, %c : f32
    %r = math.erf %s : f32
    vision.yield %r : f32
  } -> tensor<4xf32>
  %p1 = vision.map ins(%e : tensor<4xf32>) {onnx_node = "add", onnx_op = "Add"} body {
  ^bb0(%p: f32):
    %c = arith.constant 1.0 : f32
    %r = arith.addf %c, %p : f32
    vision.yield %r : f32
  } -> tensor<4xf32>
  %g = vision.map ins(%x, %p1 : tensor<4xf32>, tensor<4xf32>) {onnx_node = "mul", onnx_op = "Mul"} body {
  ^bb0(%p: f32, %q: f32):
    %h = arith.constant 0.5 : f32
    %s = arith.mulf %p, %h : f32
    %r = arith.mulf %s, %q : f32
    vision.yield %r : f32
  } -> tensor<4xf32>
  func.return %g, %x : tensor<4xf32>, tensor<4xf32>
}
