// RUN: visc-opt %s | filecheck %s
// RUN: visc-opt %s | visc-opt | filecheck %s
// Every vision op prints in its custom syntax and parses back to the same module.

// CHECK-LABEL: func.func @tensors
func.func @tensors(%x: tensor<1x4x8x8xf32>, %r: tensor<1x8x8x8xf32>, %m: tensor<2x3xf32>, %i: tensor<2xi64>) -> tensor<1x8x8x8xf32> {
  // CHECK: %w = vision.weight @conv_w : tensor<8x4x3x3xf32>
  %w = vision.weight @conv_w : tensor<8x4x3x3xf32>
  %b = vision.weight @conv_b : tensor<8xf32>
  // CHECK: vision.conv2d ins(%x, %w, %b : tensor<1x4x8x8xf32>, tensor<8x4x3x3xf32>, tensor<8xf32>) fuse(%r : tensor<1x8x8x8xf32>)
  // CHECK-SAME: groups = 1 : i64
  // CHECK-NEXT: ^bb0(%acc: f32, %s: f32):
  // CHECK: vision.yield %{{.*}} : f32
  // CHECK-NEXT: } -> tensor<1x8x8x8xf32>
  %y = vision.conv2d ins(%x, %w, %b : tensor<1x4x8x8xf32>, tensor<8x4x3x3xf32>, tensor<8xf32>) fuse(%r : tensor<1x8x8x8xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv0", onnx_op = "Conv", schedule = #vision.schedule<{tile_oc = 4 : i64, wg = 64 : i64}>} body {
  ^bb0(%acc: f32, %s: f32):
    %0 = arith.addf %acc, %s : f32
    %c = arith.constant 0.000000e+00 : f32
    %1 = arith.maximumf %0, %c : f32
    vision.yield %1 : f32
  } -> tensor<1x8x8x8xf32>
  // CHECK: vision.conv2d_transpose ins(%x, %wt : tensor<1x4x8x8xf32>, tensor<4x2x2x2xf32>)
  %wt = vision.weight @convt_w : tensor<4x2x2x2xf32>
  %ct = vision.conv2d_transpose ins(%x, %wt : tensor<1x4x8x8xf32>, tensor<4x2x2x2xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, output_padding = array<i64: 0, 0>} -> tensor<1x2x16x16xf32>
  // CHECK: vision.pool2d ins(%y : tensor<1x8x8x8xf32>) {kind = "max"
  %p = vision.pool2d ins(%y : tensor<1x8x8x8xf32>) {kind = "max", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64} -> tensor<1x8x4x4xf32>
  // CHECK: vision.global_pool ins(%p : tensor<1x8x4x4xf32>) {kind = "avg"} -> tensor<1x8x1x1xf32>
  %g = vision.global_pool ins(%p : tensor<1x8x4x4xf32>) {kind = "avg"} -> tensor<1x8x1x1xf32>
  %sc = vision.weight @bn_s : tensor<8xf32>
  // CHECK: vision.batch_norm ins(%y, %sc, %sc, %sc, %sc
  %bn = vision.batch_norm ins(%y, %sc, %sc, %sc, %sc : tensor<1x8x8x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) {epsilon = 1.000000e-05 : f32} -> tensor<1x8x8x8xf32>
  // CHECK: vision.lrn
  %l = vision.lrn ins(%bn : tensor<1x8x8x8xf32>) {size = 5 : i64, alpha = 1.000000e-04 : f32, beta = 7.500000e-01 : f32, bias = 1.000000e+00 : f32} -> tensor<1x8x8x8xf32>
  // CHECK: vision.reshape ins(%g : tensor<1x8x1x1xf32>) -> tensor<1x8xf32>
  %f = vision.reshape ins(%g : tensor<1x8x1x1xf32>) -> tensor<1x8xf32>
  %fw = vision.weight @fc_w : tensor<3x8xf32>
  // CHECK: vision.matmul ins(%f, %fw : tensor<1x8xf32>, tensor<3x8xf32>) {transpose_a = 0 : i64, transpose_b = 1 : i64} -> tensor<1x3xf32>
  %mm = vision.matmul ins(%f, %fw : tensor<1x8xf32>, tensor<3x8xf32>) {transpose_a = 0 : i64, transpose_b = 1 : i64} -> tensor<1x3xf32>
  // CHECK: vision.softmax ins(%mm : tensor<1x3xf32>) {axis = 1 : i64} -> tensor<1x3xf32>
  %sm = vision.softmax ins(%mm : tensor<1x3xf32>) {axis = 1 : i64} -> tensor<1x3xf32>
  // CHECK: vision.log_softmax
  %lsm = vision.log_softmax ins(%mm : tensor<1x3xf32>) {axis = 1 : i64} -> tensor<1x3xf32>
  // CHECK: vision.concat ins(%y, %bn : tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>) {axis = 1 : i64} -> tensor<1x16x8x8xf32>
  %cc = vision.concat ins(%y, %bn : tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>) {axis = 1 : i64} -> tensor<1x16x8x8xf32>
  // CHECK: %{{.*}}, %{{.*}} = vision.split ins(%cc : tensor<1x16x8x8xf32>) {axis = 1 : i64} -> tensor<1x4x8x8xf32>, tensor<1x12x8x8xf32>
  %s0, %s1 = vision.split ins(%cc : tensor<1x16x8x8xf32>) {axis = 1 : i64} -> tensor<1x4x8x8xf32>, tensor<1x12x8x8xf32>
  // CHECK: vision.slice
  %sl = vision.slice ins(%s1 : tensor<1x12x8x8xf32>) {starts = array<i64: 0, 11, 0, 7>, steps = array<i64: 1, -2, 1, -1>} -> tensor<1x6x8x8xf32>
  // CHECK: vision.pad
  %pd = vision.pad ins(%sl : tensor<1x6x8x8xf32>) {pads = array<i64: 0, 0, 1, 1, 0, 0, 1, 1>, mode = "reflect", value = 0.000000e+00 : f32} -> tensor<1x6x10x10xf32>
  // CHECK: vision.transpose ins(%pd : tensor<1x6x10x10xf32>) {perm = array<i64: 0, 2, 3, 1>} -> tensor<1x10x10x6xf32>
  %tr = vision.transpose ins(%pd : tensor<1x6x10x10xf32>) {perm = array<i64: 0, 2, 3, 1>} -> tensor<1x10x10x6xf32>
  // CHECK: vision.resize
  %rs = vision.resize ins(%y : tensor<1x8x8x8xf32>) {mode = "linear", coord_mode = "half_pixel", nearest_mode = "round_prefer_floor", scales = array<f64: 1.0, 1.0, 2.0, 2.0>} -> tensor<1x8x16x16xf32>
  // CHECK: vision.reduce ins(%rs : tensor<1x8x16x16xf32>) {kind = "mean", axes = array<i64: 2, 3>} -> tensor<1x8xf32>
  %rd = vision.reduce ins(%rs : tensor<1x8x16x16xf32>) {kind = "mean", axes = array<i64: 2, 3>} -> tensor<1x8xf32>
  // CHECK: vision.gather ins(%m, %i : tensor<2x3xf32>, tensor<2xi64>) {axis = 1 : i64} -> tensor<2x2xf32>
  %ga = vision.gather ins(%m, %i : tensor<2x3xf32>, tensor<2xi64>) {axis = 1 : i64} -> tensor<2x2xf32>
  // CHECK: vision.map ins(%m : tensor<2x3xf32>) body {
  // CHECK: arith.cmpf ogt
  // CHECK: } -> tensor<2x3xi1>
  %mp = vision.map ins(%m : tensor<2x3xf32>) body {
  ^bb0(%a: f32):
    %z = arith.constant 0.000000e+00 : f32
    %c1 = arith.cmpf ogt, %a, %z : f32
    vision.yield %c1 : i1
  } -> tensor<2x3xi1>
  func.return %y : tensor<1x8x8x8xf32>
}

