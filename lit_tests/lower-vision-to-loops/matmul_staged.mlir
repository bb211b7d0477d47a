// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// A staged matmul with b transposed (stage = 1): M = 20, N = 17, K = 24, 16x16 blocks
// (grid 2 x 2) of 16 threads with 4x4 tiles: accumulators live in work-group
// memory ([16 accumulators][16 threads] = 256 words) and are reloaded per K step; b's tile is
// copied along k (its contiguous dim), so its rows are padded to 17.

func.func @main(%a: memref<20x24xf32>, %out: memref<20x17xf32>) {
  %b = vision.weight @b : memref<17x24xf32>
  vision.matmul ins(%a, %b : memref<20x24xf32>, memref<17x24xf32>) outs(%out : memref<20x17xf32>) {transpose_a = 0 : i64, transpose_b = 1 : i64, alpha = 1.0 : f64, beta = 1.0 : f64, onnx_node = "fc", schedule = #vision.schedule<{stage = 1 : i64, block_m = 16 : i64, block_n = 16 : i64, tile_k = 8 : i64, tile_m = 4 : i64, tile_n = 4 : i64, wg = 16 : i64}>}
  func.return
}

// CHECK:      "scf.parallel"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NEXT: ^bb0(%[[MB:.*]]: index, %[[NB:.*]]: index):
// CHECK-DAG:    %[[A:.*]] = memref.alloca() : memref<136xf32, 3 : i64>
// CHECK-DAG:    %[[B:.*]] = memref.alloca() : memref<136xf32, 3 : i64>
// CHECK-DAG:    %[[ACC:.*]] = memref.alloca() : memref<256xf32, 3 : i64>
// CHECK-NOT:    memref.alloca
// CHECK:        scf.for
// CHECK:          memref.load %a
// CHECK:          memref.store %{{.*}}, %[[A]]
// CHECK:          memref.load %b
// CHECK:          memref.store %{{.*}}, %[[B]]
// CHECK:          gpu.barrier
// CHECK:          memref.load %[[ACC]]
// CHECK:          memref.store %{{.*}}, %[[ACC]]
// CHECK:          gpu.barrier
// CHECK:        scf.if
// CHECK:          memref.store %{{.*}}, %out
// CHECK:      }) {kernel_name = "matmul_fc", workgroup_size = 16 : i64{{.*}}}
