// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// flat = 1: a 1x1 conv at stride 1 sees its 3x5 output as one row of 15 columns through
// vision.reshape views of the input, the output and the full-size residual (the per-channel
// operand already broadcasts). 15 columns in groups of 8: the last group is shifted to
// columns 7..14, so every load is a whole vector, and it stores only its lanes 1..7.

func.func @main(%x: memref<1x8x3x5xf32>, %skip: memref<1x4x3x5xf32>, %out: memref<1x4x3x5xf32>) {
  %w = vision.weight @w : memref<4x8x1x1xf32>
  %s = vision.weight @s : memref<4x1x1xf32>
  vision.conv2d ins(%x, %w : memref<1x8x3x5xf32>, memref<4x8x1x1xf32>) fuse(%skip, %s : memref<1x4x3x5xf32>, memref<4x1x1xf32>) outs(%out : memref<1x4x3x5xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "pw", schedule = #vision.schedule<{wg = 8 : i64, tile_oc = 2 : i64, tile_ow = 2 : i64, vec = 8 : i64, flat = 1 : i64}>} body {
  ^bb0(%a: f32, %r: f32, %m: f32):
    %t = arith.mulf %a, %m : f32
    %u = arith.addf %t, %r : f32
    vision.yield %u : f32
  }
  func.return
}

// CHECK:      %[[X:.*]] = vision.reshape ins(%x : memref<1x8x3x5xf32>) {onnx_node = "pw:flat_in", onnx_op = "Reshape"} -> memref<1x8x1x15xf32>
// CHECK-NEXT: %[[O:.*]] = vision.reshape ins(%out : memref<1x4x3x5xf32>) {{.*}} -> memref<1x4x1x15xf32>
// CHECK-NEXT: %[[R:.*]] = vision.reshape ins(%skip : memref<1x4x3x5xf32>) {{.*}} -> memref<1x4x1x15xf32>
// CHECK:      "scf.parallel"
// CHECK-NOT:    vision.reshape
// CHECK:        scf.for
// CHECK-NEXT:     vector.load %[[X]][%{{.*}}, %{{.*}}, %{{.*}}, %[[C0:.*]]] : memref<1x8x1x15xf32>, vector<8xf32>
// CHECK-NEXT:     vector.load %[[X]][%{{.*}}, %{{.*}}, %{{.*}}, %[[C7:.*]]] : memref<1x8x1x15xf32>, vector<8xf32>
// CHECK:        vector.load %[[R]]
// CHECK:        memref.load %s
// CHECK:        vector.store %{{.*}}, %[[O]][%{{.*}}, %{{.*}}, %{{.*}}, %[[C0]]]
// The shifted group (columns 7..14) stores lanes 1..7 only.
// CHECK:        vector.load %[[R]][%{{.*}}, %{{.*}}, %{{.*}}, %[[C7]]]
// CHECK-NOT:    vector.extract %{{.*}}[0]
// CHECK:        vector.extract %{{.*}}[1]
// CHECK-COUNT-7: memref.store %{{.*}}, %[[O]]
// CHECK:      }) {kernel_name = "conv2d_pw", workgroup_size = 8 : i64{{.*}}}
