// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// stage = 3: the 12 x 25 x 40 GEMM of a 1x1 conv with its reduction split across threads.
// A work-group holds tile_oc = 4 output channels x block_n = 16 pixels: 16 lanes x
// threads_k = 4 slices = 64 threads (grid 3 x 2). Each thread sums its slice of K (40 / 4 = 10
// elements, unroll_k = 2 per loop step) for its 4 channels straight from global memory, stores
// the 4 partials to a work-group array [4 slices][4][16 lanes], and after the one barrier each
// thread adds one output's 4 slices in order, guards the ragged pixel block (25 of 32) and
// finishes it with the bias.

func.func @main(%x: memref<1x40x5x5xf32>, %out: memref<1x12x5x5xf32>) attributes {vision.arena_size = 0 : i64} {
  %w = vision.weight @w : memref<12x40x1x1xf32>
  %b = vision.weight @b : memref<12xf32>
  vision.conv2d ins(%x, %w, %b : memref<1x40x5x5xf32>, memref<12x40x1x1xf32>, memref<12xf32>) outs(%out : memref<1x12x5x5xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "proj", schedule = #vision.schedule<{stage = 3 : i64, tile_oc = 4 : i64, tile_ow = 1 : i64, block_n = 16 : i64, threads_k = 4 : i64, unroll_k = 2 : i64, wg = 64 : i64}>}
  func.return
}

// CHECK:      %[[X:.*]] = vision.reshape ins(%x : {{.*}}) {onnx_node = "proj:gemm_x", onnx_op = "Reshape"} -> memref<1x40x25xf32>
// CHECK:      "scf.parallel"
// CHECK:        %[[PART:.*]] = memref.alloca() : memref<256xf32, 3 : i64>
// CHECK:        "scf.parallel"
// CHECK:          scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32) {
// CHECK-COUNT-2:    memref.load %[[X]]
// CHECK:            scf.yield
// CHECK-COUNT-4:  memref.store %{{.*}}, %[[PART]]
// CHECK:        "gpu.barrier"() : () -> ()
// CHECK-NOT:    "gpu.barrier"
// CHECK:        "scf.parallel"
// CHECK-COUNT-4:  memref.load %[[PART]]
// CHECK:          scf.if
// CHECK:            memref.load %b
// CHECK:            memref.store %{{.*}}, %out
// CHECK:      }) {kernel_name = "conv2d_proj", workgroup_size = 64 : i64, onnx_node = "proj"}
