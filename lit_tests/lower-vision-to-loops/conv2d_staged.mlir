// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// A staged 3x3 conv (stage = 2): implicit GEMM M = 16 channels, N = 36 pixels, K = 4 * 9.
// One work-group per 16x16 block (grid 1 x 3), 16 threads of 4x4 accumulators kept in a
// private array; per K step of 8 the weight tile (padded rows of 17) and the im2col'd input
// tile are copied to work-group memory between barriers; the K tail (36 = 4 * 8 + 4) reads
// zeros; the epilogue adds the bias and stores pixels below 36 only.

func.func @main(%x: memref<1x4x6x6xf32>, %out: memref<1x16x6x6xf32>) {
  %w = vision.weight @w : memref<16x4x3x3xf32>
  %b = vision.weight @b : memref<16xf32>
  vision.conv2d ins(%x, %w, %b : memref<1x4x6x6xf32>, memref<16x4x3x3xf32>, memref<16xf32>) outs(%out : memref<1x16x6x6xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv1", schedule = #vision.schedule<{stage = 2 : i64, block_m = 16 : i64, block_n = 16 : i64, tile_k = 8 : i64, tile_oc = 4 : i64, tile_ow = 4 : i64, wg = 16 : i64}>}
  func.return
}

// CHECK:      %w = vision.weight @w : memref<16x4x3x3xf32>
// CHECK:      %[[WM:.*]] = vision.reshape ins(%w : memref<16x4x3x3xf32>) {onnx_node = "conv1:gemm_w", onnx_op = "Reshape"} -> memref<16x36xf32>
// CHECK:      "scf.parallel"
// CHECK-NEXT: ^bb0(%[[NB:.*]]: index):
// CHECK-DAG:    %[[A:.*]] = memref.alloca() : memref<136xf32, 3 : i64>
// CHECK-DAG:    %[[B:.*]] = memref.alloca() : memref<128xf32, 3 : i64>
// CHECK-DAG:    %[[ACC:.*]] = memref.alloca() : memref<16xf32>
// CHECK:        "scf.parallel"
// CHECK-COUNT-16: memref.store %{{.*}}, %[[ACC]]
// CHECK:        scf.for
// CHECK:          "scf.parallel"
// CHECK:            memref.load %[[WM]]
// CHECK:            memref.store %{{.*}}, %[[A]]
// CHECK:            memref.load %x
// CHECK:            memref.store %{{.*}}, %[[B]]
// CHECK:          gpu.barrier
// CHECK-NEXT:     "scf.parallel"
// CHECK-COUNT-16:   memref.load %[[ACC]]
// CHECK:            memref.load %[[A]]
// CHECK:            memref.load %[[B]]
// CHECK:            {{math.fma|arith.mulf}}
// CHECK-COUNT-16:   memref.store %{{.*}}, %[[ACC]]
// CHECK:          gpu.barrier
// CHECK-NEXT:   }
// CHECK:        "scf.parallel"
// CHECK:          arith.cmpi slt, %{{.*}}, %{{.*}} : index
// CHECK:          scf.if
// CHECK:            memref.load %b
// CHECK:            memref.store %{{.*}}, %out
// CHECK:      }) {kernel_name = "conv2d_conv1", workgroup_size = 16 : i64{{.*}}}
// CHECK-NOT:  vision.conv2d
