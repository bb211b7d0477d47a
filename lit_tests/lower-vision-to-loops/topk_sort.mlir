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
// CHECK:      }) {kernel_name = "topk_top", workgroup_size = 4 : i64{{.*}}}

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

// local = 0: scratch keys and indices in global memory past the planned arena (which grows).
// Blocks of `block` = 2 elements sort in local memory (stage 1); stages 2 and 3 run their
// flip (and stage 3 its distance-2 cleaner) as flat kernels over the scratch copy, and their
// distance-1 cleaner per block in local memory again; a last kernel writes the results.

// CHECK-LABEL: func.func @sort_global
// CHECK-SAME:    vision.arena_size = 2120 : i64
// CHECK:      %[[KEYS:.*]] = vision.buffer offset 1024 {onnx_node = "srt", vision.scratch = "lowering"} : memref<3x6xi64>
// CHECK-NEXT: %[[IDX:.*]] = vision.buffer offset 2048 {onnx_node = "srt", vision.scratch = "lowering"} : memref<3x6xi32>
// CHECK:      memref.alloca() : memref<2xi64, 3 : i64>
// CHECK:      arith.cmpi slt, %{{.*}}, %{{.*}} : i64
// CHECK:      memref.store %{{.*}}, %[[KEYS]]
// CHECK:      kernel_name = "sort_srt_blocks", workgroup_size = 1 : i64
// CHECK:      kernel_name = "sort_srt_s2_flip"
// CHECK:      kernel_name = "sort_srt_s2_blocks"
// CHECK:      kernel_name = "sort_srt_s3_flip"
// CHECK:      kernel_name = "sort_srt_s3_1"
// CHECK:      kernel_name = "sort_srt_s3_blocks"
// CHECK:      memref.load %[[IDX]]
// CHECK:      kernel_name = "sort_srt_out"
func.func @sort_global(%x: memref<3x6xi64>, %v: memref<3x6xi64>, %i: memref<3x6xi64>) attributes {vision.num_inputs = 1 : i64, vision.arena_size = 1000 : i64} {
  vision.sort ins(%x : memref<3x6xi64>) outs(%v, %i : memref<3x6xi64>, memref<3x6xi64>) {axis = 1 : i64, descending = 0 : i64, onnx_node = "srt", schedule = #vision.schedule<{wg = 1 : i64, local = 0 : i64, block = 2 : i64}>}
  func.return
}