// CHECK-LABEL: func.func @buffers
// CHECK: vision.buffer offset 1024 : memref<1x8x8x8xf32>
// CHECK: vision.conv2d ins(%x, %w : memref<1x4x8x8xf32>, memref<8x4x3x3xf32>) outs(%t : memref<1x8x8x8xf32>)
// CHECK: vision.reshape ins(%t : memref<1x8x8x8xf32>) -> memref<512xf32>
// CHECK: %h = vision.subbuffer %t offset 1024 : memref<1x8x8x8xf32> -> memref<1x4x8x8xf32>
// CHECK: vision.map ins(%x : memref<1x4x8x8xf32>) outs(%h : memref<1x4x8x8xf32>)
func.func @buffers(%x: memref<1x4x8x8xf32>, %o: memref<512xf32>) attributes {vision.arena_size = 3072 : i64} {
  %w = vision.weight @conv_w : memref<8x4x3x3xf32>
  %t = vision.buffer offset 1024 : memref<1x8x8x8xf32>
  vision.conv2d ins(%x, %w : memref<1x4x8x8xf32>, memref<8x4x3x3xf32>) outs(%t : memref<1x8x8x8xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64}
  %v = vision.reshape ins(%t : memref<1x8x8x8xf32>) -> memref<512xf32>
  vision.map ins(%v : memref<512xf32>) outs(%o : memref<512xf32>) body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  }
  %h = vision.subbuffer %t offset 1024 : memref<1x8x8x8xf32> -> memref<1x4x8x8xf32>
  vision.map ins(%x : memref<1x4x8x8xf32>) outs(%h : memref<1x4x8x8xf32>) body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  }
  func.return
}

// A run-time check's status word.
// CHECK-LABEL: func.func @status
// CHECK: %s = vision.status "index out of range: axis 0 has 4 entries" {onnx_node = "g"} : memref<2xi64>
func.func @status() {
  %s = vision.status "index out of range: axis 0 has 4 entries" {onnx_node = "g"} : memref<2xi64>
  func.return
}

// Indexed reads and writes.
// CHECK-LABEL: func.func @indexed
// CHECK: %e = vision.gather_elements ins(%x, %i : tensor<4x3xf32>, tensor<2x3xi64>) {axis = 1 : i64} -> tensor<2x3xf32>
// CHECK: %n = vision.gather_nd ins(%x, %t : tensor<4x3xf32>, tensor<5x2xi64>) {batch_dims = 0 : i64} -> tensor<5xf32>
// CHECK: %s = vision.scatter_nd ins(%x, %r, %u : tensor<4x3xf32>, tensor<2x1xi64>, tensor<2x3xf32>) {reduction = "max"} -> tensor<4x3xf32>
func.func @indexed(%x: tensor<4x3xf32>, %i: tensor<2x3xi64>, %t: tensor<5x2xi64>, %r: tensor<2x1xi64>, %u: tensor<2x3xf32>) {
  %e = vision.gather_elements ins(%x, %i : tensor<4x3xf32>, tensor<2x3xi64>) {axis = 1 : i64} -> tensor<2x3xf32>
  %n = vision.gather_nd ins(%x, %t : tensor<4x3xf32>, tensor<5x2xi64>) {batch_dims = 0 : i64} -> tensor<5xf32>
  %s = vision.scatter_nd ins(%x, %r, %u : tensor<4x3xf32>, tensor<2x1xi64>, tensor<2x3xf32>) {reduction = "max"} -> tensor<4x3xf32>
  func.return
}
