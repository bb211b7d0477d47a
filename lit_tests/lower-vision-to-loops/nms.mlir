// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// NMS: scratch for the kept boxes, per-class counts and offsets past the arena; a select
// kernel per (batch, class) -- local sort by score (candidates at or under the threshold get
// key -inf), the candidates counted (in the class's count slot), the key array reused for
// suppression flags, then a uniform greedy walk over the candidates whose kept boxes flag
// the later ones they overlap, in parallel --, a one-group scan of the counts (the op's count
// is its total), and a compact kernel that moves kept boxes to their rows and pads the rest
// with -1.

// CHECK:      vision.arena_size = 2056 : i64
// CHECK:      %[[KEPT:.*]] = vision.buffer offset 0 {onnx_node = "nms", vision.scratch = "lowering"} : memref<2x3xi32>
// CHECK-NEXT: %[[COUNTS:.*]] = vision.buffer offset 1024 {{.*}} : memref<2xi32>
// CHECK-NEXT: %[[OFFSETS:.*]] = vision.buffer offset 2048 {{.*}} : memref<2xi32>
// CHECK:      %[[FLAGS:.*]] = memref.alloca() : memref<6xf32, 3 : i64>
// CHECK:      arith.cmpf ogt, %{{.*}}, %{{.*}} : f32
// CHECK:      arith.select %{{.*}}, %{{.*}}, %{{.*}} : f32
// CHECK:      memref.store %{{.*}}, %[[COUNTS]]
// CHECK:      %[[M:.*]] = memref.load %[[COUNTS]]
// CHECK:      %[[CANDIDATES:.*]] = arith.index_cast %[[M]] : i32 to index
// CHECK:      memref.store %{{.*}}, %[[FLAGS]]
// CHECK:      %{{.*}} = scf.for %[[POS:.*]] = %{{.*}} to %[[CANDIDATES]] step %{{.*}} iter_args(%[[TAKEN:.*]] = %{{.*}}) -> (index) {
// CHECK:        memref.load %[[FLAGS]][%[[POS]]]
// CHECK:        scf.if %{{.*}} -> (index) {
// CHECK:          memref.store %{{.*}}, %[[KEPT]][%{{.*}}, %[[TAKEN]]] : memref<2x3xi32>
// CHECK:          arith.divf %{{.*}}, %{{.*}} : f32
// CHECK:          memref.store %{{.*}}, %[[FLAGS]]
// CHECK:          "gpu.barrier"()
// CHECK:      memref.store %{{.*}}, %[[COUNTS]]
// CHECK:      kernel_name = "nms_nms_select", workgroup_size = 4 : i64
// CHECK:      memref.load %[[COUNTS]]
// CHECK:      memref.store %{{.*}}, %[[OFFSETS]]
// CHECK:      arith.extsi %{{.*}} : i32 to i64
// CHECK:      memref.store %{{.*}}, %cnt[%{{.*}}] : memref<1xi64>
// CHECK:      kernel_name = "nms_nms_offsets", workgroup_size = 2 : i64
// CHECK:      memref.load %[[OFFSETS]]
// CHECK:      memref.store %{{.*}}, %sel[%{{.*}}, %{{.*}}] : memref<6x3xi64>
// CHECK:      memref.load %cnt
// CHECK:      kernel_name = "nms_nms_compact"
func.func @main(%b: memref<1x6x4xf32>, %s: memref<1x2x6xf32>, %sel: memref<6x3xi64>, %cnt: memref<1xi64>) attributes {vision.num_inputs = 2 : i64, vision.arena_size = 0 : i64, vision.output_counts = array<i64: 1, -1>} {
  vision.nms ins(%b, %s : memref<1x6x4xf32>, memref<1x2x6xf32>) outs(%sel, %cnt : memref<6x3xi64>, memref<1xi64>) {center_point_box = 0 : i64, max_output_boxes_per_class = 3 : i64, iou_threshold = 5.000000e-01 : f32, score_threshold = 2.000000e-01 : f32, onnx_node = "nms", schedule = #vision.schedule<{wg = 4 : i64, local = 1 : i64}>}
  func.return
}
