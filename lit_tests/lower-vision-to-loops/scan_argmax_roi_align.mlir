// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// scan: one work-group per row; 4 threads sum chunks of 3 (the last one 1), a Hillis-Steele scan of the
// partial sums in two double-buffered local arrays (steps 1 and 2), then each thread
// rescans its chunk from its offset (reverse: indices count down from the end).
// CHECK-LABEL: func.func @scan
// CHECK:      memref.alloca() : memref<4xf32, 3 : i64>
// CHECK-NEXT: memref.alloca() : memref<4xf32, 3 : i64>
// CHECK:      "gpu.barrier"()
// CHECK:      arith.cmpi sge
// CHECK:      "gpu.barrier"()
// CHECK:      arith.cmpi sge
// CHECK:      "gpu.barrier"()
// CHECK:      arith.cmpi sgt
// CHECK:      scf.for {{.*}} iter_args
// CHECK:        arith.subi
// CHECK:        memref.store %{{.*}}, %y[%{{.*}}, %{{.*}}] : memref<2x10xf32>
// CHECK:      kernel_name = "scan_cs", workgroup_size = 4 : i64
func.func @scan(%x: memref<2x10xf32>, %y: memref<2x10xf32>) attributes {vision.num_inputs = 1 : i64, vision.arena_size = 0 : i64} {
  vision.scan ins(%x : memref<2x10xf32>) outs(%y : memref<2x10xf32>) {axis = 1 : i64, exclusive = 1 : i64, reverse = 1 : i64, onnx_node = "cs", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// argmax with select_last_index: a loop carrying (best value, index), non-strict compare.
// CHECK-LABEL: func.func @argmax
// CHECK:      scf.for {{.*}} iter_args(%[[BEST:.*]] = %{{.*}}, %[[AT:.*]] = %{{.*}}) -> (f32, index)
// CHECK:        arith.cmpf oge, %{{.*}}, %[[BEST]] : f32
// CHECK:      arith.index_cast %{{.*}} : index to i64
// CHECK:      kernel_name = "argmax_am"
func.func @argmax(%x: memref<2x10xf32>, %y: memref<2xi64>) attributes {vision.num_inputs = 1 : i64, vision.arena_size = 0 : i64} {
  vision.argmax ins(%x : memref<2x10xf32>) outs(%y : memref<2xi64>) {axis = 1 : i64, select_last_index = 1 : i64, onnx_node = "am", schedule = #vision.schedule<{wg = 2 : i64}>}
  func.return
}

// roi_align: one thread per output element; an adaptive sample grid (ceil of roi size /
// output size) and bilinear taps; samples outside [-1, size] are skipped. A batch index
// outside [0, N) sets the node's status word and reads a clamped image meanwhile.
// CHECK-LABEL: func.func @roi_align
// CHECK:      %[[S:.*]] = vision.status "batch index out of range: the input's batch is 1 (valid indices 0 to 0)" {onnx_node = "ra"} : memref<2xi64>
// CHECK:      %[[B:.*]] = memref.load %i[
// CHECK:      scf.if %{{.*}} {
// CHECK-NEXT:   memref.store %{{.*}}, %[[S]][%{{.*}}] : memref<2xi64>
// CHECK-NEXT:   memref.store %[[B]], %[[S]][%{{.*}}] : memref<2xi64>
// CHECK:      math.ceil
// CHECK:      scf.for {{.*}} iter_args({{.*}}) -> (f32)
// CHECK:        scf.for {{.*}} iter_args({{.*}}) -> (f32)
// CHECK:          arith.cmpf olt
// CHECK:          scf.if %{{.*}} -> (f32)
// CHECK:            memref.load %x[
// CHECK:      arith.divf
// CHECK:      kernel_name = "roi_align_ra"
func.func @roi_align(%x: memref<1x3x8x8xf32>, %r: memref<2x4xf32>, %i: memref<2xi64>, %y: memref<2x3x2x2xf32>) attributes {vision.num_inputs = 3 : i64, vision.arena_size = 0 : i64} {
  vision.roi_align ins(%x, %r, %i : memref<1x3x8x8xf32>, memref<2x4xf32>, memref<2xi64>) outs(%y : memref<2x3x2x2xf32>) {mode = "avg", coord_mode = "half_pixel", sampling_ratio = 0 : i64, spatial_scale = 5.000000e-01 : f32, onnx_node = "ra", schedule = #vision.schedule<{wg = 8 : i64}>}
  func.return
}
