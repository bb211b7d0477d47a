// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s
// RUN: visc-opt %s -p lower-vision-to-loops | visc-opt | filecheck %s

// CPU-style schedule: 2 channels x 1 group of 8 lanes per thread. Interior groups read each
// input row segment with one vector load; the edge groups (padding) assemble their lanes from
// masked scalar loads; padding rows skip the channel loop; the relu epilogue runs on vectors
// and the result is one vector store per channel.

func.func @main(%x: memref<1x3x4x16xf32>, %out: memref<1x4x4x16xf32>) {
  %w = vision.weight @w : memref<4x3x3x3xf32>
  vision.conv2d ins(%x, %w : memref<1x3x4x16xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x16xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "cv", schedule = #vision.schedule<{wg = 8 : i64, tile_oc = 2 : i64, vec = 8 : i64}>} body {
  ^bb0(%a: f32):
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %a, %z : f32
    vision.yield %m : f32
  }
  func.return
}

// CHECK:      "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 3, 3, 3, 0>}> ({
// CHECK:        %[[ZV:.*]] = vector.broadcast %{{.*}} : f32 to vector<8xf32>
// CHECK:        scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>) {
// CHECK:          scf.if %{{.*}} -> (vector<8xf32>, vector<8xf32>) {
// CHECK:            scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>) {
// CHECK:              %[[X:.*]] = scf.if %{{.*}} -> (vector<8xf32>) {
// CHECK-NEXT:           %[[V:.*]] = vector.load %x[{{.*}}] : memref<1x3x4x16xf32>, vector<8xf32>
// CHECK-NEXT:           scf.yield %[[V]] : vector<8xf32>
// CHECK-NEXT:         } else {
// CHECK-COUNT-8:        memref.load %x
// CHECK:                vector.insert
// CHECK:              }
// CHECK:              %[[W0:.*]] = memref.load %w
// CHECK:              %[[B0:.*]] = vector.broadcast %[[W0]] : f32 to vector<8xf32>
// CHECK:              vector.fma %[[X]], %[[B0]], %{{.*}} : vector<8xf32>
// CHECK:        arith.maximumf %{{.*}}, %{{.*}} : vector<8xf32>
// CHECK-NEXT:   vector.store %{{.*}}, %out[{{.*}}] : memref<1x4x4x16xf32>, vector<8xf32>
// CHECK:        arith.maximumf %{{.*}}, %{{.*}} : vector<8xf32>
// CHECK-NEXT:   vector.store
// CHECK:      }) {kernel_name = "conv2d_cv", workgroup_size = 8 : i64{{.*}}}
