// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Layer norm over the last dim, a thread per row (coop = 0): x read as (rows, n), three loops
// over the row -- sum, sum of squared deviations from the mean, then the affine write.
// CHECK-LABEL: func.func @layer_norm_rows
// CHECK:       %[[X:.*]] = vision.reshape ins(%x : memref<4x49x96xf32>) {{.*}} -> memref<196x96xf32>
// CHECK:       %[[Y:.*]] = vision.reshape ins(%y : memref<4x49x96xf32>) {{.*}} -> memref<196x96xf32>
// CHECK:       "scf.parallel"
// CHECK:       ^bb0(%[[R:.*]]: index):
// CHECK:         %[[N:.*]] = arith.constant 9.600000e+01 : f32
// CHECK:         %[[SUM:.*]] = scf.for
// CHECK:           memref.load %[[X]][%[[R]], %{{.*}}] : memref<196x96xf32>
// CHECK:           arith.addf
// CHECK:         %[[MEAN:.*]] = arith.divf %[[SUM]], %[[N]] : f32
// CHECK:         %[[SQ:.*]] = scf.for
// CHECK:           %[[D:.*]] = arith.subf %{{.*}}, %[[MEAN]] : f32
// CHECK:           arith.mulf %[[D]], %[[D]] : f32
// CHECK:         %[[VAR:.*]] = arith.divf %[[SQ]], %[[N]] : f32
// CHECK:         %[[EPS:.*]] = arith.addf %[[VAR]], %{{.*}} : f32
// CHECK:         %[[STD:.*]] = math.sqrt %[[EPS]] : f32
// CHECK:         %[[INV:.*]] = arith.divf %{{.*}}, %[[STD]] : f32
// CHECK:         scf.for
// CHECK:           arith.subf %{{.*}}, %[[MEAN]] : f32
// CHECK:           arith.mulf %{{.*}}, %[[INV]] : f32
// CHECK:           math.fma
// CHECK:           memref.store %{{.*}}, %[[Y]][%[[R]], %{{.*}}] : memref<196x96xf32>
// CHECK:       }) {kernel_name = "layer_norm_ln", workgroup_size = 64 : i64, onnx_node = "ln"}
func.func @layer_norm_rows(%x: memref<4x49x96xf32>, %s: memref<96xf32>, %b: memref<96xf32>, %y: memref<4x49x96xf32>) {
  vision.layer_norm ins(%x, %s, %b : memref<4x49x96xf32>, memref<96xf32>, memref<96xf32>) outs(%y : memref<4x49x96xf32>) {axes = array<i64: 2>, epsilon = 1.0e-06 : f32, onnx_node = "ln", schedule = #vision.schedule<{coop = 0 : i64, wg = 64 : i64}>}
  func.return
}

// Over NCHW channels: x read as (N, C, HW), one thread per (n, hw), the row strided by HW;
// the (C, 1, 1) scale read at the channel.
// CHECK-LABEL: func.func @layer_norm_channels
// CHECK:       %[[X:.*]] = vision.reshape ins(%x : memref<2x8x5x5xf32>) {{.*}} -> memref<2x8x25xf32>
// CHECK:       %[[S:.*]] = vision.reshape ins(%s : memref<8x1x1xf32>) {{.*}} -> memref<1x8x1xf32>
// CHECK:       ^bb0(%[[N:.*]]: index, %[[P:.*]]: index):
// CHECK:         scf.for %[[C:.*]] = {{.*}} iter_args
// CHECK:           memref.load %[[X]][%[[N]], %[[C]], %[[P]]] : memref<2x8x25xf32>
// CHECK:         scf.for %[[C2:[0-9]+]] = %{{[0-9]+}} to %{{[0-9]+}} step %{{[0-9]+}} {
// CHECK:           memref.load %[[S]][%{{.*}}, %[[C2]], %{{.*}}] : memref<1x8x1xf32>
// CHECK:       }) {kernel_name = "layer_norm_lc", workgroup_size = 32 : i64, onnx_node = "lc"}
func.func @layer_norm_channels(%x: memref<2x8x5x5xf32>, %s: memref<8x1x1xf32>, %y: memref<2x8x5x5xf32>) {
  vision.layer_norm ins(%x, %s : memref<2x8x5x5xf32>, memref<8x1x1xf32>) outs(%y : memref<2x8x5x5xf32>) {axes = array<i64: 1>, epsilon = 1.0e-06 : f32, onnx_node = "lc", schedule = #vision.schedule<{coop = 0 : i64, wg = 32 : i64}>}
  func.return
}

// Group norm of float16, a work-group per (n, group) (coop = 1): strided partial sums in
// float32, a tree over local memory (wg/2, ..., 1 threads, a barrier after each step), twice
// (mean, then squared deviations, each in its own local array), then the strided write with
// the scale and bias of channel group * C/G + i / HW.
// CHECK-LABEL: func.func @group_norm
// CHECK:       %[[X:.*]] = vision.reshape ins(%x : memref<2x8x5x5xf16>) {{.*}} -> memref<2x4x50xf16>
// CHECK:       ^bb0(%[[N:.*]]: index, %[[G:.*]]: index):
// CHECK:         %[[SUMS:.*]] = memref.alloca() : memref<4xf32, 3 : i64>
// CHECK:         "scf.parallel"
// CHECK:         ^bb0(%[[T:.*]]: index):
// CHECK:           scf.for %[[I:.*]] = %[[T]] to %{{.*}} step %{{.*}} iter_args
// CHECK:             memref.load %[[X]][%[[N]], %[[G]], %[[I]]] : memref<2x4x50xf16>
// CHECK:             arith.extf %{{.*}} : f16 to f32
// CHECK:           memref.store %{{.*}}, %[[SUMS]][%[[T]]]
// CHECK:         "gpu.barrier"
// CHECK:         "scf.parallel"
// CHECK:           arith.addf
// CHECK:         "gpu.barrier"
// CHECK:         "scf.parallel"
// CHECK:         "gpu.barrier"
// CHECK:         %[[TOTAL:.*]] = memref.load %[[SUMS]][%{{.*}}] : memref<4xf32, 3 : i64>
// CHECK:         %[[MEAN:.*]] = arith.divf %[[TOTAL]], %{{.*}} : f32
// CHECK:         %[[SQ:.*]] = memref.alloca() : memref<4xf32, 3 : i64>
// CHECK:           arith.subf %{{.*}}, %[[MEAN]] : f32
// CHECK:         "gpu.barrier"
// CHECK:         "gpu.barrier"
// CHECK:         "gpu.barrier"
// CHECK:         memref.load %[[SQ]]
// CHECK:         math.sqrt
// CHECK:           %[[CH:.*]] = arith.divsi %{{.*}}, %{{.*}} : index
// CHECK:           arith.addi %{{.*}}, %[[CH]] : index
// CHECK:           memref.load %c[%{{.*}}] : memref<8xf16>
// CHECK:           arith.truncf %{{.*}} : f32 to f16
// CHECK:       }) {kernel_name = "group_norm_gn", workgroup_size = 4 : i64, onnx_node = "gn"}
func.func @group_norm(%x: memref<2x8x5x5xf16>, %c: memref<8xf16>, %y: memref<2x8x5x5xf16>) {
  vision.group_norm ins(%x, %c, %c : memref<2x8x5x5xf16>, memref<8xf16>, memref<8xf16>) outs(%y : memref<2x8x5x5xf16>) {groups = 4 : i64, epsilon = 1.0e-05 : f32, onnx_node = "gn", schedule = #vision.schedule<{coop = 1 : i64, wg = 4 : i64}>}
  func.return
}

// The statistics results: each row's mean and 1 / sqrt(var + eps), stored before the write.
// CHECK-LABEL: func.func @layer_norm_stats
// CHECK:       %[[M:.*]] = vision.reshape ins(%m : memref<3x1xf32>) {{.*}} -> memref<3xf32>
// CHECK:       %[[I:.*]] = vision.reshape ins(%i : memref<3x1xf32>) {{.*}} -> memref<3xf32>
// CHECK:       ^bb0(%[[R:.*]]: index):
// CHECK:         %[[MEAN:.*]] = arith.divf
// CHECK:         math.sqrt
// CHECK-NEXT:    %[[INV:.*]] = arith.divf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT:    memref.store %[[MEAN]], %[[M]][%[[R]]] : memref<3xf32>
// CHECK-NEXT:    memref.store %[[INV]], %[[I]][%[[R]]] : memref<3xf32>
func.func @layer_norm_stats(%x: memref<3x10xf32>, %s: memref<10xf32>, %y: memref<3x10xf32>, %m: memref<3x1xf32>, %i: memref<3x1xf32>) {
  vision.layer_norm ins(%x, %s : memref<3x10xf32>, memref<10xf32>) outs(%y, %m, %i : memref<3x10xf32>, memref<3x1xf32>, memref<3x1xf32>) {axes = array<i64: 1>, epsilon = 1.0e-05 : f32, onnx_node = "ls", schedule = #vision.schedule<{coop = 0 : i64, wg = 4 : i64}>}
  func.return
}

// partials = 4: four independent sums over consecutive elements (a 10-element row: two steps
// of four, then a tail of two), added pairwise, then the tail.
// CHECK-LABEL: func.func @partials
// CHECK:         %[[P0:[0-9]+]], %[[P1:[0-9]+]], %[[P2:[0-9]+]], %[[P3:[0-9]+]] = scf.for %[[J:[0-9]+]] = {{.*}} -> (f32, f32, f32, f32) {
// CHECK:           %[[B:[0-9]+]] = arith.muli %[[J]], %{{.*}} : index
// CHECK:           memref.load %x[%{{.*}}, %[[B]]] : memref<3x10xf32>
// CHECK-COUNT-3:   arith.addi %[[B]], %{{.*}} : index
// CHECK:           scf.yield %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : f32, f32, f32, f32
// CHECK:         %[[T:[0-9]+]] = scf.for {{.*}} -> (f32) {
// CHECK:         %[[S01:.*]] = arith.addf %[[P0]], %[[P1]] : f32
// CHECK-NEXT:    %[[S23:.*]] = arith.addf %[[P2]], %[[P3]] : f32
// CHECK-NEXT:    %[[S:.*]] = arith.addf %[[S01]], %[[S23]] : f32
// CHECK-NEXT:    arith.addf %[[S]], %[[T]] : f32
func.func @partials(%x: memref<3x10xf32>, %s: memref<10xf32>, %y: memref<3x10xf32>) {
  vision.layer_norm ins(%x, %s : memref<3x10xf32>, memref<10xf32>) outs(%y : memref<3x10xf32>) {axes = array<i64: 1>, epsilon = 1.0e-05 : f32, onnx_node = "lp", schedule = #vision.schedule<{coop = 0 : i64, partials = 4 : i64, wg = 4 : i64}>}
  func.return
}
