// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s
// RUN: visc-opt %s -p lower-vision-to-loops,map-loops-to-gpu | filecheck %s --check-prefix=GPU

// local = 1: one work-group per row sorts (key, index) pairs in local memory with a bitonic
// network (uniform scf.for over stages and steps, a barrier after every step, comparators
// past the row's end skipped), then writes the first k positions.

// CHECK-LABEL: func.func @topk_local
// CHECK:      "scf.parallel"
// CHECK:        %[[KEYS:.*]] = memref.alloca() : memref<5xf32, 3 : i64>
// CHECK-NEXT:   %[[IDX:.*]] = memref.alloca() : memref<5xi32, 3 : i64>
// CHECK:        "gpu.barrier"()
// CHECK:        scf.for
// CHECK:          "scf.parallel"
// CHECK:            arith.shrsi
// CHECK:            %[[INSIDE:.*]] = arith.cmpi slt, %{{.*}}, %{{.*}} : index
// CHECK-NEXT:       scf.if %[[INSIDE]] {
// CHECK:              arith.cmpf ogt
// CHECK:              arith.cmpf oeq
// CHECK:              arith.cmpi slt, %{{.*}}, %{{.*}} : i32
// CHECK:              memref.store %{{.*}}, %[[KEYS]]
// CHECK:          "gpu.barrier"()
// CHECK:          scf.for
// CHECK:            "gpu.barrier"()
// CHECK:        memref.store %{{.*}}, %v[%{{.*}}, %{{.*}}] : memref<2x3xf32>
// CHECK:        arith.extsi %{{.*}} : i32 to i64
// CHECK:      }) {kernel_name = "topk_top", workgroup_size = 4 : i64}

// GPU-LABEL: "gpu.func"
// GPU:       "gpu.block_id"
// GPU:       "gpu.thread_id"
// GPU:       memref.alloca() : memref<5xf32, 3 : i64>
// GPU:       scf.for
// GPU:         "gpu.barrier"()
// GPU-NOT:   scf.parallel
// GPU:       sym_name = "topk_top"
func.func @topk_local(%x: memref<2x5xf32>, %v: memref<2x3xf32>, %i: memref<2x3xi64>) attributes {vision.num_inputs = 1 : i64, vision.arena_size = 0 : i64} {
  vision.topk ins(%x : memref<2x5xf32>) outs(%v, %i : memref<2x3xf32>, memref<2x3xi64>) {axis = 1 : i64, k = 3 : i64, largest = 1 : i64, onnx_node = "top", schedule = #vision.schedule<{wg = 4 : i64, local = 1 : i64}>}
  func.return
}

// local = 0: scratch keys and indices in global memory past the planned arena (which grows),
// an init kernel, one flat kernel per comparator step (3 stages: 6 steps), an output kernel.

// CHECK-LABEL: func.func @sort_global
// CHECK-SAME:    vision.arena_size = 2120 : i64
// CHECK:      %{{.*}} = vision.buffer offset 1024 {onnx_node = "srt", vision.scratch = "lowering"} : memref<3x6xi64>
// CHECK-NEXT: %{{.*}} = vision.buffer offset 2048 {onnx_node = "srt", vision.scratch = "lowering"} : memref<3x6xi32>
// CHECK:      kernel_name = "sort_srt_init"
// CHECK:      arith.cmpi slt, %{{.*}}, %{{.*}} : i64
// CHECK:      kernel_name = "sort_srt_s1_flip"
// CHECK:      kernel_name = "sort_srt_s2_flip"
// CHECK:      kernel_name = "sort_srt_s2_0"
// CHECK:      kernel_name = "sort_srt_s3_flip"
// CHECK:      kernel_name = "sort_srt_s3_1"
// CHECK:      kernel_name = "sort_srt_s3_0"
// CHECK:      kernel_name = "sort_srt_out"
func.func @sort_global(%x: memref<3x6xi64>, %v: memref<3x6xi64>, %i: memref<3x6xi64>) attributes {vision.num_inputs = 1 : i64, vision.arena_size = 1000 : i64} {
  vision.sort ins(%x : memref<3x6xi64>) outs(%v, %i : memref<3x6xi64>, memref<3x6xi64>) {axis = 1 : i64, descending = 0 : i64, onnx_node = "srt", schedule = #vision.schedule<{wg = 8 : i64, local = 0 : i64}>}
  func.return
}
