// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Ops that differ only in their ONNX node and their buffers lower once: the later ones get
// copies of the first one's views and kernels (vision_to_loops._lowering_key), over their
// own buffers, tagged with their own node and named after it. A body that differs (mul2)
// or a buffer read twice (sq) lowers anew.

// CHECK-LABEL: func.func @blocks
// CHECK:       %[[X1:.*]] = vision.reshape ins(%x : memref<1x8x3x3xf32>) {onnx_node = "scale1:coalesced0", onnx_op = "Reshape"} -> memref<8x9xf32>
// CHECK:       %[[O1:.*]] = vision.reshape ins(%y : memref<1x8x3x3xf32>) {onnx_node = "scale1:coalesced_out", onnx_op = "Reshape"} -> memref<8x9xf32>
// CHECK:       "scf.parallel"
// CHECK:         memref.load %[[X1]]
// CHECK:         arith.mulf
// CHECK:         memref.store %{{.*}}, %[[O1]]
// CHECK:       }) {kernel_name = "map_scale1", workgroup_size = 32 : i64, onnx_node = "scale1"}
// CHECK:       %[[X2:.*]] = vision.reshape ins(%y : memref<1x8x3x3xf32>) {onnx_node = "scale2:coalesced0", onnx_op = "Reshape"} -> memref<8x9xf32>
// CHECK:       %[[S2:.*]] = vision.reshape ins(%t : memref<1x8x1x1xf32>) {onnx_node = "scale2:coalesced1", onnx_op = "Reshape"} -> memref<8x1xf32>
// CHECK:       %[[O2:.*]] = vision.reshape ins(%z : memref<1x8x3x3xf32>) {onnx_node = "scale2:coalesced_out", onnx_op = "Reshape"} -> memref<8x9xf32>
// CHECK:       "scf.parallel"
// CHECK:         memref.load %[[X2]]
// CHECK:         memref.load %[[S2]]
// CHECK:         arith.mulf
// CHECK:         memref.store %{{.*}}, %[[O2]]
// CHECK:       }) {kernel_name = "map_scale2", workgroup_size = 32 : i64, onnx_node = "scale2"}
// CHECK:       "scf.parallel"
// CHECK:         arith.addf
// CHECK:       }) {kernel_name = "map_mul2", workgroup_size = 32 : i64, onnx_node = "mul2"}
// CHECK:       %[[Q0:.*]] = vision.reshape ins(%z : memref<1x8x3x3xf32>) {onnx_node = "sq:coalesced0"
// CHECK:       %[[Q1:.*]] = vision.reshape ins(%z : memref<1x8x3x3xf32>) {onnx_node = "sq:coalesced1"
// CHECK:       "scf.parallel"
// CHECK:         memref.load %[[Q0]]
// CHECK:         memref.load %[[Q1]]
// CHECK:       }) {kernel_name = "map_sq", workgroup_size = 32 : i64, onnx_node = "sq"}
// CHECK-NOT:   vision.map
func.func @blocks(%x: memref<1x8x3x3xf32>, %s: memref<1x8x1x1xf32>, %y: memref<1x8x3x3xf32>, %t: memref<1x8x1x1xf32>, %z: memref<1x8x3x3xf32>, %w: memref<1x8x3x3xf32>) {
  vision.map ins(%x, %s : memref<1x8x3x3xf32>, memref<1x8x1x1xf32>) outs(%y : memref<1x8x3x3xf32>) {onnx_node = "scale1", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%a: f32, %b: f32):
    %m = arith.mulf %a, %b : f32
    vision.yield %m : f32
  }
  vision.map ins(%y, %t : memref<1x8x3x3xf32>, memref<1x8x1x1xf32>) outs(%z : memref<1x8x3x3xf32>) {onnx_node = "scale2", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%a: f32, %b: f32):
    %m = arith.mulf %a, %b : f32
    vision.yield %m : f32
  }
  vision.map ins(%y, %t : memref<1x8x3x3xf32>, memref<1x8x1x1xf32>) outs(%w : memref<1x8x3x3xf32>) {onnx_node = "mul2", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%a: f32, %b: f32):
    %m = arith.addf %a, %b : f32
    vision.yield %m : f32
  }
  vision.map ins(%z, %z : memref<1x8x3x3xf32>, memref<1x8x3x3xf32>) outs(%w : memref<1x8x3x3xf32>) {onnx_node = "sq", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%a: f32, %b: f32):
    %m = arith.mulf %a, %b : f32
    vision.yield %m : f32
  }
  func.return
}
