// RUN: python -c "import numpy as np; np.savez('%t.npz', a=np.arange(6, dtype=np.float32).reshape(3, 2), b=np.array([0.0, 1.0, 2.0], np.float32))"
// RUN: visc-opt %s --weights %t.npz --save-weights %t.out.npz -p vision-const-eval | filecheck %s
// RUN: python -c "import numpy as np; d = np.load('%t.out.npz'); print(sorted(d.files)); print(d['scale'].tolist())" | filecheck %s --check-prefix=VALUES
// RUN: visc-opt %s -p vision-const-eval | filecheck %s --check-prefix=NOSTORE

// transpose(a) * (b + 1) is computed once: one new weight replaces the chain, and the
// weights only the chain used are gone. The op reading the input stays.
// CHECK-LABEL: func.func @main
// CHECK-NEXT:    %{{.*}} = vision.weight @scale : tensor<2x3xf32>
// CHECK-NEXT:    vision.map ins(%x, %{{.*}} : tensor<2x3xf32>, tensor<2x3xf32>) {onnx_node = "use"}
// CHECK-NOT:     vision.transpose
// VALUES: ['a', 'b', 'scale', 'tr']
// VALUES-NEXT: {{\[\[}}0.0, 4.0, 12.0], [1.0, 6.0, 15.0]]

// Without a weight store nothing changes.
// NOSTORE: vision.transpose
// NOSTORE: onnx_node = "scale"
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = vision.weight @a : tensor<3x2xf32>
  %b = vision.weight @b : tensor<3xf32>
  %t = vision.transpose ins(%a : tensor<3x2xf32>) {perm = array<i64: 1, 0>, onnx_node = "tr"} -> tensor<2x3xf32>
  %e = vision.map ins(%t, %b : tensor<2x3xf32>, tensor<3xf32>) {onnx_node = "scale"} body {
  ^bb0(%p: f32, %q: f32):
    %one = arith.constant 1.0 : f32
    %s = arith.addf %q, %one : f32
    %m = arith.mulf %p, %s : f32
    vision.yield %m : f32
  } -> tensor<2x3xf32>
  %y = vision.map ins(%x, %e : tensor<2x3xf32>, tensor<2x3xf32>) {onnx_node = "use"} body {
  ^bb0(%p: f32, %q: f32):
    %s = arith.addf %p, %q : f32
    vision.yield %s : f32
  } -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}
